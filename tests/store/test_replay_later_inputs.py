"""``converge replay`` of a stored job that took later inputs (``converge run --resume
DB --facts more.jsonl``): the replay merges each batch at the cycle the job merged it,
as it was given — for a type whose policy is ``combine``, the part, never the total the
trace shows (combined again with its own parts it doubled: 26,200 replayed where 13,100
was recorded). With and without an approval gate, several batches, and decisions taken
between the runs; a changed ruleset is still named by cycle, agent and fact. A
session's trace file replays the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules.cli import main

PAY = """\
ruleset pay
fact Part    { key id: str, claim: str, amount: float }
fact Payment { key claim: str, amount: float }
agent base {
  when Part(claim, amount)
  emit Payment(claim: claim, amount: amount)
}
policy Payment { combine sum amount }
"""
GATE = "approve Payment when amount > 10_000.0\n"


def part(i: int, amount: float) -> dict[str, Any]:
    return {"Part": {"id": f"p{i}", "claim": "c1", "amount": amount}}


def payment(amount: float) -> dict[str, Any]:
    return {"Payment": {"claim": "c1", "amount": amount}}


def cli(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def stored(tmp: Path, text: str, batches: list[list[dict[str, Any]]],
           decide: dict[int, str] | None = None) -> tuple[Path, Path, dict[str, Any]]:
    """A stored job run over ``batches[0]``, then resumed with each later batch; before
    batch ``k`` (a key of ``decide``), every pending fact is approved or rejected. The
    ruleset, the store and the last run's JSON."""
    ruleset = tmp / "pay.cvg"
    ruleset.write_text(text, encoding="utf-8")
    db = tmp / "run.db"
    out = cli("run", ruleset, "-f", write(tmp / "f0.jsonl", batches[0]), "--store", db,
              "--format", "json")
    assert out.exit_code in (0, 4), out.output
    for k, batch in enumerate(batches[1:], start=1):
        if decide and k in decide:
            for held in json.loads(cli("pending", db, "--format", "json").stdout)["pending"]:
                done = cli(decide[k], db, held["id"], "--by", "ann")
                assert done.exit_code == 0, done.output
        out = cli("run", "--resume", db, "--facts", write(tmp / f"f{k}.jsonl", batch),
                  "--format", "json")
        assert out.exit_code in (0, 4), out.output
    return ruleset, db, json.loads(out.stdout)


def replays(ruleset: Path, db: Path, executor: str = "serial") -> None:
    result = cli("replay", ruleset, db, "--executor", executor)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("identical:")


@pytest.mark.parametrize("gate", ["", GATE])
def test_a_later_part_of_a_combine_type_replays_combined_once(tmp_path: Path,
                                                              gate: str) -> None:
    # a Payment given later is combined with the key's value at once (an input is
    # never held); with the gate, the key's pending total 13,100 (its two parts, held
    # in cycle 1: the key has no value) carries it over too
    first = [part(1, 5_000.0), part(2, 8_100.0)] if gate else [part(1, 5_000.0)]
    later = payment(100.0) if gate else payment(8_100.0)
    ruleset, db, last = stored(tmp_path, PAY + gate, [first, [later]])
    if gate:
        assert last["status"] == "awaiting_approval"
        assert last["facts"]["Payment"] == [{"claim": "c1", "amount": 100.0}]
        assert [p["fields"]["amount"] for p in last["pending"]] == [13_200.0]
    else:
        assert last["facts"]["Payment"] == [{"claim": "c1", "amount": 13_100.0}]
    replays(ruleset, db)


