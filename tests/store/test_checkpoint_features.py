"""Checkpoints of jobs whose programs use invariants, approval gates, knowledge and
blobs (issue 13 item 2): such a job interrupted after any cycle resumes from its
checkpoints — no committed cycle runs again, no recorded tool answer is asked again —
to the result and stored trace of the uninterrupted run, byte for byte. The state the
features keep (the invariants' guard, the facts held, approved and rejected and the
decisions applied, the knowledge rows' count, the blobs' payloads) is restored, not
rebuilt by re-executing."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules import api
from converge_rules.engine.gates import Decision
from converge_rules.plugins import load_registries
from converge_rules.store.approvals import StoredDecision
from converge_rules.store.sqlite import SqliteStore
from tests.gates.programs import COMBINED, PARTS
from tests.store.conftest import Backend
from tests.store.test_checkpoints import (
    JOB_TIME,
    check_resumes,
    same_result,
    stopper,
    stored_trace,
)

GUARDED = """\
ruleset guarded
fact Count { key id: str, n: int }
fact Seen { id: str, n: int }
fact Wild { id: str, n: int }
agent step { when Count(id, n) where n < 7 emit Count(id: id, n: n + 1) }
agent note { when Count(id, n) emit lasting Seen(id: id, n: n) }
agent wild { when Count(id, n) where n >= 3 emit Wild(id: id, n: n * 10) }
policy Count { resolve by latest }
invariant tame never Wild(n) where n > 40
invariant few always count(Seen()) < 40
"""

# the step agent calls a tool (counted in $BUMP_CALLS), notes hold blobs and move into
# knowledge, and recall asks the knowledge store through the built-in tool
NOTES = """\
ruleset notes
uses tool bump
uses tool knowledge_find
root "notes" { max_cycles = 50 }
fact Count { key id: str, n: int }
fact Note { key id: str, key n: int, body: blob }
fact Bodies { key id: str, key n: int, all: list[blob] }
fact Echo { key id: str, key n: int, text: str }
fact Recall { key id: str, key n: int, seen: int }
agent step {
  when Count(id, n) where n < 8
  call bump(id: id, n: n) as r
  emit Count(id: id, n: r.next)
  emit lasting Note(id: id, n: n, body: blob("note " + id + " " + str(n)))
}
agent bodies {
  when Note(id, n, body)
  emit Bodies(id: id, n: n, all: [body, blob("more " + id)])
}
agent echo {
  when Note(id, n, body)
  emit Echo(id: id, n: n, text: blob_text(body))
}
agent recall {
  when Count(id, n) where n >= 3
  call knowledge_find(type: "Note", id: id, n: n - 3) as k
  emit lasting Recall(id: id, n: n, seen: k.count)
}
policy Count { resolve by latest }
prune Note when age >= 2 into knowledge
prune Recall when age >= 1 into knowledge
"""


def load(tmp: Path, name: str, text: str, plugins: list[str] | None = None) -> Any:
    path = tmp / f"{name}.cvg"
    path.write_text(text)
    if plugins is None:
        return converge_rules.load(path)
    return converge_rules.load(path, plugins=load_registries(plugins))


def where(tmp: Path, backend: Backend) -> Callable[[int], str]:
    """A new store for each stop ``k`` on the backend."""
    if backend.kind == "sqlite":
        return lambda k: str(tmp / f"run{k}.db")
    return lambda k: f"{backend.location}_{k}"


def test_a_job_with_invariants_resumes_from_its_checkpoints_after_any_cycle(
        tmp_path: Path, backend: Backend) -> None:
    ruleset = load(tmp_path, "guarded", GUARDED)
    facts = [("Count", {"id": i, "n": n}) for i, n in (("a", 0), ("b", 2), ("c", 5))]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    # a `never` invariant discarded effects on the way: the guard's state matters
    assert any(v["outcome"] == "effect_discarded" for v in whole.invariants)
    done = check_resumes(ruleset, facts, where(tmp_path, backend))
    assert done == whole.cycles - 1 >= 5


def test_an_always_invariant_broken_after_a_resume_ends_the_job_as_uninterrupted(
        tmp_path: Path) -> None:
    text = GUARDED.replace("count(Seen()) < 40", "count(Seen()) < 12")
    ruleset = load(tmp_path, "broken", text)
    facts = [("Count", {"id": i, "n": 0}) for i in "ab"]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    assert whole.status == "invariant_violated"
    assert check_resumes(ruleset, facts, lambda k: str(tmp_path / f"run{k}.db")) >= 3


def calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_job_with_knowledge_and_blobs_resumes_from_its_checkpoints_paying_nothing_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ruleset = load(tmp_path, "notes", NOTES, ["bump_tool"])
    facts = [("Count", {"id": "a", "n": 0}), ("Count", {"id": "b", "n": 2})]
    log = tmp_path / "calls.txt"
    monkeypatch.setenv("BUMP_CALLS", str(log))
    whole_db = tmp_path / "whole.db"
    whole = api.run(ruleset, facts, now=JOB_TIME, store=whole_db)
    paid = len(calls(log))
    assert whole.status == "converged" and paid == 8 + 6
    assert whole.knowledge.size > 0
    for k in (1, 3, 5, 6):
        log.unlink()
        db = tmp_path / f"run{k}.db"
        first = api.run(ruleset, facts, now=JOB_TIME, store=db, stop=stopper(k))
        assert first.status == "interrupted"
        before = len(calls(log))
        resumed = api.resume(db, ruleset=ruleset)
        assert resumed.resumed_from == k, f"after {k} cycles: not from its checkpoint"
        # each answer was paid for once, by the first run or by the resumed one
        assert len(calls(log)) == paid > before
        same_result(resumed, whole)
        assert stored_trace(str(db)) == whole.trace.to_jsonl()
        # the store holds the same knowledge and payloads as the uninterrupted job's
        assert stored_rows(db) == stored_rows(whole_db)
    # the echo agent read a payload restored from the store (blob_text on a handle
    # without its text fails the agent: the trace would say so)
    echoes = {(f["id"], f["n"]): f["text"] for f in whole.to_dict()["facts"]["Echo"]}
    assert echoes[("a", 7)] == "note a 7"


def test_knowledge_and_blobs_resume_from_checkpoints_on_each_backend(
        tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    ruleset = load(tmp_path, "notes", NOTES, ["bump_tool"])
    facts = [("Count", {"id": "a", "n": 0}), ("Count", {"id": "b", "n": 2})]
    monkeypatch.setenv("BUMP_CALLS", str(tmp_path / "calls.txt"))
    assert check_resumes(ruleset, facts, where(tmp_path, backend),
                         stops=iter([2, 5])) == 2


def stored_rows(db: Path) -> tuple[list[Any], list[Any]]:
    conn = sqlite3.connect(db)
    try:
        return (conn.execute("SELECT seq, cycle, type, fact, data FROM knowledge "
                             "ORDER BY seq").fetchall(),
                conn.execute("SELECT b.hash, b.data FROM blobs b JOIN job_blobs j "
                             "ON j.hash = b.hash ORDER BY b.hash").fetchall())
    finally:
        conn.close()


def test_a_payload_missing_from_the_store_makes_the_resume_re_execute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a checkpoint holds blob handles only: without the payload it cannot restore the
    # facts, and the re-executing resume (recorded answers) is the fallback
    ruleset = load(tmp_path, "notes", NOTES, ["bump_tool"])
    facts = [("Count", {"id": "a", "n": 0})]
    monkeypatch.setenv("BUMP_CALLS", str(tmp_path / "calls.txt"))
    whole = api.run(ruleset, facts, now=JOB_TIME)
    db = tmp_path / "run.db"
    api.run(ruleset, facts, now=JOB_TIME, store=db, stop=stopper(3))
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM blobs")
    resumed = api.resume(db, ruleset=ruleset)
    assert resumed.resumed_from is None
    same_result(resumed, whole)


GATED = """\
ruleset payouts
root "every claim checked" {
  max_cycles = 100
  require count(Checked()) == count(Claim())
}
fact Claim   { key id: str, amount: float }
fact Checked { key claim: str }
fact Payment { key claim: str, amount: float, note: str = "" }
fact Settled { key claim: str, amount: float }
fact Audit   { claim: str, amount: float }
agent check { when Claim(id) emit Checked(claim: id) }
agent pay { when Claim(id, amount) and Checked(claim: id) emit Payment(claim: id, amount: amount) }
agent settle tier 2 { when Payment(claim, amount) emit Settled(claim: claim, amount: amount) }
agent audit tier 2 { when Settled(claim, amount) emit Audit(claim: claim, amount: amount) }
approve Payment when amount > 1_000.0
invariant capped never Settled(amount) where amount > 11_000.0
"""

CLAIMS = [("C1", 400.0), ("C2", 2_000.0), ("C3", 5_000.0), ("C4", 12_000.0)]


def test_a_gated_job_resumes_from_its_checkpoints_before_and_after_its_decisions(
        tmp_path: Path, backend: Backend) -> None:
    ruleset = load(tmp_path, "payouts", GATED)
    facts = [("Claim", {"id": i, "amount": a}) for i, a in CLAIMS]
    db = backend.location
    paused = api.run(ruleset, facts, now=JOB_TIME, store=db)
    assert paused.status == "awaiting_approval"
    held = {p["fields"]["claim"]: p["id"] for p in paused.pending}
    stored = [StoredDecision(held["C2"], "approve", "ann", "2026-12-06T17:00:00Z", "ok"),
              StoredDecision(held["C3"], "reject", "bo", "2026-12-06T17:01:00Z", "dup"),
              StoredDecision(held["C4"], "approve", "ann", "2026-12-06T17:02:00Z",
                             "capped", {"amount": 10_000.0})]
    with backend.open() as store:
        for d in stored:
            store.record_decision(1, d)
    given = [Decision(id=d.id, approve=d.decision == "approve", by=d.by, at=d.at,
                      note=d.note, edits=d.edits, paused_at=paused.cycles) for d in stored]
    whole = api.run(ruleset, facts, now=JOB_TIME, decisions=given)
    assert whole.status == "converged"
    # interrupted right after the decisions' own cycle, then resumed again
    first = api.resume(db, ruleset=ruleset, stop=stopper(1))
    assert first.status == "interrupted"
    assert first.resumed_from == paused.cycles  # from the paused job's checkpoint
    second = api.resume(db, ruleset=ruleset)
    assert second.resumed_from == first.cycles > paused.cycles
    same_result(second, whole)
    assert stored_trace(str(db)) == whole.trace.to_jsonl()
    assert [d["outcome"] for d in second.decided] == ["merged", "rejected", "merged"]


def test_a_gated_job_interrupted_before_its_pause_resumes_from_its_checkpoints(
        tmp_path: Path) -> None:
    ruleset = load(tmp_path, "payouts", GATED)
    facts = [("Claim", {"id": i, "amount": a}) for i, a in CLAIMS]
    assert check_resumes(ruleset, facts, lambda k: str(tmp_path / f"run{k}.db")) >= 2


SESSION = """\
ruleset session
uses tool bump
root "counters" { max_cycles = 200 }
fact Limit { key id: str, top: int }
fact Count { key id: str, n: int }
fact Seen { id: str, n: int }
fact Done { id: str }
agent step {
  when Count(id, n) and Limit(id: id, top) where n < top
  call bump(id: id, n: n) as r
  emit Count(id: id, n: r.next)
}
agent note { when Count(id, n) emit Seen(id: id, n: n) }
agent done tier 2 { when Count(id, n) and Limit(id: id, top) where n == top emit Done(id: id) }
policy Count { resolve by latest }
policy Limit { resolve by latest }
"""


def without_checkpoints(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM checkpoints")


def test_a_session_taking_later_inputs_resumes_from_its_checkpoints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the oracle: the same job in another store, resumed by re-executing (its
    # checkpoints deleted), which was the only way before; both take each batch to
    # the same result and stored trace, byte for byte; then the job interrupted in the
    # run after a batch resumes from its checkpoint to the uninterrupted oracle's
    ruleset = load(tmp_path, "session", SESSION, ["bump_tool"])
    log = tmp_path / "calls.txt"
    monkeypatch.setenv("BUMP_CALLS", str(log))
    first = [("Limit", {"id": "a", "top": 3}), ("Count", {"id": "a", "n": 0}),
             ("Limit", {"id": "b", "top": 2}), ("Count", {"id": "b", "n": 0})]
    batches = [
        # new counters, and a later Limit for a key the job holds (resolve by latest)
        [("Limit", {"id": "c", "top": 4}), ("Count", {"id": "c", "n": 1}),
         ("Limit", {"id": "a", "top": 6})],
        # an input equal to a live fact becomes an input; another key raised again
        [("Count", {"id": "c", "n": 4}), ("Limit", {"id": "b", "top": 5}),
         ("Limit", {"id": "b", "top": 4}), ("Limit", {"id": "e", "top": 2}),
         ("Count", {"id": "e", "n": 0})],
    ]
    db, oracle = tmp_path / "run.db", tmp_path / "oracle.db"
    for location in (db, oracle):
        assert api.run(ruleset, first, now=JOB_TIME, store=location).status == "converged"
    for i, batch in enumerate(batches):
        without_checkpoints(oracle)
        before = len(calls(log))
        expected = api.resume(oracle, ruleset=ruleset, facts=batch)
        assert expected.resumed_from is None
        paid = len(calls(log))
        got = api.resume(db, ruleset=ruleset, facts=batch)
        assert got.resumed_from is not None, f"batch {i}: not from a checkpoint"
        # each paid only for the answers the batch's facts need (the re-executed job's
        # earlier answers were recorded; the restored job's memoised)
        assert len(calls(log)) - paid == paid - before > 0
        assert got.to_json() == expected.to_json()
        assert stored_trace(str(db)) == stored_trace(str(oracle))
    # interrupted in the run after a third batch, then resumed without facts
    batch = [("Limit", {"id": "d", "top": 3}), ("Count", {"id": "d", "n": 0})]
    without_checkpoints(oracle)
    expected = api.resume(oracle, ruleset=ruleset, facts=batch)  # uninterrupted
    stopped = api.resume(db, ruleset=ruleset, facts=batch, stop=stopper(2))
    assert stopped.status == "interrupted" and stopped.resumed_from is not None
    got = api.resume(db, ruleset=ruleset)
    assert got.resumed_from == stopped.cycles  # restored after the batch's cycle
    assert got.status == expected.status == "converged"
    assert got.to_json() == expected.to_json()
    assert stored_trace(str(db)) == stored_trace(str(oracle))



def test_a_delta_holds_only_the_violations_of_its_own_cycle(tmp_path: Path) -> None:
    # the store grows with what changed: a job whose invariant discards effects every
    # cycle must not write all its violations again with each cycle's checkpoint
    from converge_rules.engine import checkpoints

    ruleset = load(tmp_path, "guarded", GUARDED)
    facts = [("Count", {"id": i, "n": n}) for i, n in (("a", 0), ("b", 2), ("c", 4))]
    db = tmp_path / "run.db"  # one transaction per cycle: a checkpoint per cycle
    result = api.run(ruleset, facts, now=JOB_TIME, store=f"sqlite:///{db}?group=1")
    per_cycle: dict[int, int] = {}
    for v in result.invariants:
        per_cycle[v["cycle"]] = per_cycle.get(v["cycle"], 0) + 1
    assert len(per_cycle) >= 5
    with SqliteStore(db) as store:
        rows = list(store.checkpoints(1, 10**9, since=0))
    after_one = 0  # deltas of cycles after one with a violation
    for cycle, kind, data in rows:
        guard = checkpoints.unpack(data)["job"]["features"]["guard"]
        if kind == "delta":
            after_one += any(c < cycle for c in per_cycle)
            assert len(guard["violations"]) == per_cycle.get(cycle, 0), cycle
        else:
            assert len(guard["violations"]) == sum(
                n for c, n in per_cycle.items() if c <= cycle)
    assert after_one >= 1


def test_a_held_combined_value_resumed_from_its_checkpoint_is_counted_once(
        tmp_path: Path) -> None:
    # the held 13,000 counts the 5,000 already (its incumbent): the checkpoint of the
    # pause keeps that, so approving it after a resume replaces the 5,000 as it does
    # in one run, and never adds them again (18,000)
    ruleset = load(tmp_path, "pay", COMBINED)
    facts = PARTS
    db = str(tmp_path / "run.db")
    paused = api.run(ruleset, facts, now=JOB_TIME, store=db)
    (pending,) = paused.pending
    assert pending["fields"] == {"claim": "c1", "amount": 13_000.0}
    decision = StoredDecision(pending["id"], "approve", "ann", "2026-12-06T17:00:00Z", "ok")
    with SqliteStore(db) as store:
        store.record_decision(1, decision)
    whole = api.run(ruleset, facts, now=JOB_TIME, decisions=[Decision(
        id=decision.id, approve=True, by="ann", at=decision.at, note="ok",
        paused_at=paused.cycles)])
    resumed = api.resume(db, ruleset=ruleset)
    assert resumed.resumed_from == paused.cycles  # from the pause's checkpoint
    assert resumed.facts("Payment") == [{"claim": "c1", "amount": 13_000.0}]
    same_result(resumed, whole)
    assert stored_trace(db) == whole.trace.to_jsonl()
