"""Timings (engine/timings.py): where a tool call's answer came from, the side file
``converge run --timings`` writes, and that it stays beside the trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules import api
from converge_rules.cli import main
from converge_rules.engine import run
from converge_rules.engine.timings import Timings, call_key, read_timings, write_timings
from converge_rules.engine.tools import canonical_args

REPO = Path(__file__).resolve().parents[2]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"

CALLS = """\
ruleset calls
uses tool look
fact Item { id: int }
fact Seen { id: int, v: int }
fact Again { id: int, v: int }
agent first { when Item(id) call look(id: id) as r emit Seen(id: id, v: r.v) }
agent second tier 2 { when Item(id) call look(id: id) as r emit Again(id: id, v: r.v) }
"""


def _program() -> Any:
    return converge_rules.loads(CALLS).program


def test_a_recorded_answer_is_timed_as_such_then_as_memo() -> None:
    program = _program()
    paid: list[int] = []

    def look(args: dict[str, Any]) -> dict[str, Any]:
        paid.append(args["id"])
        return {"v": args["id"] * 2}

    facts = [("Item", {"id": 1}), ("Item", {"id": 2})]
    recorded = {"look\x00" + canonical_args({"id": 1}): ({"v": 2}, None)}
    timings = Timings()
    run(program, facts, tools={"look": look}, now=None, recorded=recorded, timings=timings)
    calls = [(r["cycle"], r["agent"], r["key"], r["source"])
             for r in timings.records() if r["kind"] == "tool"]
    one, two = call_key("look", {"id": 1}), call_key("look", {"id": 2})
    assert sorted(calls) == sorted([(1, "first", one, "record"), (1, "first", two, "called"),
                                    (2, "second", one, "memo"), (2, "second", two, "memo")])
    assert paid == [2]  # the recorded one was never paid


def test_the_side_file_round_trips_and_a_bad_line_is_named(tmp_path: Path) -> None:
    timings = Timings()
    run(_program(), [("Item", {"id": 3})], tools={"look": lambda a: {"v": 1}}, now=None,
        timings=timings)
    path = tmp_path / "t.jsonl"
    write_timings(path, timings.records())
    assert read_timings(path) == timings.records()
    path.write_text(path.read_text() + '{"kind": "tool", "cycle": 1, "seconds": "slow"}\n')
    with pytest.raises(ValueError, match=r"t\.jsonl, line \d+: 'seconds' must be a finite number"):
        read_timings(path)
    path.write_text('{"event": "cycle_start"}\n')
    with pytest.raises(ValueError, match="written by `converge run --timings`"):
        read_timings(path)


def _facts(tmp: Path) -> Path:
    facts = tmp / "in.jsonl"
    facts.write_text('{"Cost": {"sku": "A1", "amount": 10.0}}\n'
                     '{"Quote": {"sku": "A1", "vendor": "euro", "amount": 9.0, '
                     '"currency": "EUR"}}\n', encoding="utf-8")
    return facts


def test_converge_run_writes_timings_beside_an_unchanged_trace(tmp_path: Path) -> None:
    facts = _facts(tmp_path)
    runner = CliRunner()
    plain = runner.invoke(main, ["run", str(PRICING), "-f", str(facts), "--now",
                                 "2026-12-06T09:00:00Z", "--trace", str(tmp_path / "a.jsonl")])
    timed = runner.invoke(main, ["run", str(PRICING), "-f", str(facts), "--now",
                                 "2026-12-06T09:00:00Z", "--trace", str(tmp_path / "b.jsonl"),
                                 "--timings", str(tmp_path / "b.timings.jsonl")])
    assert plain.exit_code == timed.exit_code == 0, timed.output
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    records = read_timings(tmp_path / "b.timings.jsonl")
    tools = [r for r in records if r["kind"] == "tool"]
    trace_calls = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()
                   if '"event":"tool_call"' in line]
    assert [(r["tool"], r["key"]) for r in tools] == [
        (c["tool"], call_key(c["tool"], c["args"])) for c in trace_calls]


@pytest.mark.parametrize("where", ["trace", "facts"])
def test_timings_never_overwrite_the_trace_or_an_input(tmp_path: Path, where: str) -> None:
    facts = _facts(tmp_path)
    trace = tmp_path / "run.jsonl"
    target = trace if where == "trace" else facts
    before = facts.read_bytes()
    out = CliRunner().invoke(main, ["run", str(PRICING), "-f", str(facts), "--trace",
                                    str(trace), "--timings", str(target)])
    assert out.exit_code == 2, out.output
    assert "--timings" in out.output and "Traceback" not in out.output
    assert facts.read_bytes() == before


def test_timings_never_overwrite_the_store_resumed_or_created(tmp_path: Path) -> None:
    """Found by hand: `converge run --resume run.db --timings run.db` replaced the store
    with the timings JSON Lines (the check covered --store only), and `--store x.db
    --timings x.db` created x.db before refusing."""
    facts = _facts(tmp_path)
    db = tmp_path / "run.db"
    stopped = iter([False, False])
    api.run(converge_rules.load(PRICING), api.read_facts(converge_rules.load(PRICING),
                                                             facts),
            store=str(db), stop=lambda: next(stopped, True))
    before = db.read_bytes()[:16]
    out = CliRunner().invoke(main, ["run", "--resume", str(db), "--timings", str(db)])
    assert out.exit_code == 2, out.output
    assert "--timings and --resume name the same file" in out.output
    assert db.read_bytes()[:16] == before == b"SQLite format 3\x00"
    new = tmp_path / "new.db"
    out = CliRunner().invoke(main, ["run", str(PRICING), "-f", str(facts), "--store",
                                    str(new), "--timings", str(new)])
    assert out.exit_code == 2 and "--timings and --store name the same file" in out.output
    assert not new.exists()


def test_api_run_takes_timings_without_a_store(tmp_path: Path) -> None:
    loaded = converge_rules.load(PRICING)
    timings = Timings()
    result = api.run(loaded, api.read_facts(loaded, _facts(tmp_path)), now=None,
                     timings=timings)
    assert result.status == "converged"
    assert [r["cycle"] for r in timings.records() if r["kind"] == "cycle"] == list(
        range(result.cycles + 1))


def test_a_collector_that_keeps_nothing_forgets_what_was_taken() -> None:
    kept, forgetful = Timings(), Timings(keep=False)
    for timings in (kept, forgetful):
        timings.cycle_done(0, 0.0, 0.5)
        assert [r["cycle"] for r in timings.take()] == [0]
        timings.cycle_done(1, 0.25, 0.5)
    assert [r["cycle"] for r in kept.records()] == [0, 1]
    assert [r["cycle"] for r in forgetful.records()] == [1]
    assert forgetful.records() == []
