"""The Program around the agents: types, defaults, keys, policies, budgets, indexes,
prunes, requires, errors; and every shipped ruleset compiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from compiler_support import ListView, compile_text

from converge_rules.compiler.compile import CompileError, compile_ruleset
from converge_rules.errors import CheckError
from converge_rules.language.checks.checker import check_file
from converge_rules.program import MISSING, Budgets, CriterionSpec, ValueType

ROOT = Path(__file__).resolve().parents[2]

TYPES = """\
ruleset t
uses tool fx, geo
enum Channel { web, store }
fact Cost  { key sku: str, amount: float = 1, tags: list[str] = ["a"], note: str? }
fact Price { key sku: str, key channel: Channel = web, amount: float, n: int = -2 }
fact Log   { key id: int, text: str }
fact Tot   { key sku: str, amount: float }
fact Seen  { key sku: str, by: str }
fact Win   { key sku: str, who: str, amount: float }
fact Any   { key sku: str, amount: float }
intent Ask { q: str }
"""


def test_types_in_declaration_order_with_runtime_types_and_defaults() -> None:
    p = compile_text(TYPES)
    assert [t.name for t in p.types] == ["Cost", "Price", "Log", "Tot", "Seen", "Win",
                                         "Any", "Ask"]
    assert [t.id for t in p.types] == list(range(8))
    assert p.type_ids["Price"] == 1 and p.type("Price").name == "Price"
    cost = p.type("Cost")
    assert [f.type for f in cost.fields] == [
        ValueType("str"), ValueType("float"),
        ValueType("list", element=ValueType("str")), ValueType("str", optional=True),
    ]
    assert [f.default for f in cost.fields] == [MISSING, 1.0, ("a",), MISSING]
    assert isinstance(cost.fields[1].default, float)
    assert [f.required for f in cost.fields] == [True, False, False, False]
    price = p.type("Price")
    assert price.key_positions == (0, 1)
    assert price.fields[1].type == ValueType("enum", enum="Channel", members=("web", "store"))
    assert [f.default for f in price.fields][1:] == ["web", MISSING, -2]
    assert p.type("Ask").intent and not p.type("Cost").intent
    assert p.tools == ("fx", "geo")
    assert p.budgets == Budgets() and p.goal is None


def test_policies_of_every_form() -> None:
    p = compile_text(TYPES + """
policy Cost  { resolve by highest confidence, then lowest amount, then latest on tie first }
policy Price { resolve by priority [a, b], then majority, then earliest, then lowest score }
policy Log   { reject }
policy Tot   { combine sum amount }
policy Seen  { keep all }
policy Win   { resolve by using coin }
agent a { when Log(id) emit Win(sku: "x", who: "a", amount: 1.0) }
agent b { when Log(id) emit Win(sku: "x", who: "b", amount: 2.0) }
""", resolvers={"coin": coin})
    pol = {p.types[t].name: spec for t, spec in p.policies.items()}
    assert pol["Cost"].mode == "resolve" and pol["Cost"].on_tie == "first"
    assert pol["Cost"].criteria == (
        CriterionSpec("confidence", direction="highest"),
        CriterionSpec("field", direction="lowest", position=1),
        CriterionSpec("latest"),
    )
    assert pol["Price"].criteria == (
        CriterionSpec("priority", agents=("a", "b")), CriterionSpec("majority"),
        CriterionSpec("earliest"), CriterionSpec("score", direction="lowest"),
    )
    assert pol["Price"].on_tie == "reject"
    assert pol["Log"].mode == "reject"
    assert (pol["Tot"].mode, pol["Tot"].combine_func, pol["Tot"].combine_position) == (
        "combine", "sum", 1)
    assert "Seen" not in pol and p.type("Seen").key_positions == ()
    assert pol["Win"].criteria == (CriterionSpec("using", resolver="coin"),)
    assert pol["Win"].criteria[0].resolver_fn is coin  # bound at compile time


def coin(type_spec: Any, contenders: Any) -> list[int]:
    return [0]


def test_a_resolver_no_plugin_provides_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match=r"`using coin`, which no loaded plugin provides "
                                           r"\(resolvers: median\)"):
        compile_text(TYPES + "policy Win { resolve by using coin }\n",
                     resolvers={"median": coin})


def test_root_budgets_and_require() -> None:
    p = compile_text(TYPES + """
