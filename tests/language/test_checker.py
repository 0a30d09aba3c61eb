"""The checker: every finding in one run, with spans, fixes and suggestions; the
symbol tables of a clean ruleset filled in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converge_rules.language.checks.checked import CheckedRuleset, FunctionSignature, ToolSignature
from converge_rules.language.checks.checker import check, check_file, checked_sources
from converge_rules.language.diagnostics.core import Diagnostic, Severity
from converge_rules.language.loader import LoadResult
from converge_rules.language.syntax.nodes import Module
from tests.properties import strategies

PRICING = '''\
ruleset pricing "Competitive prices for the online store"

uses tool fx_rate                        # tools this ruleset may call (capabilities)

root "Price every costed SKU" {
  max_facts     = 50_000
  max_cycles    = 30
  max_agents    = 64
  max_tool_calls = 1_000
  agent_timeout = 2s
  job_timeout   = 60s
  require count(Alert()) == 0            # the goal; checked at convergence
}

enum Channel { web, store, marketplace }

fact Cost   { key sku: str, amount: float }
fact Quote  { sku: str, vendor: str, amount: float, currency: str = "USD" }
fact Price  { key sku: str, key channel: Channel, amount: float }
fact Alert  { sku: str, message: str }
fact Rate   { key currency: str, usd: float }
intent NeedRate { currency: str }

agent ask_rate tier 1 {
  when Quote(currency) where currency != "USD"
  intend NeedRate(currency: currency)
}

agent fetch_rate tier 1 {
  when intent NeedRate(currency)
  call fx_rate(currency: currency) as rate
  emit Rate(currency: currency, usd: rate.usd)
}

agent undercut tier 1 {
  when Cost(sku, amount: cost) and Quote(sku, amount: theirs, currency: "USD")
  where theirs > cost * 1.05
  emit Price(sku: sku, channel: web, amount: round(theirs * 0.99, 2)) confidence 0.8
}

agent cost_plus tier 1 {
  when Cost(sku, amount: cost)
  emit Price(sku: sku, channel: web, amount: round(cost * 1.2, 2)) confidence 0.6
}

agent below_cost tier 2 {
  when p: Price(sku, amount) and Cost(sku, amount: cost) where amount < cost
  emit Alert(sku: sku, message: "price below cost")
  evaluate p score 0.0 reason "below cost"
}

policy Price {
  resolve by highest confidence, then lowest amount
  on tie reject
}

prune Quote when age > 5                 # age in cycles since the fact was merged

test "undercut wins when the margin allows" {
  given Cost(sku: "A1", amount: 10.0)
  given Quote(sku: "A1", vendor: "acme", amount: 12.0)
  expect Price(sku: "A1", channel: web, amount: 11.88)
  expect no Alert()
  expect status converged
}
'''

HEAD = '''ruleset r
enum Channel { web, store }
fact Cost { key sku: str, amount: float }
fact Price { key sku: str, amount: float, channel: Channel = web, note: str? }
fact Alert { sku: str, message: str }
'''

FX = ToolSignature("fx_rate", {"currency": "str"}, {"usd": "float"})


def chk(text: str, tmp_path: Path, **kw: object) -> CheckedRuleset:
    return check_file(tmp_path / "main.cvg", source=text, **kw)  # type: ignore[arg-type]


def codes(checked: CheckedRuleset) -> list[str]:
    return [d.code for d in checked.diagnostics]


def only(checked: CheckedRuleset, code: str) -> Diagnostic:
    found = [d for d in checked.diagnostics if d.code == code]
    assert len(found) == 1, [f"{d.code} {d.span} {d.message}" for d in checked.diagnostics]
    return found[0]


# ------------------------------------------------------------------- clean rulesets


def test_the_pricing_example_checks_with_no_diagnostic_at_all(tmp_path: Path) -> None:
    checked = chk(PRICING, tmp_path)
    assert checked.diagnostics == ()
    assert checked.ok
    assert (checked.name, checked.title) == ("pricing", "Competitive prices for the online store")
    assert list(checked.facts) == ["Cost", "Quote", "Price", "Alert", "Rate", "NeedRate"]
    assert list(checked.enums) == ["Channel"]
    assert [a.name.name for a in checked.agents] == [
        "ask_rate", "fetch_rate", "undercut", "cost_plus", "below_cost"]
    assert list(checked.policies) == ["Price"]
    assert [p.type.name for p in checked.prunes] == ["Quote"]
    assert checked.root is not None and checked.root.goal == "Price every costed SKU"
    assert [t.name for t in checked.tests] == ["undercut wins when the margin allows"]
    assert checked.tools == {"fx_rate": None}
    assert {"round", "abs", "min", "max", "len", "matches"} <= set(checked.functions)
    assert len(checked.modules) == 1


def test_pricing_is_clean_with_a_typed_tool_too(tmp_path: Path) -> None:
    checked = chk(PRICING, tmp_path, tools={"fx_rate": FX})
    assert checked.diagnostics == ()
    assert checked.tools == {"fx_rate": FX}


def test_every_whole_ruleset_in_the_language_contract_checks_clean(tmp_path: Path) -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "language-contract.md"
    blocks = [b for b in re.findall(r"```(?:cvg)?\n(.*?)```", doc.read_text(encoding="utf-8"),
                                    re.S)
              if b.startswith("ruleset ")]
    assert blocks
    for block in blocks:
        checked = chk(block, tmp_path)
        assert checked.ok, [f"{d.code} {d.span} {d.message}" for d in checked.diagnostics]


def test_tables_gather_every_module_in_load_order(tmp_path: Path) -> None:
    (tmp_path / "facts.cvg").write_text(
        "ruleset facts\nfact Cost { key sku: str, amount: float }\n"
        "agent first {\n  when Cost(sku, amount)\n  emit Cost(sku: sku, amount: amount)\n}\n",
        encoding="utf-8")
    text = ('ruleset main\nimport "facts.cvg"\nfact Price { key sku: str, amount: float }\n'
            "agent second {\n  when Cost(sku, amount)\n  emit Price(sku: sku, amount: amount)\n}\n")
    checked = chk(text, tmp_path)
    assert checked.ok, codes(checked)
    assert checked.name == "main"
    assert list(checked.facts) == ["Cost", "Price"]
    assert [a.name.name for a in checked.agents] == ["first", "second"]
    sources = checked_sources(checked)
    assert any(name.endswith("main.cvg") and body == text for name, body in sources.items())


# ------------------------------------------------------------- reporting, in general


def test_everything_is_reported_in_one_run_and_sorted(tmp_path: Path) -> None:
    text = HEAD + '''agent a {
  when Cots(sku)
  emit Price(sku: sku, amount: "x", colour: 1)
}
agent b tier 0 {
  when Cost(sku, amount) where amount
  call nope(x: 1) as r
  emit Alert(sku: sku)
}
policy Alert { resolve by latest }
root "g" {
  max_cycle = 1
}
'''
    checked = chk(text, tmp_path)
    assert set(codes(checked)) >= {"CVG101", "CVG201", "CVG103", "CVG301", "CVG202", "CVG801",
                                   "CVG111", "CVG402", "CVG502"}
    keys = [d.sort_key() for d in checked.diagnostics]
    assert keys == sorted(keys)
    assert all(d.help for d in checked.diagnostics)
    assert all(d.span is not None and d.span.file.endswith("main.cvg")
               for d in checked.diagnostics)


def test_unknown_names_get_suggestions(tmp_path: Path) -> None:
    text = HEAD + ("agent a {\n  when Cots(sku, amout: x)\n  emit Price(sku: sku, amount: 1.0)\n}\n"
                   "agent b {\n  when Cost(sku, amout: x)\n  emit Price(sku: sku, amount: x)\n}\n")
    checked = chk(text, tmp_path)
    assert "did you mean `Cost`?" in (only(checked, "CVG101").help or "")
    assert "did you mean `amount`?" in (only(checked, "CVG103").help or "")


def test_duplicate_declarations_across_files_point_at_both(tmp_path: Path) -> None:
    (tmp_path / "lib.cvg").write_text("ruleset lib\nfact Cost { key sku: str }\n",
                                      encoding="utf-8")
    checked = chk('ruleset main\nimport "lib.cvg"\nfact Cost { key sku: str }\n', tmp_path)
    diag = only(checked, "CVG102")
    assert diag.span is not None and diag.span.file.endswith("main.cvg")
    assert diag.related and diag.related[0].span.file.endswith("lib.cvg")


def test_a_syntax_error_line_is_not_checked_again(tmp_path: Path) -> None:
    checked = chk('ruleset r\nroot "g" {\n  job_timeout = 5y\n}\n', tmp_path)
    assert all(c.startswith("CVG0") for c in codes(checked))
    assert codes(checked)


# ----------------------------------------------------------------- names and scope


def test_variables_bound_later_and_never(tmp_path: Path) -> None:
    text = HEAD + ("agent a {\n  when Cost(sku, amount: later + 1) and Price(sku, amount: later)\n"
                   "  emit Alert(sku: sku, message: nowhere)\n}\n")
    checked = chk(text, tmp_path)
    assert "used before" in only(checked, "CVG107").message
    assert "`nowhere`" in only(checked, "CVG106").message


def test_negated_pattern_variables_do_not_escape(tmp_path: Path) -> None:
    text = HEAD + ("agent a tier 2 {\n  when Cost(sku) and not Alert(sku, message)\n"
                   "  emit Alert(sku: sku, message: message)\n}\n")
    checked = chk(text, tmp_path)
    assert "CVG106" in codes(checked)


def test_join_on_a_repeated_variable_is_fine_but_a_repeated_binder_is_not(tmp_path: Path) -> None:
    ok = chk(HEAD + "agent a {\n  when Cost(sku) and Price(sku)\n"
             "  emit Alert(sku: sku, message: \"x\")\n}\n", tmp_path)
    assert ok.ok, codes(ok)
    bad = chk(HEAD + "agent a {\n  when c: Cost(sku)\n  call t(x: 1) as c\n"
              "  emit Alert(sku: sku, message: \"x\")\n}\n", tmp_path)
    assert "CVG108" in codes(bad)


def test_evaluate_needs_a_whole_fact_binder(tmp_path: Path) -> None:
    checked = chk(HEAD + "agent a {\n  when Price(sku, amount)\n  evaluate amount score 1\n}\n",
                  tmp_path)
    assert codes(checked) == ["CVG109"]


# --------------------------------------------------------------------------- types


@pytest.mark.parametrize(("value", "ok"), [
    ("1", True), ("1.5", True), ('"1"', False), ("true", False), ("amount", True),
    ("amount > 1", False), ("if amount > 1 then 1 else 2.5", True),
])
def test_emit_values_against_a_float_field(tmp_path: Path, value: str, ok: bool) -> None:
    text = HEAD + ("agent a {\n  when Cost(sku, amount)\n"
                   f"  emit Price(sku: sku, amount: {value})\n}}\n")
    assert chk(text, tmp_path).ok is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("web", True), ("Channel.store", True), ("shop", False), ("Channel.shop", False),
    ('"web"', False),
])
def test_enum_members_bare_or_qualified(tmp_path: Path, value: str, ok: bool) -> None:
    text = HEAD + ("agent a {\n  when Cost(sku, amount)\n"
                   f"  emit Price(sku: sku, amount: amount, channel: {value})\n}}\n")
    assert chk(text, tmp_path).ok is ok


def test_enum_members_in_comparisons_patterns_and_lists(tmp_path: Path) -> None:
    text = HEAD + ("agent a {\n  when p: Price(sku, channel: web) and Price(sku, channel)\n"
                   "  where channel == store and web != channel and channel in [web, store]\n"
                   "  evaluate p score 1\n}\n")
    checked = chk(text, tmp_path)
    assert checked.ok, [d.message for d in checked.diagnostics]


def test_optional_fields_may_be_left_out_and_used_as_values(tmp_path: Path) -> None:
    ok = chk(HEAD + "agent a {\n  when Cost(sku, amount)\n"
             "  emit Price(sku: sku, amount: amount)\n}\n", tmp_path)
    assert ok.ok
    # No syntax tests for a missing value, so an optional value may fill a required place.
    used = chk(HEAD + "agent a {\n  when Price(sku, note)\n"
               "  emit Alert(sku: sku, message: lower(note))\n}\n", tmp_path)
    assert used.ok
    wrong = chk(HEAD + "agent a {\n  when Price(sku, note)\n"
                "  emit Price(sku: sku, amount: note)\n}\n", tmp_path)
    assert "found str?" in only(wrong, "CVG201").message


def test_operators_and_guards(tmp_path: Path) -> None:
    text = HEAD + ('agent a {\n  when Cost(sku, amount) where amount + "x" > 1 and not amount\n'
                   "  emit Price(sku: sku, amount: -sku)\n}\n")
    assert codes(chk(text, tmp_path)).count("CVG203") == 3


def test_builtin_and_plugin_functions(tmp_path: Path) -> None:
    text = HEAD + ('agent a {\n  when Cost(sku, amount) where matches(sku, "^A") and len(sku) > 1\n'
                   "  emit Price(sku: upper(sku), amount: max(round(amount), abs(amount), 1))\n}\n")
    assert chk(text, tmp_path).ok
    plugin = HEAD + ("agent a {\n  when Cost(sku, amount)\n"
                     "  emit Price(sku: sku, amount: vat(amount))\n}\n")
    assert codes(chk(plugin, tmp_path)) == ["CVG802"]
    vat = FunctionSignature("vat", ("float",), "float", plugin="tax")
    assert chk(plugin, tmp_path, functions={"vat": vat}).ok
    wrong = HEAD + ("agent a {\n  when Cost(sku, amount)\n"
                    '  emit Price(sku: sku, amount: lower(amount) + round(1, 2, 3))\n}\n')
    assert sorted(codes(chk(wrong, tmp_path))) == ["CVG201", "CVG203", "CVG803"]


@pytest.mark.parametrize(("guard", "ok"), [
    ("len(tags) > 0 and len(sku) > 0", True),
    ('contains(tags, "x") and contains(sku, "A")', True),
    ("min(weights) > 0.5 and max(weights) < max(1, 2, 3)", True),
    ("len(amount) > 0", False),
    ("contains(tags, 1)", False),
    ("min(tags) > 0", False),
])
def test_builtins_that_take_lists(tmp_path: Path, guard: str, ok: bool) -> None:
    text = ("ruleset r\nfact Item { key sku: str, amount: float, tags: list[str], "
            "weights: list[float] }\nfact Out { key sku: str }\n"
            f"agent a {{\n  when Item(sku, amount, tags, weights) where {guard}\n"
            "  emit Out(sku: sku)\n}\n")
    assert chk(text, tmp_path).ok is ok


@pytest.mark.parametrize(("joined", "field", "errors"), [
    ("ints + texts", "list[int]", ["CVG203"]),   # was accepted: Out.v held [1, "x"]
    ("texts + ints", "list[str]", ["CVG203"]),
    ("ints + [1.5]", "list[int]", ["CVG201"]),   # was accepted: Out.v held [1, 1.5]
    ("ints + [1.5]", "list[float]", []),
    ("ints + floats", "list[float]", []),
    ("ints + []", "list[int]", []),
    ("[] + texts", "list[str]", []),
    ("texts + texts", "list[str]", []),
])
def test_joined_lists_hold_one_item_type(tmp_path: Path, joined: str, field: str,
                                         errors: list[str]) -> None:
    text = ("ruleset r\nfact In { key id: str, ints: list[int], floats: list[float], "
            f"texts: list[str] }}\nfact Out {{ key id: str, v: {field} }}\n"
            "agent a {\n  when In(id, ints, floats, texts)\n"
            f"  emit Out(id: id, v: {joined})\n}}\n")
    assert codes(chk(text, tmp_path)) == errors


@pytest.mark.parametrize(("agent", "warned"), [
    # met as: count(Claim(status: aproved)) counted every claim, without a word
    ("when Claim(id) emit Tally(id: id, n: count(Claim(status: aproved)))", ["aproved"]),
    ("when Claim(id, status: denid) emit Tally(id: id, n: 0)", ["denid"]),
    ("when Claim(id, status: approved) emit Tally(id: id, n: 0)", []),
    ("when Claim(id, status: _) emit Tally(id: id, n: 0)", []),
    # a variable used elsewhere is meant, however it is spelt
    ("when Claim(id, status: aproved) where aproved != denied emit Tally(id: id, n: 0)", []),
    ("when Claim(id, status: s) emit Tally(id: id, n: count(Claim(status: s)))", []),
    ("when Claim(id, status: state) emit Tally(id: id, n: 0)", []),   # unlike any member
])
def test_a_new_variable_spelt_like_a_member_and_used_once_is_a_warning(
        tmp_path: Path, agent: str, warned: list[str]) -> None:
    text = ("ruleset r\nenum Status { approved, denied }\n"
            "fact Claim { key id: str, status: Status }\nfact Tally { key id: str, n: int }\n"
            f"agent a {{\n  {agent}\n}}\n")
    checked = chk(text, tmp_path)
    found = [d for d in checked.diagnostics if d.code == "CVG117"]
    assert [d.message.split("`")[1] for d in found] == warned
    assert all(d.severity == Severity.WARNING for d in checked.diagnostics)


def test_a_whole_fact_is_not_a_value(tmp_path: Path) -> None:
    text = HEAD + ("agent a {\n  when p: Price(sku) and Cost(sku: p)\n"
                   "  emit Alert(sku: sku, message: p)\n}\n")
    assert codes(chk(text, tmp_path)) == ["CVG210", "CVG210"]


@pytest.mark.parametrize(("default", "ok"), [
    ("1", True), ("-1", True), ("-2.5", True), ("if true then 1 else 2", True),
    ("1 + 1", False), ("round(1.5)", False),
])
def test_defaults_are_constants(tmp_path: Path, default: str, ok: bool) -> None:
    checked = chk(f"ruleset r\nfact F {{ key id: str, n: float = {default} }}\n", tmp_path)
    assert checked.ok is ok
    if not ok:
        assert codes(checked) == ["CVG209"]


def test_prune_cannot_aggregate(tmp_path: Path) -> None:
    checked = chk(HEAD + "prune Alert when count(Alert(sku)) > 3\n", tmp_path)
    assert codes(checked) == ["CVG211"]


def test_aggregates(tmp_path: Path) -> None:
    text = HEAD + ("agent a tier 2 {\n  when Cost(sku)\n"
                   "  where count(Price(sku)) > 0 and mean(Price(sku), amount) > 1.5\n"
                   "  emit Alert(sku: sku, message: lower(sku))\n}\n")
    assert chk(text, tmp_path).ok
    bad = HEAD + ("agent a tier 2 {\n  when Cost(sku) where sum(Price(sku), channel) > 0\n"
                  "  emit Alert(sku: sku, message: sku)\n}\n")
    assert codes(chk(bad, tmp_path)) == ["CVG206"]


def test_intent_and_fact_kinds(tmp_path: Path) -> None:
    text = HEAD + ("intent Need { sku: str }\nagent a {\n  when intent Cost(sku) and Need(sku)\n"
                   "  emit Need(sku: sku)\n  intend Alert(sku: sku, message: sku)\n}\n")
    assert codes(chk(text, tmp_path)) == ["CVG205", "CVG205", "CVG208", "CVG208"]


def test_confidence_and_score_are_numbers_in_range(tmp_path: Path) -> None:
    text = HEAD + ('agent a {\n  when p: Price(sku, amount)\n  emit Cost(sku: sku, amount: amount)'
                   ' confidence "high"\n  evaluate p score 2\n}\n')
    assert codes(chk(text, tmp_path)) == ["CVG207", "CVG207"]


# ------------------------------------------------------------------- tools


CALL = HEAD + ('uses tool fx_rate\nfact Rate { key currency: str, usd: float }\n'
               'agent a {\n  when Price(sku)\n  call fx_rate(currency: sku) as r\n'
               '  emit Rate(currency: sku, usd: r.usd)\n}\n')


def test_tool_results_are_untyped_without_a_signature(tmp_path: Path) -> None:
    untyped = CALL.replace("r.usd)", "r.anything)")
    assert chk(untyped, tmp_path).ok


def test_tool_calls_are_checked_against_a_signature(tmp_path: Path) -> None:
    assert chk(CALL, tmp_path, tools={"fx_rate": FX}).ok
    bad = CALL.replace("currency: sku) as r", "currency: 1, extra: 2) as r").replace(
        "r.usd)", "r.eur)")
    checked = chk(bad, tmp_path, tools={"fx_rate": FX})
    assert sorted(codes(checked)) == ["CVG103", "CVG103", "CVG201"]
    missing = CALL.replace("currency: sku) as r", ") as r")
    assert codes(chk(missing, tmp_path, tools={"fx_rate": FX})) == ["CVG111"]


def test_calling_an_undeclared_tool(tmp_path: Path) -> None:
    checked = chk(CALL.replace("uses tool fx_rate", "uses tool fx_rates"), tmp_path)
    diag = only(checked, "CVG801")
    assert "fx_rates" in (diag.help or "")


# ---------------------------------------------------------------- stratification


def _strata(t_warn: int, t_price: int) -> str:
    return HEAD + (f"agent warn tier {t_warn} {{\n  when Cost(sku, amount) where amount < 0\n"
                   '  emit Alert(sku: sku, message: "neg")\n}\n'
                   f"agent price tier {t_price} {{\n  when Cost(sku, amount) and not Alert(sku)\n"
                   "  emit Price(sku: sku, amount: amount)\n}\n")


def test_negation_over_a_lower_tier_is_fine(tmp_path: Path) -> None:
    assert chk(_strata(1, 2), tmp_path).ok


@pytest.mark.parametrize(("t_warn", "t_price"), [(1, 1), (2, 1), (3, 3)])
def test_negation_over_the_same_or_a_higher_tier_names_the_cycle(
        tmp_path: Path, t_warn: int, t_price: int) -> None:
    diag = only(chk(_strata(t_warn, t_price), tmp_path), "CVG302")
    assert f"`price` (tier {t_price})" in diag.message
    assert f"`warn` (tier {t_warn})" in diag.message
    assert diag.related


def test_negation_of_an_input_only_type_is_fine(tmp_path: Path) -> None:
    text = HEAD + ("agent a {\n  when Cost(sku, amount) and not Alert(sku)\n"
                   "  emit Price(sku: sku, amount: amount)\n}\n")
    assert chk(text, tmp_path).ok


# -------------------------------------------------------------------- policies


TWO = HEAD + ("agent a {\n  when Cost(sku, amount)\n  emit Price(sku: sku, amount: amount)\n}\n"
              "agent b {\n  when Cost(sku, amount)\n"
              "  emit Price(sku: sku, amount: 2 * amount)\n}\n")


def test_keyed_type_from_two_agents_without_policy_is_a_warning(tmp_path: Path) -> None:
    checked = chk(TWO, tmp_path)
    diag = only(checked, "CVG409")
    assert diag.severity is Severity.WARNING
    assert checked.ok
    assert chk(TWO + "policy Price { resolve by latest }\n", tmp_path).diagnostics == ()


@pytest.mark.parametrize(("policy", "code"), [
    ("policy Price { resolve by lowest amout }", "CVG404"),
    ("policy Price { resolve by highest sku }", "CVG404"),
    ("policy Price { combine sum note }", "CVG405"),
    ("policy Price { resolve by priority [a, z] }", "CVG406"),
    ("policy Price { resolve by latest, then earliest }", "CVG408"),
    ("policy Alert { resolve by latest }", "CVG402"),
    ("policy Alert { keep all }", "CVG403"),
    ("policy Nope { keep all }", "CVG101"),
])
def test_policy_problems(tmp_path: Path, policy: str, code: str) -> None:
    # Price needs a policy of its own unless the one under test is for Price.
    base = "" if "Price" in policy else "policy Price { resolve by latest }\n"
    checked = chk(TWO + base + policy + "\n", tmp_path)
    assert code in codes(checked)


def test_resolvers_any_name_unless_a_list_is_known(tmp_path: Path) -> None:
    text = TWO + "policy Price { resolve by using median }\n"
    assert chk(text, tmp_path).ok
    assert chk(text, tmp_path, resolvers=["median"]).ok
    assert codes(chk(text, tmp_path, resolvers=["medain", "vote"])) == ["CVG407"]


# ------------------------------------------------------------ root, prune, tests


def test_root_budgets_and_requires(tmp_path: Path) -> None:
    text = HEAD + ('root "g" {\n  max_facts = 10\n  max_cycles = 0\n  agent_timeout = 5\n'
                   "  job_timeout = 1s\n  max_tools = 3\n  max_facts = 20\n"
                   "  require count(Alert())\n  require count(Alert()) == 0\n}\n"
                   'root "h" {\n}\n')
    assert sorted(codes(chk(text, tmp_path))) == [
        "CVG501", "CVG502", "CVG503", "CVG503", "CVG504", "CVG505"]


def test_prune_scope_has_age_and_fields(tmp_path: Path) -> None:
    assert chk(HEAD + "prune Price when age > 3 and amount < 1.0\n", tmp_path).ok
    assert codes(chk(HEAD + "prune Price when age\n", tmp_path)) == ["CVG202"]


def test_test_blocks(tmp_path: Path) -> None:
    text = HEAD + ('intent Need { sku: str }\nuses tool fx_rate\n'
                   'test "t" {\n  given Need(sku: "A")\n  given Cost(sku: "A", amount: 1)\n'
                   '  mock tool fx_rate(currency: "EUR") returns {usd: 1.1}\n'
                   '  expect Price(sku: "A", channel: web)\n  expect conflict Price(sku: "A")\n'
                   "  expect status unmet_goal\n}\n")
    assert chk(text, tmp_path, tools={"fx_rate": FX}).ok
    bad = HEAD + ('test "t" {\n  given Cost(sku: "A")\n  mock tool fx(currency: "EUR") returns {}\n'
                  '  expect conflict Alert(sku: "A")\n  expect status done\n  expect Prize()\n}\n'
                  'test "t" {\n}\n')
    assert sorted(codes(chk(bad, tmp_path))) == [
        "CVG101", "CVG111", "CVG701", "CVG702", "CVG703", "CVG704"]


# ---------------------------------------------------------------- never raises


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(strategies.modules(max_items=6), min_size=1, max_size=2))
def test_check_never_raises_and_every_finding_says_where_and_how(
        modules: list[Module]) -> None:
    checked = check(LoadResult(tuple(modules), ()))
    for d in checked.diagnostics:
        assert d.span is not None and d.message and d.help
    assert [d.sort_key() for d in checked.diagnostics] == sorted(
        d.sort_key() for d in checked.diagnostics)


def test_open_tool_signatures_check_declared_arguments_and_accept_the_rest() -> None:
    from converge_rules.language.checks.checked import ToolSignature
    from converge_rules.language.checks.checker import check_file

    text = (
        'ruleset t "t"\nuses tool fetch\nfact A { id: str }\nfact B { id: str, v: str }\n'
        "agent a {\n  when A(id)\n  call fetch(url: URL, page: 2) as r\n"
        "  emit B(id: id, v: r.anything)\n}\n"
    )
    sig = ToolSignature("fetch", {"url": "str", "*": "any"}, {"*": "any"})
    good = check_file("t.cvg", source=text.replace("URL", '"https://x"'), tools={"fetch": sig})
    assert [d.code for d in good.diagnostics if d.is_error] == []
    bad = check_file("t.cvg", source=text.replace("URL", "3"), tools={"fetch": sig})
    assert [(d.code, d.span.line if d.span else 0) for d in bad.diagnostics] == [("CVG201", 7)]


def test_a_pattern_written_in_where_gets_a_fix_that_says_so() -> None:
    from converge_rules.language.checks.checker import check_file

    head = ('ruleset w "w"\nfact A { key id: str }\nfact B { key id: str }\n'
            "fact C { key id: str }\nagent a {\n  when A(id) where WHERE\n  emit C(id: id)\n}\n")
    for where, code in (("not B(id)", "CVG802"), ("not B(id: id)", "CVG009")):
        found = check_file("w.cvg", source=head.replace("WHERE", where)).diagnostics
        assert [d.code for d in found] == [code]
        assert found[0].help is not None and "`and not B(…)` in `when`" in found[0].help