@pytest.mark.parametrize("executor", ["serial", "threads"])
@pytest.mark.parametrize("gate", ["", GATE])
def test_several_later_batches_replay(tmp_path: Path, gate: str, executor: str) -> None:
    ruleset, db, last = stored(tmp_path, PAY + gate, [
        [part(1, 5_000.0)], [part(2, 8_100.0)], [payment(100.0), part(3, 200.0)],
        [part(4, 1_000.0)]])
    total = 5_000.0 + 8_100.0 + 100.0 + 200.0 + 1_000.0
    if gate:
        assert [p["fields"]["amount"] for p in last["pending"]] == [total]
    else:
        assert last["facts"]["Payment"] == [{"claim": "c1", "amount": total}]
    replays(ruleset, db, executor)


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_resumed_session_with_decisions_replays(tmp_path: Path, decision: str) -> None:
    # 13,100 is held; decided at the pause, then a Payment of 300 is given (combined with
    # what the decision left on the key) and a part of 200 comes (held when the key
    # holds more than 10,000)
    ruleset, db, last = stored(tmp_path, PAY + GATE, [
        [part(1, 5_000.0)], [part(2, 8_100.0)], [payment(300.0), part(3, 200.0)]],
        decide={2: decision})
    if decision == "approve":
        assert last["facts"]["Payment"] == [{"claim": "c1", "amount": 13_400.0}]
        assert [p["fields"]["amount"] for p in last["pending"]] == [13_600.0]
    else:
        assert last["status"] == "converged", last
        assert last["facts"]["Payment"] == [{"claim": "c1", "amount": 5_500.0}]
    replays(ruleset, db)
    # decided after the last batch, resumed without facts: replays too
    again = tmp_path / "again"
    again.mkdir()
    ruleset, db, last = stored(again, PAY + GATE, [[part(1, 5_000.0)], [part(2, 8_100.0)]])
    pending = json.loads(cli("pending", db, "--format", "json").stdout)["pending"]
    assert cli(decision, db, pending[0]["id"], "--by", "ann").exit_code == 0
    assert cli("run", "--resume", db).exit_code == 0
    replays(ruleset, db)


def test_a_changed_ruleset_is_named_at_the_later_inputs_cycle(tmp_path: Path) -> None:
    ruleset, db, _ = stored(tmp_path, PAY, [[part(1, 5_000.0)], [payment(8_100.0)]])
    replays(ruleset, db)
    changed = tmp_path / "max.cvg"
    changed.write_text(PAY.replace("combine sum amount", "combine max amount"),
                       encoding="utf-8")
    result = cli("replay", changed, db)
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[0].endswith(
        'cycle 2, the input facts given later: recorded a conflict on Payment {"claim": '
        '"c1"} (winner {"amount": 13100.0, "claim": "c1"}), replayed a conflict on '
        'Payment {"claim": "c1"} (winner {"amount": 8100.0, "claim": "c1"})')
    # a change in an agent is named with the agent, in the cycle it ran
    doubled = tmp_path / "double.cvg"
    doubled.write_text(PAY.replace("amount: amount)", "amount: amount * 2.0)"),
                       encoding="utf-8")
    result = cli("replay", doubled, db)
    assert result.exit_code == 1, result.output
    assert "cycle 1, agent base: recorded added Payment" in result.stdout


@pytest.mark.parametrize("gate", ["", GATE])
def test_a_sessions_trace_with_a_later_part_replays(tmp_path: Path, gate: str) -> None:
    ruleset = tmp_path / "pay.cvg"
    ruleset.write_text(PAY + gate, encoding="utf-8")
    with converge_rules.Session(converge_rules.load(ruleset)) as session:
        session.add([("Part", part(1, 5_000.0)["Part"])])
        session.run()
        session.add([("Part", part(2, 8_100.0)["Part"])])
        session.run()
        session.add([("Payment", payment(100.0)["Payment"]), ("Part", part(3, 1.0)["Part"])])
        result = session.run()
        trace = tmp_path / "trace.jsonl"
        trace.write_text("".join(line + "\n" for line in result.trace.lines()),
                         encoding="utf-8")
    replayed = cli("replay", ruleset, trace)
    assert replayed.exit_code == 0, replayed.output


CHAIN = PAY + """\
fact Step { key n: int }
agent next {
  when Step(n) where n < 6
  emit Step(n: n + 1)
}
"""


def asks(n: int) -> Any:
    """A ``stop`` that answers True from its ``n``-th question on."""
    count = iter(range(1, 10_000))
    return lambda: next(count) >= n


def test_a_job_interrupted_after_its_later_inputs_replays(tmp_path: Path) -> None:
    # the job asks before every cycle of agents, not before an input cycle: the replay
    # stops where it stopped (it went 2 cycles too far, counting the input cycle)
    ruleset, db, _ = stored(tmp_path, CHAIN, [[part(1, 5_000.0)]])
    result = converge_rules.api.resume(
        str(db), 1, ruleset=converge_rules.load(ruleset),
        facts=[("Payment", payment(8_100.0)["Payment"]), ("Step", {"n": 0})], stop=asks(3))
    assert result.status == "interrupted"
    replays(ruleset, db)


