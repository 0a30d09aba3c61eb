"""Approval gates in the language: ``approve TYPE [when EXPR]`` parsed and checked
(errors with spans and fixes), formatted so that it round-trips; test blocks that
``approve``/``reject`` pending facts and ``expect pending``; coverage of gates; `converge
run` exits 4 on ``awaiting_approval``; replay and verify of a trace with gate events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules import Decision, api
from converge_rules.cli import main
from converge_rules.language.checks.checker import check_file
from converge_rules.language.format.formatter import format_source
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.parser import parse

HEAD = """\
ruleset claims
fact Claim   { key id: str, amount: float }
fact Payment { key claim: str, amount: float }
intent Review { claim: str }
agent pay {
  when Claim(id, amount)
  emit Payment(claim: id, amount: amount)
}
"""
GATE = "approve Payment when amount > 10_000.0\n"


def diagnostics(tmp_path: Path, text: str) -> list[tuple[str, int, int, str, str]]:
    path = tmp_path / "r.cvg"
    path.write_text(text, encoding="utf-8")
    return [(d.code, d.span.line, d.span.column, d.message, d.help or "")
            for d in check_file(path).diagnostics]


def test_a_gate_parses_with_and_without_a_condition() -> None:
    module = parse(HEAD + GATE + "approve Claim\n", "r.cvg").module
    assert module is not None
    gated, every = [i for i in module.items if isinstance(i, n.Gate)]
    assert gated.type.name == "Payment" and isinstance(gated.condition, n.Binary)
    assert every.type.name == "Claim" and every.condition is None


def test_a_well_typed_gate_checks_clean(tmp_path: Path) -> None:
    assert diagnostics(tmp_path, HEAD + GATE) == []


@pytest.mark.parametrize(("gate", "code", "column", "message"), [
    ("approve Payment when amount\n", "CVG510", 22,
     "the approval gate's condition must be a bool, found float"),
    ("approve Paymnet\n", "CVG101", 9, "approval gate on unknown type `Paymnet`"),
    ("approve Review\n", "CVG512", 9, "`Review` is an intent type"),
    ("approve Payment when count(Payment()) > 2\n", "CVG513", 22,
     "an approval gate cannot use `count`"),
    ("approve Payment when amout > 1.0\n", "CVG106", 22, "unknown name `amout`"),
])
def test_a_bad_gate_is_an_error_where_it_is_wrong(tmp_path: Path, gate: str, code: str,
                                                  column: int, message: str) -> None:
    found = [d for d in diagnostics(tmp_path, HEAD + gate) if d[0] != "CVG514"]
    assert [(c, line, col) for c, line, col, *_ in found] == [(code, 9, column)]
    assert message in found[0][3]


def test_a_second_gate_for_a_type_is_an_error_pointing_at_the_first(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, HEAD + GATE + 'approve Payment when claim == "x"\n')
    assert [(c, line) for c, line, *_ in found] == [("CVG511", 10)]
    assert "combine the conditions with `or`" in found[0][4]


def test_a_gate_no_agent_reaches_is_a_warning(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, HEAD + "approve Claim when amount > 1.0\n")
    assert [(c, line, col) for c, line, col, *_ in found] == [("CVG514", 9, 9)]
    assert "input facts are not gated" in found[0][4]


@pytest.mark.parametrize("step", [
    'approve Claim(id: "c1")', 'reject Claim(id: "c1")', 'expect pending Claim(id: "c1")'])
def test_decisions_and_pending_expectations_need_a_gated_type(tmp_path: Path,
                                                              step: str) -> None:
    text = HEAD + GATE + f'test "t" {{\n  given Claim(id: "c1", amount: 1.0)\n  {step}\n}}\n'
    found = [d for d in diagnostics(tmp_path, text) if d[0] != "CVG514"]
    assert [(c, line) for c, line, *_ in found] == [("CVG710", 12)]
    assert "add `approve Claim when …`" in found[0][4]


def test_test_steps_are_checked_as_patterns(tmp_path: Path) -> None:
    text = HEAD + GATE + ('test "t" {\n  given Claim(id: "c1", amount: 1.0)\n'
                          '  approve Payment(clam: "c1")\n'
                          "  expect pending not Payment()\n  expect status awaiting\n}\n")
    codes = [c for c, *_ in diagnostics(tmp_path, text)]
    assert codes == ["CVG103", "CVG709", "CVG701"]


TESTED = HEAD.replace("intent Review { claim: str }\n", "") + GATE + """\
# a gate
approve   Claim   # every claim
test "t" {
  given Claim(id: "c1", amount: 20_000.0)
  approve   Payment(claim:"c1")
  reject Payment( claim: "c2" )
  expect   pending Payment(claim: "c1", amount: 20_000.0)
  expect status awaiting_approval
}
"""


def test_gates_and_their_test_steps_round_trip_through_the_formatter() -> None:
    once = format_source(TESTED, "r.cvg")
    assert ("approve Payment when amount > 10_000.0\n# a gate\n"
            "approve Claim                            # every claim\n") in once
    assert ('  approve Payment(claim: "c1")\n  reject Payment(claim: "c2")\n'
            '  expect pending Payment(claim: "c1", amount: 20_000.0)\n') in once
    assert format_source(once, "r.cvg") == once
    before = parse(TESTED, "r.cvg").module
    after = parse(once, "r.cvg").module
    assert before is not None and after is not None
    assert before.items == after.items


SUITE = HEAD.replace("intent Review { claim: str }\n", "") + GATE + """\
fact Letter { claim: str }
agent write {
  when Payment(claim)
  emit Letter(claim: claim)
}

test "held" {
  given Claim(id: "c1", amount: 20_000.0)
  expect pending Payment(claim: "c1", amount: 20_000.0)
  expect no Letter(claim: "c1")
  expect status awaiting_approval
}

