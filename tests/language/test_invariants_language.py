"""``invariant`` items in the language: parsed, type-checked like guards and goals
(errors with spans and fixes), formatted so that they round-trip, reported by
coverage when no test breaks them, and `converge run` exits 3 on
``invariant_violated``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main
from converge_rules.language.checks.checker import check_file
from converge_rules.language.format.formatter import format_source
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.parser import parse

HEAD = """\
ruleset payouts
fact Claim   { key claim: str, amount: float }
fact Policy  { key claim: str, limit: float }
fact Payment { key claim: str, amount: float }
agent pay {
  when Claim(claim, amount)
  emit Payment(claim: claim, amount: amount)
}
"""

NEVER = ("invariant within_limit never Payment(claim, amount) and Policy(claim, limit) "
         "where amount > limit\n")
ALWAYS = "invariant budget always sum(Payment(), amount) <= 1_000.0\n"


def errors(tmp_path: Path, text: str) -> list[tuple[str, int, int, str, str]]:
    path = tmp_path / "r.cvg"
    path.write_text(text, encoding="utf-8")
    checked = check_file(path)
    return [(d.code, d.span.line, d.span.column, d.message, d.help or "")
            for d in checked.diagnostics if d.is_error]


def test_both_kinds_parse_into_invariant_nodes() -> None:
    module = parse(HEAD + NEVER + ALWAYS, "r.cvg").module
    assert module is not None
    never, always = [i for i in module.items if isinstance(i, n.Invariant)]
    assert never.name.name == "within_limit" and not never.always
    assert [p.type.name for p in never.patterns] == ["Payment", "Policy"]
    assert isinstance(never.condition, n.Binary)
    assert always.name.name == "budget" and always.always and always.patterns == ()


def test_a_well_typed_invariant_checks_clean(tmp_path: Path) -> None:
    assert errors(tmp_path, HEAD + NEVER + ALWAYS) == []


def test_a_guard_of_the_wrong_type_is_an_error_at_the_guard(tmp_path: Path) -> None:
    found = errors(tmp_path, HEAD + "invariant bad never Payment(amount) where amount\n")
    assert [(code, line, col) for code, line, col, *_ in found] == [("CVG202", 9, 43)]


def test_an_unknown_field_or_name_is_an_error_with_a_fix(tmp_path: Path) -> None:
    found = errors(tmp_path, HEAD + "invariant bad never Payment(amout) where amont > 1.0\n")
    codes = {code: (line, col, help_) for code, line, col, _, help_ in found}
    assert codes["CVG103"][:2] == (9, 29) and "amount" in codes["CVG103"][2]
    assert codes["CVG106"][:2] == (9, 42)


def test_an_always_invariant_must_be_a_condition(tmp_path: Path) -> None:
    found = errors(tmp_path, HEAD + "invariant budget always sum(Payment(), amount)\n")
    assert [(code, line, col) for code, line, col, *_ in found] == [("CVG506", 9, 25)]
    assert "must be a bool, found float" in found[0][3]


def test_a_never_invariant_needs_a_positive_pattern(tmp_path: Path) -> None:
    found = errors(tmp_path, HEAD + "invariant has_policy never not Policy()\n")
    assert [code for code, *_ in found] == ["CVG507"]
    assert "always count(T()) > 0" in found[0][4]


def test_two_invariants_may_not_share_a_name(tmp_path: Path) -> None:
    found = errors(tmp_path, HEAD + NEVER + NEVER)
    assert [(code, line) for code, line, *_ in found] == [("CVG102", 10)]


@pytest.mark.parametrize("text", [
    NEVER, ALWAYS,
    "invariant approved never Payment(claim) and not Policy(claim)\n",
    "invariant  tiny   never   p: Payment( amount )  where p.amount<1.0\n",
])
def test_invariants_round_trip_through_the_formatter(text: str) -> None:
    source = HEAD + text
    formatted = format_source(source, "r.cvg")
    again = parse(formatted, "r.cvg").module
    assert again is not None and again == parse(source, "r.cvg").module
    assert format_source(formatted, "r.cvg") == formatted


def test_an_invariant_written_over_lines_is_formatted_on_one() -> None:
    spread = NEVER.replace(" and ", "\n  and ").replace(" where ", "\n  where ")
    assert format_source(HEAD + spread, "r.cvg").endswith(NEVER)


# ----------------------------------------------------------------- coverage, CLI

BREAKS = """
test "a payment over its limit is never merged" {
  given Claim(claim: "c1", amount: 5_000.0)
  given Policy(claim: "c1", limit: 100.0)
  expect no Payment(claim: "c1")
}
"""


def test_coverage_lists_an_invariant_no_test_broke(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.cvg").write_text(HEAD + NEVER + ALWAYS + BREAKS, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "r.cvg", "--coverage", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.rsplit("\n1 passed", 1)[0])
    items = {i["name"]: i for i in data["coverage"]["rulesets"][0]["items"]
             if i["kind"] == "invariant"}
    assert items["within_limit"]["covered"] is True
    assert items["budget"]["covered"] is False
    assert items["budget"]["detail"] == "never broken by a test"
    text = CliRunner().invoke(main, ["test", "r.cvg", "--coverage"]).output
    assert "invariant budget at" in text and "invariants broken: 1/2" in text


def test_run_exits_3_when_an_invariant_ends_the_job(tmp_path: Path) -> None:
    rules = tmp_path / "r.cvg"
    rules.write_text(HEAD + ALWAYS, encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Claim": {"claim": "a", "amount": 800.0}}\n'
                     '{"Claim": {"claim": "b", "amount": 800.0}}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(rules), "-f", str(facts)])
    assert result.exit_code == 3, result.output
    assert "invariant budget broken in cycle 1 (agents: pay; the job ended)" in result.stdout
    assert "invariant_violated after 1 cycle" in result.stdout