def test_a_sessions_trace_interrupted_after_its_later_inputs_replays(tmp_path: Path) -> None:
    ruleset = tmp_path / "pay.cvg"
    ruleset.write_text(CHAIN, encoding="utf-8")
    with converge_rules.Session(converge_rules.load(ruleset), stop=asks(3)) as session:
        session.add([("Part", part(1, 5_000.0)["Part"])])
        session.run()
        session.add([("Payment", payment(8_100.0)["Payment"]), ("Step", {"n": 0})])
        result = session.run()
        assert result.status == "interrupted"
        trace = tmp_path / "trace.jsonl"
        trace.write_text("".join(line + "\n" for line in result.trace.lines()),
                         encoding="utf-8")
    replayed = cli("replay", ruleset, trace)
    assert replayed.exit_code == 0, replayed.output


def test_a_run_interrupted_after_a_cycle_of_decisions_replays(tmp_path: Path) -> None:
    # a cycle of decisions starts without agents, and is asked no stop either
    text = CHAIN + GATE + """\
agent go {
  when Payment(claim, amount) where amount > 10_000.0
  emit Step(n: 0)
}
"""
    ruleset = tmp_path / "pay.cvg"
    ruleset.write_text(text, encoding="utf-8")
    loaded = converge_rules.load(ruleset)
    facts = [("Part", part(1, 15_000.0)["Part"])]
    (held,) = converge_rules.api.run(loaded, facts).pending
    trace = tmp_path / "trace.jsonl"
    result = converge_rules.api.run(loaded, facts, trace=trace, stop=asks(4), decisions=[
        converge_rules.Decision(held["id"], True, by="ann", at="2026-12-06T17:00:00Z")])
    assert result.status == "interrupted" and result.decided
    replayed = cli("replay", ruleset, trace)
    assert replayed.exit_code == 0, replayed.output


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_sessions_trace_with_decisions_between_its_runs_replays(tmp_path: Path,
                                                                  decision: str) -> None:
    ruleset = tmp_path / "pay.cvg"
    ruleset.write_text(PAY + GATE, encoding="utf-8")
    with converge_rules.Session(converge_rules.load(ruleset)) as session:
        session.add([("Part", part(1, 5_000.0)["Part"])])
        session.run()
        session.add([("Part", part(2, 8_100.0)["Part"])])
        (held,) = session.run().pending
        getattr(session, decision)(held["id"], by="ann", at="2026-12-06T17:00:00Z")
        session.add([("Payment", payment(300.0)["Payment"])])
        result = session.run()
        trace = tmp_path / "trace.jsonl"
        trace.write_text("".join(line + "\n" for line in result.trace.lines()),
                         encoding="utf-8")
    replayed = cli("replay", ruleset, trace)
    assert replayed.exit_code == 0, replayed.output


def test_a_damaged_record_of_later_inputs_is_a_clear_error(tmp_path: Path) -> None:
    import sqlite3

    ruleset, db, _ = stored(tmp_path, PAY, [[part(1, 5_000.0)], [payment(8_100.0)]])
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute("SELECT settings FROM job_specs WHERE job = 1").fetchone()
        settings = json.loads(text)
        settings["later"] = [[2, 5]]
        conn.execute("UPDATE job_specs SET settings = ? WHERE job = 1",
                     (json.dumps(settings),))
    result = cli("replay", ruleset, db)
    assert result.exit_code == 2, result.output
    assert "the job's record of the facts it took later is damaged" in result.output
    assert "Traceback" not in result.output
    # a value the ruleset no longer accepts is named with the cycle it was given in
    settings["later"] = [[2, [["Payment", {"claim": "c1", "amount": "lots"}]]]]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE job_specs SET settings = ? WHERE job = 1",
                     (json.dumps(settings),))
    result = cli("replay", ruleset, db)
    assert result.exit_code == 2, result.output
    assert "the job's inputs of cycle 2" in result.output
