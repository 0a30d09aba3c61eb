"""``converge replay``: a recorded trace replays identically (tools answered from the
recording, inputs read from it), a changed ruleset is caught at the first differing
line, and bad traces are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main

REPO = Path(__file__).resolve().parents[2]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"

PLUGIN = '''
from pydantic import BaseModel

from converge_rules.plugins.api import hookimpl
from converge_rules.plugins.api import Tool

CALLS = []


class Args(BaseModel):
    currency: str


class Answer(BaseModel):
    usd: float


def fx_rate(args):
    CALLS.append(args.currency)
    if args.currency == "XXX":
        raise ValueError("no such currency")
    return Answer(usd={"EUR": 1.08, "GBP": 1.27}[args.currency])


@hookimpl
def converge_register_tools(register):
    register(Tool("fx_rate", fx_rate, Args, Answer))
'''

INPUT = [
    {"Cost": {"sku": "A1", "amount": 10.0}},
    {"Quote": {"sku": "A1", "vendor": "acme", "amount": 12.0}},
    {"Quote": {"sku": "B2", "vendor": "euro", "amount": 11.0, "currency": "EUR"}},
    {"Quote": {"sku": "B2", "vendor": "pound", "amount": 11.0, "currency": "GBP"}},
    {"Quote": {"sku": "C3", "vendor": "odd", "amount": 1.0, "currency": "XXX"}},
]


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "fx_plugin_for_replay.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    # This test's own fx_rate replaces the demo one converge-example provides.
    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS", "converge-example")
    return "fx_plugin_for_replay"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def recorded(tmp_path: Path, plugin: str) -> Path:
    facts = tmp_path / "in.jsonl"
    facts.write_text("".join(json.dumps(f) + "\n" for f in INPUT), encoding="utf-8")
    trace = tmp_path / "run.jsonl"
    result = invoke("--plugin", plugin, "run", PRICING, "--facts", facts, "--trace", trace)
    assert result.exit_code == 0, result.output
    calls = [json.loads(line) for line in trace.read_text().splitlines()
             if '"tool_call"' in line]
    assert {c["args"]["currency"] for c in calls} == {"EUR", "GBP", "XXX"}
    assert any(c["error"] for c in calls)  # a failing call is recorded too
    return trace


def test_replay_is_identical_without_calling_the_tools(recorded: Path, plugin: str,
                                                       tmp_path: Path) -> None:
    import importlib

    module = importlib.import_module(plugin)
    module.CALLS.clear()
    out = tmp_path / "again.jsonl"
    result = invoke("--plugin", plugin, "replay", PRICING, recorded, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("identical:")
    assert module.CALLS == []                     # answered from the recording
    assert out.read_bytes() == recorded.read_bytes()


def test_replay_needs_no_plugin_and_any_executor(recorded: Path) -> None:
    result = invoke("replay", PRICING, recorded, "--executor", "threads", "--workers", "3")
    assert result.exit_code == 0, result.output


def test_a_ruleset_without_the_recorded_input_types_is_named_with_the_recording(
        recorded: Path, tmp_path: Path) -> None:
    # Met as: "converge: error: <facts>:1: unknown fact type `Cost`", naming neither the
    # trace nor the ruleset the facts did not fit.
    other = tmp_path / "other.cvg"
    other.write_text("ruleset other\nfact In { key id: str }\n", encoding="utf-8")
    result = invoke("replay", other, recorded)
    assert result.exit_code == 2, result.output
    assert f"{recorded}: the recorded input fact 1 does not fit {other}: unknown fact " \
        "type `Cost`" in result.output
    assert "declared types: In; replay a job against the ruleset it ran" in result.output
    assert "<facts>" not in result.output


def test_a_changed_ruleset_differs_at_the_first_changed_line(recorded: Path,
                                                             tmp_path: Path) -> None:
    changed = tmp_path / "pricing.cvg"
    changed.write_text(PRICING.read_text().replace("theirs * 0.99", "theirs * 0.98"))
    result = invoke("replay", changed, recorded)
    assert result.exit_code == 1
    assert "differs at line" in result.stdout
    assert "11.88" in result.stdout and "11.76" in result.stdout


def test_a_difference_the_summary_does_not_show_is_named(recorded: Path,
                                                          tmp_path: Path) -> None:
    # found: a conflict with other losers read "recorded a conflict on Price … (winner
    # X), replayed a conflict on Price … (winner X)": the same words twice
    changed = tmp_path / "pricing.cvg"
    changed.write_text(PRICING.read_text().replace("cost * 1.2, 2", "cost * 1.25, 2"))
    result = invoke("replay", changed, recorded)
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.endswith(
        'cycle 1, agent undercut: a conflict on Price {"channel": "web", "sku": "A1"} '
        '(winner {"amount": 11.88, "channel": "web", "sku": "A1"}), with losers '
        '[{"amount": 12.0, "channel": "web", "sku": "A1"}] recorded, '
        '[{"amount": 12.5, "channel": "web", "sku": "A1"}] replayed'), first


def test_a_bad_trace_line_is_named(tmp_path: Path) -> None:
    trace = tmp_path / "bad.jsonl"
    trace.write_text('{"event": "status", "status": "converged", "detail": ""}\nnot json\n')
    result = invoke("replay", PRICING, trace)
    assert result.exit_code == 2
    assert f"{trace}:2:" in result.stderr and "not JSON" in result.stderr


def test_ruleset_errors_exit_2(tmp_path: Path, recorded: Path) -> None:
    bad = tmp_path / "bad.cvg"
    bad.write_text("ruleset bad\nfact A { x: nope }\n")
    result = invoke("replay", bad, recorded)
    assert result.exit_code == 2 and "CVG" in result.stderr


def test_an_abandoned_call_is_not_an_answer_of_the_tool() -> None:
    from converge_rules.cli.replay import recorded_tools
    from converge_rules.engine.tools import ABANDONED

    events = [
        {"event": "tool_call", "tool": "fx", "args": {"currency": "EUR"},
         "result": {"usd": 1.1}, "error": None},
        {"event": "tool_call", "tool": "fx", "args": {"currency": "EUR"},
         "result": None, "error": ABANDONED},
    ]
    assert recorded_tools(events)["fx"]({"currency": "EUR"}) == {"usd": 1.1}


CONFLICTING = """\
ruleset inputs "inputs that conflict"
fact Claim { key id: str, due: date, note: str, qty: int }
fact Seen  { id: str, note: str, qty: int }
agent seen {
  when Claim(id, note, qty)
  emit Seen(id: id, note: note, qty: qty)
}
"""

CLAIMS = [
    {"Claim": {"id": "a", "due": "2026-01-05", "note": "first", "qty": 1}},
    {"Claim": {"id": "b", "due": "2026-03-01", "note": "b1", "qty": 2}},
    {"Claim": {"id": "a", "due": "2026-01-01", "note": "second", "qty": 3}},
    {"Claim": {"id": "c", "due": "2026-02-01", "note": "c", "qty": 4}},
    {"Claim": {"id": "a", "due": "2026-01-01", "note": "third", "qty": 5}},
]


@pytest.mark.parametrize(("policy", "status"), [
    ("", "conflict"),                                            # no policy: the job stops
    ("policy Claim { reject }", "conflict"),
    ("policy Claim { resolve by lowest due }\n", "conflict"),   # a tie, on tie reject
    ("policy Claim { resolve by lowest due\n  on tie first\n}\n", "converged"),
    ("policy Claim { resolve by lowest due\n  on tie latest\n}\n", "converged"),
    ("policy Claim { resolve by highest due }\n", "converged"),
    ("policy Claim { combine sum qty }\n", "converged"),
])
def test_a_trace_whose_input_facts_conflicted_replays(tmp_path: Path, policy: str,
                                                      status: str) -> None:
    # The trace holds a conflict's winner as an input fact and its losers in the
    # conflict event: the replay gave the winner alone (no conflict, another trace),
    # and after a conflict that stopped the job it had no input at all.
    ruleset = tmp_path / "inputs.cvg"
    ruleset.write_text(CONFLICTING + policy, encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text("".join(json.dumps(f) + "\n" for f in CLAIMS), encoding="utf-8")
    trace = tmp_path / "run.jsonl"
    ran = invoke("run", ruleset, "--facts", facts, "--trace", trace)
    assert ran.exit_code == (0 if status == "converged" else 1), ran.output
    assert f'"status":"{status}"' in trace.read_text().splitlines()[-1]
    assert '"event":"conflict"' in trace.read_text()
    replayed = invoke("replay", ruleset, trace)
    assert replayed.exit_code == 0, replayed.output
    assert replayed.stdout.startswith("identical:")


def test_a_trace_of_an_interrupted_job_replays_to_where_it_stopped(tmp_path: Path) -> None:
    # the replay ran on past the cycle the job was stopped before (Ctrl-C): it differed
    # at the recorded 'interrupted' status
    import converge_rules

    ruleset = tmp_path / "steps.cvg"
    ruleset.write_text("ruleset steps\nfact Step { key id: str, k: int }\n"
                       "agent up {\n  when Step(id, k)\n  where k < 100\n"
                       "  emit Step(id: id, k: k + 1)\n}\n"
                       "policy Step { resolve by highest k }\n", encoding="utf-8")
    trace = tmp_path / "run.jsonl"
    asked = iter(range(1_000))
    result = converge_rules.run(converge_rules.load(ruleset, plugins=False),
                                [("Step", {"id": "a", "k": 0})], trace=trace,
                                stop=lambda: next(asked) >= 7)
    assert result.status == "interrupted" and result.cycles == 7
    replayed = invoke("replay", ruleset, trace)
    assert replayed.exit_code == 0, replayed.output
    assert replayed.stdout.endswith("status interrupted\n")