test "approved" {
  given Claim(id: "c1", amount: 20_000.0)
  approve Payment(claim: "c1")
  expect Letter(claim: "c1")
  expect status converged
}

test "rejected" {
  given Claim(id: "c1", amount: 20_000.0)
  given Claim(id: "c2", amount: 30_000.0)
  reject Payment(claim: "c1")
  expect no Payment(claim: "c1")
  expect pending Payment(claim: "c2")
  expect status awaiting_approval
}
"""


def test_test_blocks_decide_and_expect_pending_facts(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.cvg").write_text(SUITE, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "r.cvg"])
    assert result.exit_code == 0, result.output
    assert "3 passed, 0 failed" in result.output


def test_a_wrong_pending_expectation_fails_listing_what_is_pending(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.cvg").write_text(SUITE.replace(
        'expect pending Payment(claim: "c2")', 'expect pending Payment(claim: "c1")'),
        encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "r.cvg"])
    assert result.exit_code == 1
    assert 'expected Payment(claim: "c1") pending approval' in result.output
    assert "Payment facts pending at the end:" in result.output
    assert 'Payment(claim: "c2", amount: 30000.0)' in result.output


@pytest.mark.parametrize("steps, step", [
    # a mistyped id: C1 stays held, so `expect no Payment` passed whatever was decided
    ('  reject Payment(claim: "C1")\n', 'reject Payment(claim: "C1")'),
    # contradictory steps: the first that matches decides, the second did nothing
    ('  approve Payment(claim: "c1")\n  reject Payment(claim: "c1")\n',
     'reject Payment(claim: "c1")'),
])
def test_a_decision_step_that_decides_nothing_fails_the_test(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: str, step: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.cvg").write_text(HEAD.replace("intent Review { claim: str }\n", "") + GATE + (
        'test "t" {\n  given Claim(id: "c1", amount: 20_000.0)\n' + steps
        + '  expect Claim(id: "c1")\n}\n'), encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "r.cvg"])
    assert result.exit_code == 1, result.output
    assert f"`{step}` decided no pending fact" in result.output
    assert "0 passed, 1 failed" in result.output


def test_coverage_lists_a_gate_that_held_nothing(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    held = SUITE.split('test "approved"')[0]
    Path("r.cvg").write_text(held, encoding="utf-8")
    out = json.loads(CliRunner().invoke(
        main, ["test", "r.cvg", "--coverage", "--format", "json"]).output.rsplit(
        "\n1 passed", 1)[0])
    (gate,) = [i for i in out["coverage"]["rulesets"][0]["items"] if i["kind"] == "gate"]
    assert gate["covered"] is True and gate["name"] == "Payment"
    Path("r.cvg").write_text(held.replace("20_000.0", "2.0").replace(
        "  expect pending Payment(claim: \"c1\", amount: 2.0)\n", "").replace(
        "expect no Letter", "expect Letter").replace("awaiting_approval", "converged"),
        encoding="utf-8")
    out = json.loads(CliRunner().invoke(
        main, ["test", "r.cvg", "--coverage", "--format", "json"]).output.rsplit(
        "\n1 passed", 1)[0])
    (gate,) = [i for i in out["coverage"]["rulesets"][0]["items"] if i["kind"] == "gate"]
    assert gate["covered"] is False and gate["detail"] == "never held a fact in a test"


def test_run_exits_4_when_facts_await_approval(tmp_path: Path) -> None:
    rules = tmp_path / "r.cvg"
    rules.write_text(HEAD + GATE, encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Claim": {"id": "c1", "amount": 20000.0}}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(rules), "-f", str(facts), "--format",
                                       "json"])
    assert result.exit_code == 4, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "awaiting_approval"
    assert [p["fields"] for p in doc["pending"]] == [{"claim": "c1", "amount": 20000.0}]
    assert "4  awaiting_approval" in CliRunner().invoke(main, ["run", "--help"]).output


def test_replay_and_verify_of_a_trace_with_gate_events(tmp_path: Path) -> None:
    rules = tmp_path / "r.cvg"
    rules.write_text(HEAD + GATE, encoding="utf-8")
    ruleset = converge_rules.load(rules, plugins=False)
    facts = [("Claim", {"id": "c1", "amount": 20_000.0}),
             ("Claim", {"id": "c2", "amount": 30_000.0})]
    paused = api.run(ruleset, facts, now=None)
    first, second = (p["id"] for p in paused.pending)
    decisions = [Decision(first, True, by="ann", at="2026-12-06T10:00:00Z", note="ok",
                          edits={"amount": 19_000.0}),
                 Decision(second, False, by="bob", at="2026-12-06T10:05:00Z")]
    trace = tmp_path / "run.jsonl"
    api.run(ruleset, facts, now=None, decisions=decisions, trace=trace)
    kinds = [json.loads(line)["event"] for line in trace.read_text().splitlines()]
    assert kinds.count("approval_pending") == 2 and kinds.count("approval_decided") == 2
    verify = CliRunner().invoke(main, ["verify", str(trace)])
    assert verify.exit_code == 0, verify.output
    replay = CliRunner().invoke(main, ["replay", str(rules), str(trace)])
    assert replay.exit_code == 0, replay.output
    assert "identical" in replay.output and "status converged" in replay.output
    # the decisions are part of the record: a changed one is caught
    lines = trace.read_text().splitlines()
    tampered = [line.replace('"by":"bob"', '"by":"eve"') for line in lines]
    (tmp_path / "bad.jsonl").write_text("\n".join(tampered) + "\n")
    assert CliRunner().invoke(main, ["verify", str(tmp_path / "bad.jsonl")]).exit_code == 1