root "all priced" {
  max_facts = 5_000
  max_cycles = 7
  agent_timeout = 250ms
  job_timeout = 2m
  require count(Cost()) == count(Price()) and not (count(Log(text: "bad")) > 0)
}
""")
    assert p.goal == "all priced"
    assert p.budgets == Budgets(max_facts=5000, max_cycles=7, max_agents=None,
                                max_tool_calls=None, agent_timeout=0.25, job_timeout=120.0)
    (req,) = p.requires
    assert "count(Cost()) == count(Price())" in req.text
    v = ListView(p)
    assert req.fn(v) is True
    v.add("Cost", "A", 1.0, (), None)
    assert req.fn(v) is False
    v.add("Price", "A", "web", 1.0, 0)
    assert req.fn(v) is True
    v.add("Log", 1, "bad")
    assert req.fn(v) is False
    assert "def require(view):" in req.source


def test_prune_sees_fields_by_name_and_age() -> None:
    p = compile_text(TYPES + 'prune Cost when age > 2 and amount < 5.0 and note == "x"\n')
    (pr,) = p.prunes
    assert pr.type_id == p.type_ids["Cost"]
    assert pr.fn(("A", 1.0, (), "x"), 3) is True
    assert pr.fn(("A", 1.0, (), "x"), 2) is False
    assert pr.fn(("A", 9.0, (), "x"), 3) is False
    assert pr.text == 'age > 2 and amount < 5.0 and note == "x"'


def test_indexes_are_deduplicated_across_agents() -> None:
    p = compile_text(TYPES + """
agent a tier 2 { when Cost(sku) and Price(sku) emit Log(id: 1, text: "a") }
agent b tier 2 { when Tot(sku) and Price(sku) emit Log(id: 2, text: "b") }
agent c tier 2 { when Tot(sku) where count(Price(sku)) > 0 emit Log(id: 3, text: "c") }
""")
    price = p.type_ids["Price"]
    on_sku = [ix for ix in p.indexes if ix.type_id == price and ix.positions == (0,)]
    assert len(on_sku) == 1
    assert [ix.id for ix in p.indexes] == list(range(len(p.indexes)))


def test_errors_raise_check_error() -> None:
    checked = check_file("bad.cvg", source="ruleset b\nfact A { a: int }\n"
                                            "agent q { when A(a) emit A(a: zz) }\n")
    with pytest.raises(CheckError) as info:
        compile_ruleset(checked)
    assert any(d.code == "CVG106" for d in info.value.diagnostics)


def test_language_reference_example_compiles() -> None:
    import re

    text = ROOT / "docs" / "language-contract.md"  # the contract, copied verbatim
    source = re.search(r"```\n(ruleset pricing.*?)```", text.read_text(), re.S)
    assert source is not None
    p = compile_text(source.group(1))
    assert [a.name for a in p.agents] == ["ask_rate", "fetch_rate", "undercut", "cost_plus",
                                          "below_cost"]


RULESETS = sorted((ROOT / "rulesets").rglob("*.cvg"))


def test_the_shipped_rulesets_are_found() -> None:
    assert len(RULESETS) >= 6, RULESETS


@pytest.mark.parametrize("path", RULESETS, ids=[p.name for p in RULESETS])
def test_every_shipped_ruleset_compiles(path: Path) -> None:
    from converge_rules.plugins import load_registries

    registries = load_registries()
    checked = check_file(path, tools=registries.tool_signatures(),
                         functions=registries.function_signatures(),
                         resolvers=sorted(registries.resolvers))
    assert checked.ok, [f"{d.code} {d.span}: {d.message}" for d in checked.diagnostics
                        if d.is_error]
    program = compile_ruleset(checked, **registries.compiler_kwargs())
    for agent in program.agents:
        compile(agent.source, agent.name, "exec")
        assert agent.fn(ListView(program), 0, _NoTools()) == []   # empty context: no match


class _NoTools:
    def call(self, tool: str, args: dict[str, object]) -> dict[str, object]:
        raise AssertionError("no tool call without a match")


def test_indexes_name_the_types_whose_new_facts_drive_their_lookups() -> None:
    p = compile_text(
        "ruleset t\n"
        "fact Edge { src: int, dst: int }\nfact Path { src: int, dst: int }\n"
        "fact Blocked { src: int }\nfact Open { src: int }\n"
        "agent base { when Edge(src: a, dst: b) emit Path(src: a, dst: b) }\n"
        "agent step { when Edge(src: a, dst: b) and Path(src: b, dst: c)"
        " emit Path(src: a, dst: c) }\n"
        "agent open tier 2 { when Path(src) and not Blocked(src) emit Open(src: src) }\n"
    )
    by_key = {(p.types[ix.type_id].name, ix.positions): ix.driven_by for ix in p.indexes}
    edge, path = p.type_ids["Edge"], p.type_ids["Path"]
    # Path(src) is looked up only when Edge is new, or Blocked facts are gone (open
    # then finds the paths they unblock); Edge(dst) only when Path is new.
    assert by_key[("Path", (0,))] == tuple(sorted((edge, p.type_ids["Blocked"])))
    assert by_key[("Edge", (1,))] == (path,)
    # A negation may look up in any run: the index is kept at all times.
    assert by_key[("Blocked", (0,))] == ()
