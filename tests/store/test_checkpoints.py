"""Checkpoints (issue 13 item 2): a job stores the merged delta of each cycle and, now
and then, a snapshot of its state, in the cycle's transaction; a resume restores the
newest snapshot and the deltas after it and runs on from the last committed cycle.

The oracle is the uninterrupted run and the re-executing resume (the fallback): the
result and the stored trace of a job interrupted after any cycle and resumed from its
checkpoints are byte for byte theirs — for every test case of every shipped ruleset,
and for rulesets written here to exercise what the state holds (keyed replacements and
cascades, prunes, intents, one-at-a-time refraction, negation, evaluations, dates)."""

from __future__ import annotations

import functools
import json
import sqlite3
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import converge_rules
from converge_rules import api
from converge_rules.engine import checkpoints
from converge_rules.engine.runner import CycleProgress
from converge_rules.errors import StoreError
from converge_rules.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.store.conftest import Backend

REPO = Path(__file__).resolve().parents[2]
RULESETS = REPO / "rulesets"
JOB_TIME = datetime(2026, 12, 6, 9, tzinfo=UTC)


# ------------------------------------------------------------------ helpers


def stopper(cycles: int) -> Callable[[], bool]:
    """A ``stop`` that lets ``cycles`` cycles run, then stops the job."""
    asked = iter([False] * cycles)
    return lambda: next(asked, True)


def stored_trace(location: str, job: int | None = None) -> str:
    with api_store(location) as store:
        info = store.job(job)
        return "".join(f"{line}\n" for line in store.trace_lines(info.id))


def api_store(location: str) -> Any:
    from converge_rules.plugins import load_registries

    return load_registries().job_store(location)


def same_result(resumed: Any, whole: Any) -> None:
    # (counted by the merge: before the conflicts are built from the trace)
    assert resumed.conflict_count == whole.conflict_count
    got = json.loads(resumed.to_json())
    got.pop("integrity", None)
    expected = json.loads(whole.to_json())
    expected.pop("integrity", None)
    assert got == expected
    assert resumed.trace.head() == whole.trace.head()
    # the stored lines a resumed trace starts with read back as the events they were
    # (as their models dump them: a tool's arguments read back hold lists, not tuples)
    assert list(resumed.trace.model_lines()) == list(whole.trace.model_lines())
    assert list(resumed.trace.fact_events()) == list(whole.trace.fact_events())


def check_resumes(ruleset: Any, facts: Any, where: Callable[[int], str], *,
                  tools: dict[str, Any] | None = None, now: datetime | None = JOB_TIME,
                  stops: Iterator[int] | None = None) -> int:
    """Run the job whole, then interrupted after each of ``stops`` cycles (all but the
    last by default) and resumed from its checkpoints (``where(k)`` a new store for
    each): result and stored trace equal the whole run's, no committed cycle ran
    again. The number of resumes done."""
    whole = api.run(ruleset, facts, tools=tools, now=now)
    expected_trace = whole.trace.to_jsonl()
    done = 0
    for k in (stops if stops is not None else range(1, whole.cycles)):
        location = where(k)
        first = api.run(ruleset, facts, tools=tools, now=now, store=location,
                        stop=stopper(k))
        if first.status != "interrupted":
            continue
        seen: list[int] = []

        def progress(p: CycleProgress, seen: list[int] = seen) -> None:
            seen.append(p.cycle)

        resumed = api.resume(location, ruleset=ruleset, tools=tools, progress=progress)
        assert resumed.resumed_from == k, f"after {k} cycles: not from its checkpoint"
        assert all(c > k for c in seen), f"committed cycles ran again: {seen}"
        same_result(resumed, whole)
        assert stored_trace(location) == expected_trace, f"after {k} cycles"
        done += 1
    return done


# ------------------------------------------------------ rulesets written here

KEYED = """\
ruleset keyed
fact Count { key id: str, n: int }
fact Seen { id: str, n: int }
fact Big { id: str }
fact Due { id: str, on: date, wait: duration, tags: list[str] }
agent step { when Count(id, n) where n < 6 emit Count(id: id, n: n + 1) }
agent note { when Count(id, n) emit Seen(id: id, n: n) }
agent big { when Count(id, n) where n >= 4 emit Big(id: id) }
agent due {
  when Count(id, n) where n == 6
  emit Due(id: id, on: date("2026-12-06") + 3d, wait: 90m, tags: [id, "done"])
}
policy Count { resolve by latest }
"""

PRUNES = """\
ruleset prunes
fact Tick { key id: str, n: int }
fact Log { id: str, n: int }
agent tick { when Tick(id, n) where n < 8 emit Tick(id: id, n: n + 1) }
agent log { when Tick(id, n) emit Log(id: id, n: n) }
policy Tick { resolve by latest }
prune Log when age > 2
"""
REFUSED = """\
ruleset refused
fact Item { key id: int }
fact Best { key of: str = "best", v: int }
policy Best { resolve by highest v }
agent pick one at a time by lowest id {
  when Item(id)
  emit Best(v: id)
}
"""

# one agent reads the keyed type and replaces its fact: the fused keyed update in
# place (engine/keyed.py merge_single), whose old fact a delta must say left the
# context (a resume after an even cycle kept the superseded Count live)
COUNTER = """\
ruleset counter
fact Count { key id: str, n: int }
agent step { when Count(id, n) where n < 9 emit Count(id: id, n: n + 1) }
policy Count { resolve by latest }
"""

CYCLIC = """\
ruleset cyclic
fact Phase { key id: str, n: int }
fact Mark { id: str, n: int }
agent turn { when Phase(id, n) emit Phase(id: id, n: (n + 1) % 4) }
agent mark { when Phase(id, n) emit Mark(id: id, n: n) }
policy Phase { resolve by latest }
"""

#: CYCLIC without its marks: every event of its cycles is of a kind a raw row keeps
#: (no output skipped), so the engine holds its cycles and hands them to the store
#: together (their steps noted then, from each cycle's end event)
CYCLIC_RAW = """\
ruleset cyclic
fact Phase { key id: str, n: int }
agent turn { when Phase(id, n) emit Phase(id: id, n: (n + 1) % 4) }
policy Phase { resolve by latest }
"""


def ruleset_file(tmp: Path, name: str, text: str) -> Any:
    path = tmp / f"{name}.cvg"
    path.write_text(text)
    return converge_rules.load(path)


@pytest.mark.parametrize(("name", "text", "facts"), [
    ("keyed", KEYED, [("Count", {"id": i, "n": n}) for i, n in
                      (("a", 0), ("b", 3), ("c", 6), ("d\u2028é", 1))]),
    ("prunes", PRUNES, [("Tick", {"id": i, "n": 0}) for i in "abc"]),
    ("counter", COUNTER, [("Count", {"id": "a", "n": 0})]),
    # refraction: a firing whose Best lost is not fired again (the fired sets)
    ("refused", REFUSED, [*(("Item", {"id": i}) for i in (1, 2, 3, 4, 5)),
                          ("Best", {"v": 3})]),
    # oscillating: the context after cycle 5 is the one after cycle 1 (fingerprints of
    # states before the checkpoint; the loop's facts from the stored trace)
    ("cyclic", CYCLIC, [("Phase", {"id": "a", "n": 10}), ("Phase", {"id": "b", "n": 2})]),
])
def test_a_job_resumed_after_any_cycle_from_its_checkpoints_equals_the_whole_run(
    tmp_path: Path, backend: Backend, name: str, text: str, facts: list[Any],
) -> None:
    ruleset = ruleset_file(tmp_path, name, text)
    where = (lambda k: str(tmp_path / f"run{k}.db")) if backend.kind == "sqlite" else (
        lambda k: f"{backend.location}_{k}")
    assert check_resumes(ruleset, facts, where) >= 3


@pytest.mark.parametrize("text", [CYCLIC, CYCLIC_RAW], ids=["compact", "raw"])
def test_a_job_stopped_inside_a_group_finds_the_oscillation_of_a_cycle_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
) -> None:
    # group commit: only the cycle a transaction ends with has its checkpoint, and it
    # holds the steps of the cycles that waited for it, which the fingerprints' replay
    # needs — the context after cycle 5 is the one after cycle 1, a cycle that waited
    # (handed over compact, each noted as it ends, or held raw and noted together)
    monkeypatch.setattr(SqliteStore, "group_seconds", 3600.0)  # groups of 4 cycles
    ruleset = ruleset_file(tmp_path, "cyclic", text)
    facts = [("Phase", {"id": "a", "n": 10}), ("Phase", {"id": "b", "n": 2})]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    assert whole.status == "oscillating" and whole.cycles == 5
    expected = whole.trace.to_jsonl()
    for k in range(1, whole.cycles):
        # interrupted after cycle k (the job's end commits it with its checkpoint)
        location = f"sqlite:///{tmp_path / f'stop{k}.db'}?group=4"
        first = api.run(ruleset, facts, now=JOB_TIME, store=location, stop=stopper(k))
        assert first.status == "interrupted"
        resumed = api.resume(location, ruleset=ruleset)
        assert resumed.resumed_from == k
        same_result(resumed, whole)
        assert stored_trace(location) == expected, f"stopped after {k}"

        # ended by an exception after cycle k: the cycles waiting are committed
        # without a checkpoint; the resume goes on from the checkpoint of the last
        # transaction (cycle 3: 0-3 are the first group) and runs them again
        def boom(p: CycleProgress, k: int = k) -> None:
            if p.cycle == k:
                raise RuntimeError("boom")

        location = f"sqlite:///{tmp_path / f'boom{k}.db'}?group=4"
        with pytest.raises(RuntimeError, match="boom"):
            api.run(ruleset, facts, now=JOB_TIME, store=location, progress=boom)
        with api_store(location) as store:
            info = store.job(None)
            assert (info.status, info.cycles) == ("aborted", k)
        resumed = api.resume(location, ruleset=ruleset)
        assert resumed.resumed_from == (3 if k >= 3 else None), f"aborted after {k}"
        same_result(resumed, whole)
        assert stored_trace(location) == expected, f"aborted after {k}"


def test_a_job_resumed_from_its_checkpoints_and_ended_by_an_exception_keeps_its_cycles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a job restored from its checkpoints holds the cycles a raw row keeps as a new job
    # does, until its group's commit: an exception hands them to the store, which
    # commits them as it marks the job aborted; the next resume goes on to the end
    monkeypatch.setattr(SqliteStore, "group_seconds", 3600.0)  # groups of 4 cycles
    ruleset = ruleset_file(tmp_path, "counter", COUNTER)
    facts = [("Count", {"id": "a", "n": 0})]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    assert whole.cycles == 10
    location = f"sqlite:///{tmp_path / 'run.db'}?group=4"
    first = api.run(ruleset, facts, now=JOB_TIME, store=location, stop=stopper(2))
    assert first.status == "interrupted"

    def boom(p: CycleProgress) -> None:
        if p.cycle == 6:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        api.resume(location, ruleset=ruleset, progress=boom)
    with api_store(location) as store:
        info = store.job(None)
        assert (info.status, info.cycles) == ("aborted", 6)
        assert [c for c, _, _ in store.cycle_sizes(info.id)] == list(range(7))
    resumed = api.resume(location, ruleset=ruleset)
    same_result(resumed, whole)
    assert stored_trace(location) == whole.trace.to_jsonl()


def test_a_checkpoint_whose_steps_name_facts_the_store_lacks_is_re_executed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a damaged row (steps up to fact 10^12 of a store of a few) is not restored: the
    # fingerprints' replay built a list of that many ids (MemoryError, or the OOM
    # killer for 10^9); the job re-executes from its inputs instead (review r23a)
    monkeypatch.setattr(SqliteStore, "group_seconds", 3600.0)
    ruleset = ruleset_file(tmp_path, "cyclic", CYCLIC)
    facts = [("Phase", {"id": "a", "n": 10}), ("Phase", {"id": "b", "n": 2})]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    db = tmp_path / "run.db"
    location = f"sqlite:///{db}?group=4"
    first = api.run(ruleset, facts, now=JOB_TIME, store=location, stop=stopper(3))
    assert first.status == "interrupted"
    with sqlite3.connect(db) as con:
        cycle, data = con.execute("SELECT cycle, data FROM checkpoints ORDER BY cycle DESC "
                                  "LIMIT 1").fetchone()
        doc = checkpoints.unpack(data)
        assert doc["steps"], "the cycles that waited for the group's transaction"
        # (format 5: the steps' columns written again, the first step's next id changed)
        ints: list[int] = []
        left: list[int] = []
        for i, (c, n1, gone, closed, noted, reset) in enumerate(checkpoints.steps_of(doc)):
            assert not closed
            left += gone
            ints.extend((c * 4 + noted + 2 * reset, 10**12 if i == 0 else n1, len(left)))
        binary = doc[checkpoints.BYTES][:doc["steps"]["at"]]
        doc["steps"], steps = checkpoints.steps_part(ints, left, None, len(binary))
        doc[checkpoints.BYTES] = binary + steps
        con.execute("UPDATE checkpoints SET data = ? WHERE cycle = ?",
                    (checkpoints.pack(doc), cycle))
    resumed = api.resume(location, ruleset=ruleset)
    assert resumed.resumed_from is None  # re-executed, not restored
    same_result(resumed, whole)
    assert stored_trace(location) == whole.trace.to_jsonl()


@pytest.mark.parametrize(("name", "group", "stop"), [("pruned", 1, 36), ("cyclic", 3, 4)])
def test_a_checkpoint_whose_binary_changed_is_re_executed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, group: int, stop: int,
) -> None:
    # format 5 holds ints in a binary (a delta's gone, starts and numbers, the waiting
    # cycles' steps) and facts' values as msgpack: a changed byte there reads back as
    # other values, not as text that no longer parses — a cycle's start (the facts'
    # ages: another prune), a waiting cycle's number (a state noted at another cycle:
    # another oscillation). The binary's sum refuses them: the job re-executes
    from converge_rules.benchmarks import pruned_ruleset

    monkeypatch.setattr(SqliteStore, "group_seconds", 3600.0)
    if name == "pruned":
        ruleset = ruleset_file(tmp_path, name, pruned_ruleset(40, 2))
        facts = [("Tick", {"id": "t", "n": 0})]
    else:
        ruleset = ruleset_file(tmp_path, name, CYCLIC)
        facts = [("Phase", {"id": "a", "n": 10}), ("Phase", {"id": "b", "n": 2})]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    db = tmp_path / "run.db"
    location = f"sqlite:///{db}?group={group}&snapshot_every=2"
    first = api.run(ruleset, facts, now=JOB_TIME, store=location, stop=stopper(stop))
    assert first.status == "interrupted"
    kept = db.read_bytes()
    with sqlite3.connect(db) as con:
        cycle, data = con.execute("SELECT cycle, data FROM checkpoints ORDER BY cycle DESC "
                                  "LIMIT 1").fetchone()
    con.close()
    doc = checkpoints.unpack(data)
    binary = doc[checkpoints.BYTES]
    assert doc.get("cols") or doc.get("steps")
    refused = 0
    for at in range(len(binary)):
        db.write_bytes(kept)
        changed = bytearray(binary)
        changed[at] ^= 8
        with sqlite3.connect(db) as con:
            con.execute("UPDATE checkpoints SET data = ? WHERE cycle = ?",
                        (checkpoints.pack({**doc, checkpoints.BYTES: bytes(changed)}), cycle))
        con.close()
        try:
            resumed = api.resume(location, ruleset=ruleset)
        except StoreError:  # refused: the restored facts are not the trace's
            refused += 1
            continue
        assert resumed.resumed_from is None, f"byte {at} changed"  # re-executed
        same_result(resumed, whole)
        assert stored_trace(location) == whole.trace.to_jsonl()
    assert refused == 0  # (the sum is checked first)


# ------------------------------------------------- every shipped ruleset's tests


def shipped_cases() -> Iterator[Any]:
    """``(id, ruleset, facts, tools, now)`` of each test case (not a table row) of the
    shipped rulesets, as ``converge test`` runs it."""
    from converge_rules.analysis.interpret import interpreter_for
    from converge_rules.plugins import load_registries
    from converge_rules.testing.mocks import MockTools
    from converge_rules.testing.runner import (
        given_facts,
        given_now,
        load_suite,
        mock_answers,
    )

    registries = load_registries()
    for path in sorted(RULESETS.rglob("*.cvg")):
        suite = load_suite(path, registries)
        if not suite.runnable or not suite.cases:
            continue
        ruleset = converge_rules.load(path)
        for case in suite.cases:
            if case.case is not None or case.bindings:
                continue
            assert suite.checked is not None
            interp = interpreter_for(suite.checked, functions=suite.functions)
            now = given_now(case.test, interp, {})
            interp.now = now
            facts = given_facts(case.test, interp, {})
            mocks = MockTools(mock_answers(case.test, interp, {}),
                              tuple(suite.checked.tools))
            yield f"{path.stem}::{case.test.name}", ruleset, facts, mocks.table(), now


def test_every_shipped_rulesets_test_case_resumes_from_its_checkpoints_after_any_cycle(
    tmp_path: Path,
) -> None:
    resumed = skipped = 0
    names = []
    for n, (name, ruleset, facts, tools, now) in enumerate(shipped_cases()):
        if not checkpoints.checkpointable(ruleset.program):
            skipped += 1
            continue
        names.append(name)
        resumed += check_resumes(ruleset, facts, lambda k, n=n: str(tmp_path / f"{n}-{k}.db"),
                                 tools=tools, now=now)
    print(f"{resumed} resumes over {len(names)} cases; {skipped} not checkpointable")
    assert resumed >= 40 and len(names) >= 15


# ------------------------------------------------------- what the store holds


def kinds(location: str, job: int = 1) -> list[tuple[int, str]]:
    with SqliteStore(location) as store:
        return [(c, k) for c, k, _ in store.checkpoints(job, 10**9, since=0)]


def test_each_transaction_has_the_checkpoint_of_its_last_cycle(tmp_path: Path) -> None:
    ruleset = ruleset_file(tmp_path, "keyed", KEYED)
    # one transaction per cycle: every cycle has its checkpoint
    db = str(tmp_path / "run.db")
    result = api.run(ruleset, [("Count", {"id": "a", "n": 0})], now=JOB_TIME,
                     store=f"sqlite:///{db}?group=1")
    stored = kinds(db)
    with SqliteStore(db) as store:
        cycles = [c for c, _, _ in store.cycle_sizes(1)]
    assert [c for c, _ in stored] == cycles == list(range(result.cycles + 1))
    assert stored[0] == (0, "snapshot")  # the first is always whole
    assert {k for _, k in stored} <= {"snapshot", "delta"}
    # group commit: only the cycle a transaction ends with has one (a crash loses
    # the others anyway); the job's last cycle, committed with its end, has one
    grouped = str(tmp_path / "grouped.db")
    api.run(ruleset, [("Count", {"id": "a", "n": 0})], now=JOB_TIME, store=grouped)
    stored = kinds(grouped)
    assert stored[0][1] == "snapshot" and stored[-1][0] == result.cycles
    assert {c for c, _ in stored} < set(cycles)


@pytest.mark.parametrize(("name", "text", "facts", "cycles"), [
    ("keyed", KEYED, [("Count", {"id": "a", "n": 0})], None),
    ("prunes", PRUNES, [("Tick", {"id": i, "n": 0}) for i in "ab"], None),
    ("counter", COUNTER, [("Count", {"id": "a", "n": 0})], None),
    ("stopped", COUNTER, [("Count", {"id": "a", "n": 0})], 6),
    ("refused", REFUSED, [*(("Item", {"id": i}) for i in (1, 2, 3)), ("Best", {"v": 3})],
     None),
    # ends oscillating after a cycle that waited: its fingerprint is not noted
    ("cyclic", CYCLIC, [("Phase", {"id": "a", "n": 10}), ("Phase", {"id": "b", "n": 2})],
     None),
])
def test_what_comes_after_a_waiting_cycle_worked_out_at_the_end_is_what_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str,
    facts: list[Any], cycles: int | None,
) -> None:
    # a waiting cycle leaves what comes after it (the tier, whether the job goes on,
    # whether its fingerprint is noted) to the job's end, when it is the last: the
    # checkpoints are those of working it out as each cycle ends
    monkeypatch.setattr(SqliteStore, "group_seconds", 3600.0)
    ruleset = ruleset_file(tmp_path, name, text)

    def documents(way: str) -> list[list[dict[str, Any]]]:
        out = []
        for group in (2, 3, 4):  # (the job's last cycle waits in some of these)
            db = tmp_path / f"{way}{group}.db"
            api.run(ruleset, facts, now=JOB_TIME, store=f"sqlite:///{db}?group={group}",
                    stop=None if cycles is None else stopper(cycles))
            with sqlite3.connect(db) as con:
                rows = con.execute("SELECT data FROM checkpoints ORDER BY cycle").fetchall()
            out.append([checkpoints.unpack(bytes(data)) for (data,) in rows])
        return out

    deferred = documents("deferred")
    monkeypatch.setattr(checkpoints.Checkpointer, "waits", checkpoints.Checkpointer._waits)
    assert deferred == documents("eager")


@pytest.mark.parametrize(("name", "text", "facts"), [
    ("keyed", KEYED, [("Count", {"id": i, "n": 0}) for i in "ab"]),
    ("prunes", PRUNES, [("Tick", {"id": i, "n": 0}) for i in "abc"]),
    ("cyclic", CYCLIC, [("Phase", {"id": "a", "n": 10}), ("Phase", {"id": "b", "n": 2})]),
])
def test_a_waiting_cycles_step_names_the_facts_that_left_the_context_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str,
    facts: list[Any],
) -> None:
    # each step (what the fingerprints' replay needs of a cycle that waited for a later
    # one's checkpoint) names exactly the facts that were live (or new) before its
    # cycle and are not after it, each once: told here from the live ids themselves
    monkeypatch.setattr(SqliteStore, "group_seconds", 3600.0)
    ruleset = ruleset_file(tmp_path, name, text)
    expected: list[tuple[int, set[int]]] = []
    before: dict[str, Any] = {}

    def live_ids(store: Any) -> set[int]:
        return {fid for ids in store.live for fid in ids}

    waits, shadow = checkpoints.Checkpointer.waits, checkpoints.Checkpointer._shadow

    def checked_waits(self: Any, cycle: int) -> None:
        store = self.job.store
        now = live_ids(store)
        came = set(range(before["n"], store.next_id))
        expected.append((cycle, (before["live"] | came) - now))
        before.update(live=now, n=store.next_id)
        waits(self, cycle)

    def checked_shadow(self: Any) -> None:
        before.update(live=live_ids(self.job.store), n=self.job.store.next_id)
        shadow(self)

    monkeypatch.setattr(checkpoints.Checkpointer, "waits", checked_waits)
    monkeypatch.setattr(checkpoints.Checkpointer, "_shadow", checked_shadow)
    db = tmp_path / "run.db"
    api.run(ruleset, facts, now=JOB_TIME, store=f"sqlite:///{db}?group=4")
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT data FROM checkpoints ORDER BY cycle").fetchall()
    steps = [s for (data,) in rows for s in checkpoints.steps_of(checkpoints.unpack(bytes(data)))]
    got = [(int(s[0]), [*s[2], *s[3]]) for s in steps]
    assert len(got) >= 3 and any(left for _, left in got), "cycles waited, facts left"
    assert [(c, sorted(left)) for c, left in got] == [
        (c, sorted(left)) for c, left in expected]
    assert all(len(set(left)) == len(left) for _, left in got)


def test_a_job_stored_without_checkpoints_resumes_by_re_executing_then_writes_them(
    tmp_path: Path,
) -> None:
    ruleset = ruleset_file(tmp_path, "keyed", KEYED)
    facts = [("Count", {"id": i, "n": 0}) for i in "ab"]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    db = str(tmp_path / "run.db")
    api.run(ruleset, facts, now=JOB_TIME, store=db, stop=stopper(3))
    with sqlite3.connect(db) as conn:  # as an older converge stored it
        conn.execute("DELETE FROM checkpoints")
    again = api.resume(db, ruleset=ruleset, stop=stopper(5))  # re-executes 1-3, runs 4-5
    assert again.resumed_from is None and again.status == "interrupted"
    # the live cycles' checkpoints, the first of them whole: the next resume restores
    assert kinds(db) == [(4, "snapshot"), (5, "delta")]
    resumed = api.resume(db, ruleset=ruleset)
    assert resumed.resumed_from == 5
    same_result(resumed, whole)
    assert stored_trace(db) == whole.trace.to_jsonl()


def test_a_checkpoint_format_this_converge_does_not_know_is_not_read(
    tmp_path: Path,
) -> None:
    ruleset = ruleset_file(tmp_path, "keyed", KEYED)
    facts = [("Count", {"id": "a", "n": 0})]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    db = str(tmp_path / "run.db")
    api.run(ruleset, facts, now=JOB_TIME, store=db, stop=stopper(2))
    with sqlite3.connect(db) as conn:  # as a newer converge wrote them
        for cycle, data in conn.execute("SELECT cycle, data FROM checkpoints").fetchall():
            doc = checkpoints.unpack(data)
            doc["format"] = checkpoints.FORMAT + 1
            conn.execute("UPDATE checkpoints SET data = ? WHERE cycle = ?",
                         (checkpoints.pack(doc), cycle))
    resumed = api.resume(db, ruleset=ruleset)
    assert resumed.resumed_from is None  # re-executed, as a store without checkpoints
    same_result(resumed, whole)


def test_a_program_with_an_invariant_writes_checkpoints_and_resumes_from_them(
    tmp_path: Path,
) -> None:
    # (programs with invariants used to be left to the re-executing resume)
    text = KEYED + "invariant small never Count(n) where n > 100\n"
    ruleset = ruleset_file(tmp_path, "guarded", text)
    facts = [("Count", {"id": "a", "n": 0})]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    db = str(tmp_path / "run.db")
    api.run(ruleset, facts, now=JOB_TIME, store=db, stop=stopper(2))
    assert kinds(db)[-1][0] == 2  # the checkpoint of the cycle the job stopped after
    resumed = api.resume(db, ruleset=ruleset)
    assert resumed.resumed_from == 2
    same_result(resumed, whole)


def test_snapshot_every_bounds_the_deltas_between_two_snapshots(
    tmp_path: Path, backend: Backend,
) -> None:
    # (the PostgreSQL URL refused the option: "invalid URI query parameter")
    ruleset = ruleset_file(tmp_path, "prunes", PRUNES)
    facts = [("Tick", {"id": "a", "n": 0})]
    # (one transaction per cycle: a checkpoint per cycle)
    if backend.kind == "sqlite":
        location = f"sqlite:///{backend.path}?snapshot_every=2&group=1"
    else:
        location = f"{backend.location}&snapshot_every=2&group=1"
    api.run(ruleset, facts, now=JOB_TIME, store=location)
    with api_store(backend.location) as store:
        stored = [(c, k) for c, k, _ in store.checkpoints(1, 10**9, since=0)]
    assert len(stored) > 6
    run = 0
    for _, kind in stored:
        run = 0 if kind == "snapshot" else run + 1
        assert run <= 2
    with pytest.raises(StoreError, match="snapshot_every must be a whole number"):
        api_store(location.replace("snapshot_every=2", "snapshot_every=0"))


def test_gc_and_info_know_the_checkpoints(tmp_path: Path) -> None:
    ruleset = ruleset_file(tmp_path, "keyed", KEYED)
    db = str(tmp_path / "run.db")
    for _ in range(2):  # one transaction per cycle: a checkpoint per cycle
        api.run(ruleset, [("Count", {"id": "a", "n": 0})], now=JOB_TIME,
                store=f"sqlite:///{db}?group=1")
    with SqliteStore(db) as store:
        assert store.info().tables["checkpoints"]["rows"] == 2 * 8  # cycles 0 to 7
        assert store.gc(1) == [1]
        assert store.info().tables["checkpoints"]["rows"] == 8
        assert store.schema_version == SCHEMA_VERSION >= 5  # checkpoints came with 5


# -------------------------------------------------------- size: O(changes)

GROWING = """\
ruleset growing
fact Item { id: int, name: str }
fact Count { key id: str, n: int }
agent step { when Count(id, n) where n < LIMIT emit Count(id: id, n: n + 1) }
policy Count { resolve by latest }
"""


def delta_sizes(tmp: Path, context: int, cycles: int = 30) -> tuple[list[int], list[int]]:
    """The bytes of each delta and of each snapshot of a job changing one fact a cycle
    beside ``context`` input facts that never change."""
    ruleset = ruleset_file(tmp, f"growing{context}", GROWING.replace("LIMIT", str(cycles)))
    facts = [("Count", {"id": "a", "n": 0}),
             *(("Item", {"id": i, "name": f"item number {i}"}) for i in range(context))]
    db = tmp / f"grow{context}.db"
    api.run(ruleset, facts, now=JOB_TIME, store=f"sqlite:///{db}?group=1")
    with SqliteStore(db) as store:
        rows = list(store.checkpoints(1, 10**9, since=0))
    return ([len(d) for _, k, d in rows if k == "delta"],
            [len(d) for _, k, d in rows if k == "snapshot"])


def test_the_checkpoints_grow_with_what_changed_not_with_the_context(tmp_path: Path) -> None:
    small, _ = delta_sizes(tmp_path, 100)
    big, snapshots = delta_sizes(tmp_path, 5_000)
    # 50 times the context: a delta (one fact replaced) is about the same size, and
    # the big context's one snapshot (cycle 0) is not written again: 30 deltas are
    # smaller than it
    assert len(big) >= 30 and len(snapshots) == 1
    assert sum(big) / len(big) <= 1.2 * sum(small) / len(small)
    assert sum(big) < snapshots[0]


CHAIN = """\
ruleset chain
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
agent base { when Edge(a, b) emit Path(a: a, b: b) }
agent step { when Path(a, b) and Edge(a: b, b: c) emit Path(a: a, b: c) }
"""


def test_a_growing_context_is_not_written_whole_again_at_every_doubling(
    tmp_path: Path,
) -> None:
    # a snapshot holds every fact ever merged: the deltas' new facts are no extra work
    # for a resume beside a snapshot taken later, and the size rule does not count
    # them — it counted them, and a closure's snapshots were twice its deltas' bytes
    ruleset = ruleset_file(tmp_path, "chain", CHAIN)
    db = tmp_path / "chain.db"
    result = api.run(ruleset, [("Edge", {"a": i, "b": i + 1}) for i in range(200)],
                     now=JOB_TIME, store=f"sqlite:///{db}?group=1")
    with SqliteStore(db) as store:
        rows = list(store.checkpoints(1, 10**9, since=0))
    assert len(rows) == result.cycles + 1  # (one transaction a cycle)
    deltas = sum(len(d) for _, k, d in rows if k == checkpoints.DELTA)
    snapshots = sum(len(d) for _, k, d in rows if k == checkpoints.SNAPSHOT)
    assert snapshots < deltas


def test_the_types_as_characters_or_as_ids_read_back_the_same() -> None:

    ids = array("i", [0, 5, 1, 91, 33, 33, 0])
    text = checkpoints._types(ids, True)
    assert isinstance(text, str) and len(text) == len(ids)
    assert '"' not in text and "\\" not in text  # (nothing JSON escapes)
    assert checkpoints._type_ids(text) == ids
    assert checkpoints._type_ids(checkpoints._types(ids, False)) == ids
    assert checkpoints._type_ids(checkpoints._types(array("i"), True)) == array("i")
    assert len(checkpoints.TYPE_CHARS) == 92


@pytest.mark.parametrize("version", [2, 3])
def test_checkpoints_of_older_formats_still_resume(tmp_path: Path, version: int) -> None:
    # format 3 writes a program's types as characters, format 4 the values as parts;
    # rows an older converge wrote (format 2: a list of type ids; 2 and 3: the values
    # as one list) are still read
    ruleset = ruleset_file(tmp_path, "grows", GROWS)
    facts = [("Count", {"id": "a", "n": 0}),
             *(("Edge", {"a": i, "b": i + 1}) for i in range(30))]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    db = str(tmp_path / "run.db")
    location = f"sqlite:///{db}?group=3"
    api.run(ruleset, facts, now=JOB_TIME, store=location, stop=stopper(12))
    with sqlite3.connect(db) as conn:  # as converge wrote them before format 3 or 4
        rows = conn.execute("SELECT cycle, data FROM checkpoints").fetchall()
        assert all(isinstance(checkpoints.unpack(d)["types"], str) for _, d in rows)
        for cycle, data in rows:
            doc = _as_format_4(checkpoints.unpack(data))
            assert checkpoints.BYTES not in doc  # (no columns: too few facts)
            doc["values"] = [row for part in doc["values"] for row in part]
            doc["format"] = version
            if version == 2:
                doc["types"] = checkpoints._type_ids(doc["types"]).tolist()
            conn.execute("UPDATE checkpoints SET data = ? WHERE cycle = ?",
                         (checkpoints.pack(doc), cycle))
    resumed = api.resume(location, ruleset=ruleset)
    assert resumed.resumed_from is not None
    same_result(resumed, whole)
    assert stored_trace(location) == whole.trace.to_jsonl()


def _as_format_4(doc: dict[str, Any]) -> dict[str, Any]:
    """A format 5 checkpoint document as format 4 held it: its steps as lists, a
    delta's gone, starts and numbers as lists."""
    cols, steps = checkpoints.columns_of(doc), checkpoints.steps_of(doc)
    binary = doc.pop(checkpoints.BYTES, b"")
    ends = [len(binary)]
    if doc.get("cols"):
        ends.append(doc.pop("cols")[0])
    if doc.get("steps"):
        ends.append(doc["steps"]["at"])
        doc["steps"] = [[c, n1, list(gone), list(closed), noted, reset]
                        for c, n1, gone, closed, noted, reset in steps]
    doc.update(cols)
    # the values' msgpack parts as lists, the columns' binary kept
    facts, parts, at = b"", [], 0
    for part in doc["values"]:
        if isinstance(part, dict) and "m" in part:
            size = part["m"][1]
            part = [list(row) for row in checkpoints._values(
                {"format": 5, "values": [part], checkpoints.BYTES: binary[at:at + size]})]
            at += size
        elif isinstance(part, dict):
            size = sum(part["c"][0] * array(code).itemsize for code in part["c"][1])
            facts += binary[at:at + size]
            at += size
        parts.append(part)
    doc["values"] = parts
    assert at == min(ends)
    if facts:
        doc[checkpoints.BYTES] = facts
    doc["format"] = 4
    return doc


@pytest.mark.parametrize("stop", [2, 3, 4])
def test_checkpoints_of_format_4_with_steps_still_resume(tmp_path: Path, stop: int) -> None:
    # format 5 writes the waiting cycles' steps as columns; format 4's lists are still
    # read: the replay finds the oscillation through a cycle that waited
    ruleset = ruleset_file(tmp_path, "cyclic", CYCLIC)
    facts = [("Phase", {"id": "a", "n": 10}), ("Phase", {"id": "b", "n": 2})]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    db = tmp_path / "run.db"
    location = f"sqlite:///{db}?group=4"
    api.run(ruleset, facts, now=JOB_TIME, store=location, stop=stopper(stop))
    with sqlite3.connect(db) as conn:  # as converge wrote them before format 5
        rows = conn.execute("SELECT cycle, data FROM checkpoints").fetchall()
        assert any(checkpoints.unpack(d).get("steps") for _, d in rows)
        for cycle, data in rows:
            conn.execute("UPDATE checkpoints SET data = ? WHERE cycle = ?",
                         (checkpoints.pack(_as_format_4(checkpoints.unpack(data))), cycle))
    resumed = api.resume(location, ruleset=ruleset)
    assert resumed.resumed_from == stop
    same_result(resumed, whole)
    assert stored_trace(location) == whole.trace.to_jsonl()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 2**33), st.booleans(),
                          st.booleans(), st.lists(st.tuples(st.integers(0, 2**35),
                                                            st.booleans()), max_size=4)),
                max_size=12),
       st.booleans(), st.binary(max_size=9))
def test_steps_read_back_from_their_columns(
    given_steps: list[tuple[int, int, bool, bool, list[tuple[int, bool]]]],
    intents: bool, before: bytes,
) -> None:
    ints: list[int] = []
    left: list[int] = []
    marks = bytearray()
    expected = []
    for cycle, n1, noted, reset, leaving in given_steps:
        if not intents:
            leaving = [(fid, False) for fid, _ in leaving]
        left += [fid for fid, _ in leaving]
        marks += bytes(closed for _, closed in leaving)
        ints.extend((cycle * 4 + noted + 2 * reset, n1, len(left)))
        expected.append((cycle, n1, [f for f, c in leaving if not c],
                         [f for f, c in leaving if c], noted, reset))
    part, binary = checkpoints.steps_part(ints, left, marks if intents else None,
                                          len(before))
    doc = {"format": 5, "steps": part, checkpoints.BYTES: before + binary}
    assert checkpoints.steps_of(doc) == expected
    if binary:
        with pytest.raises(checkpoints.Unsupported):  # (a row cut short)
            checkpoints.steps_of({**doc, checkpoints.BYTES: (before + binary)[:-1]})


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["gone", "starts", "numbers"]),
                       st.lists(st.integers(-2**40, 2**40) | st.integers(0, 300),
                                max_size=40)),
       st.binary(max_size=9))
def test_a_deltas_lists_read_back_from_their_columns(
    lists: dict[str, list[int]], before: bytes,
) -> None:
    entry, binary = checkpoints.columns_part(lists, len(before))
    doc = {"format": 5, "cols": entry, checkpoints.BYTES: before + binary}
    assert checkpoints.columns_of(doc) == lists
    if binary:
        with pytest.raises(checkpoints.Unsupported):  # (a row cut short)
            checkpoints.columns_of({**doc, checkpoints.BYTES: (before + binary)[:-1]})


# ------------------------------------------------------------------ property

MIXED = """\
ruleset mixed
fact Count { key id: str, n: int }
fact Seen { id: str, n: int }
fact Pair { a: str, b: str }
fact Lone { id: str }
agent step { when Count(id, n) where n < 7 emit Count(id: id, n: n + 2) }
agent note { when Count(id, n) emit Seen(id: id, n: n) }
agent pair { when Count(id: a, n) and Count(id: b, n: m) where a < b and n == m
  emit Pair(a: a, b: b) }
agent lone tier 2 { when Count(id) and not Pair(a: id) emit Lone(id: id) }
policy Count { resolve by latest }
prune Seen when age > 3
"""


@functools.lru_cache(maxsize=1)
def mixed_ruleset(tmp: str) -> Any:
    return ruleset_file(Path(tmp), "mixed", MIXED)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 9), min_size=1),
       st.integers(1, 8), st.sampled_from(["serial", "threads"]))
def test_any_job_stopped_after_any_cycle_resumes_from_its_checkpoints_to_the_whole_run(
    tmp_path: Path, counts: dict[str, int], stop: int, executor: str,
) -> None:
    ruleset = mixed_ruleset(str(tmp_path))
    facts = [("Count", {"id": i, "n": n}) for i, n in counts.items()]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "run.db")
        first = api.run(ruleset, facts, now=JOB_TIME, store=db, stop=stopper(stop))
        if first.status != "interrupted":
            return
        resumed = api.resume(db, ruleset=ruleset, executor=executor)
        assert resumed.resumed_from == stop
        same_result(resumed, whole)
        assert stored_trace(db) == whole.trace.to_jsonl()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 9), min_size=1),
       st.integers(1, 8), st.integers(1, 5), st.booleans())
def test_any_job_cut_inside_a_group_resumes_from_its_checkpoints_to_the_whole_run(
    tmp_path: Path, counts: dict[str, int], cut: int, group: int, aborted: bool,
) -> None:
    # with groups of `group` cycles, stopped after cycle `cut` (its checkpoint comes
    # with the job's end) or ended there by an exception (the cycles waiting are
    # committed without one: the resume goes on from the last transaction's)
    ruleset = mixed_ruleset(str(tmp_path))
    facts = [("Count", {"id": i, "n": n}) for i, n in counts.items()]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    if whole.cycles <= cut:
        return

    def boom(p: CycleProgress) -> None:
        if p.cycle == cut:
            raise RuntimeError("boom")

    with tempfile.TemporaryDirectory() as tmp:
        location = f"sqlite:///{Path(tmp) / 'run.db'}?group={group}"
        if aborted:
            with pytest.raises(RuntimeError, match="boom"):
                api.run(ruleset, facts, now=JOB_TIME, store=location, progress=boom)
        else:
            first = api.run(ruleset, facts, now=JOB_TIME, store=location,
                            stop=stopper(cut))
            assert first.status == "interrupted"
        resumed = api.resume(location, ruleset=ruleset)
        if not aborted:
            assert resumed.resumed_from == cut
        same_result(resumed, whole)
        assert stored_trace(location) == whole.trace.to_jsonl()


GROWS = """\
ruleset grows
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
fact Count { key id: str, n: int }
agent base { when Edge(a, b) emit Path(a: a, b: b) }
agent step { when Path(a, b) and Edge(a: b, b: c) emit Path(a: a, b: c) }
agent count { when Count(id, n) where n < 40 emit Count(id: id, n: n + 1) }
policy Count { resolve by latest }
"""


CHAINED = """\
ruleset chained
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
fact Note { key id: str, n: int }
agent base { when Edge(a, b) emit Path(a: a, b: b) }
agent step { when Path(a, b) and Edge(a: b, b: c) emit Path(a: a, b: c) }
"""
"""A closure whose facts are ints (but the input ``Note``): from 64 new facts of one
type on, a checkpoint holds them as columns (format 4), fewer as a list of values."""


def _grows() -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    return GROWS, [("Count", {"id": "a", "n": 0}),
                   *(("Edge", {"a": i, "b": i + 1}) for i in range(30))]


def _chained() -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    # nodes 40,000 apart (the columns' typecode "i"), one edge to 2**40 ("q")
    nodes = [i * 40_000 for i in range(80)] + [2**40]
    return CHAINED, [("Note", {"id": "a", "n": 0}),
                     *(("Edge", {"a": a, "b": b}) for a, b in pairwise(nodes))]


@pytest.mark.parametrize("group", [1, 3, 64])
@pytest.mark.parametrize("job", [_grows, _chained])
def test_the_values_a_checkpointer_keeps_encoded_give_the_facts_of_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: int,
    job: Callable[[], tuple[str, list[tuple[str, dict[str, Any]]]]]
) -> None:
    # a snapshot's types and values are the texts (and columns) the deltas before it
    # encoded; a resumed job's first delta encodes its own (nothing is kept from before
    # the resume): every checkpoint must read back as the store's facts
    text, facts = job()
    ruleset = ruleset_file(tmp_path, "job", text)
    staged = checkpoints.Checkpointer._stage
    seen: list[str] = []
    parts: list[str] = []

    class Sink:
        def __init__(self, sink: Any, out: list[bytes]) -> None:
            self.sink, self.out = sink, out

        def stage_checkpoint(self, cycle: int, kind: str, data: bytes) -> None:
            self.out.append(data)
            self.sink.stage_checkpoint(cycle, kind, data)

    def stage(self: checkpoints.Checkpointer, *args: Any) -> None:
        out: list[bytes] = []
        sink, self.sink = self.sink, Sink(self.sink, out)
        try:
            staged(self, *args)
        finally:
            self.sink = sink
        store = self.job.store
        for data in out:
            doc = checkpoints.unpack(data)
            n0 = int(doc.get("n0", 0))
            assert checkpoints._values(doc) == store.values[n0:], (doc["kind"], n0)
            assert checkpoints._type_ids(doc["types"]) == store.type_of[n0:]
            seen.append(doc["kind"])
            parts.extend("columns" if type(p) is dict and "c" in p else "list"
                         for p in doc["values"])

    monkeypatch.setattr(checkpoints.Checkpointer, "_stage", stage)
    made = checkpoints._columns
    columns_made: list[int] = []

    def columns(store: Any, n0: int, n1: int, columnar: Any) -> Any:
        columns_made.append(n1 - n0)
        return made(store, n0, n1, columnar)

    monkeypatch.setattr(checkpoints, "_columns", columns)
    db = tmp_path / "run.db"
    location = f"sqlite:///{db}?group={group}"
    stopped = api.run(ruleset, facts, now=JOB_TIME, store=location, stop=stopper(12))
    assert stopped.status == "interrupted"
    stopped_made = list(columns_made)
    resumed = api.resume(location, ruleset=ruleset)
    assert resumed.resumed_from is not None
    whole = api.run(ruleset, facts, now=JOB_TIME)
    same_result(resumed, whole)
    assert stored_trace(location) == whole.trace.to_jsonl()
    assert checkpoints.DELTA in seen
    assert group == 64 or seen.count(checkpoints.SNAPSHOT) >= 2  # (64: one transaction)
    assert ("columns" in parts) == (job is _chained), parts
    # the new Path facts' columns come from the values the trace rows packed: only
    # the input edges' (a run of 80) are made from the store's values (a resumed
    # job's first checkpoint makes those of the facts restored)
    assert stopped_made == ([80] if job is _chained else []), stopped_made
    assert "list" in parts


def test_columns_hold_plain_ints_of_64_bits_and_read_back_as_they_were() -> None:
    from types import SimpleNamespace

    n = checkpoints.COLUMNS_FROM
    columnar = {0: 2, 1: 1}
    for values, codes in [([(i, -i) for i in range(n)], "hh"),
                          ([(i, 2**31 - i) for i in range(n)], "hq"),
                          ([(i * 70_000, -(2**63)) for i in range(n)], "iq")]:
        store = SimpleNamespace(type_of=array("i", [0] * n), values=values)
        texts, binary = checkpoints._facts_text(store, 0, n, True, columnar)  # type: ignore[arg-type]
        assert texts["values"] == f'[{{"c":[{n},"{codes}"]}}]'
        doc = {"format": checkpoints.FORMAT, "values": json.loads(texts["values"]),
               checkpoints.BYTES: binary}
        got = checkpoints._values(checkpoints.unpack(checkpoints.pack(doc)))
        assert got == values and all(type(v) is int for row in got for v in row)
    # a bool, a None, an int beyond 64 bits, a float, two types, too few facts, a type
    # not all of ints: the values as a list (format 5: msgpack, but for the int beyond
    # 64 bits: JSON), each value of its own type again
    for type_of, values in [([0] * n, [(1, True)] * n), ([0] * n, [(1, None)] * n),
                            ([0] * n, [(1, 2**64)] * n), ([0] * n, [(1, 2.0)] * n),
                            ([0] * (n - 1) + [1], [(1, 2)] * (n - 1) + [(1,)]),
                            ([0] * (n - 1), [(1, 2)] * (n - 1)), ([2] * n, [(1,)] * n)]:
        store = SimpleNamespace(type_of=array("i", type_of), values=values)
        texts, binary = checkpoints._facts_text(  # type: ignore[arg-type]
            store, 0, len(values), True, columnar)
        doc = {"format": checkpoints.FORMAT, "values": json.loads(texts["values"]),
               checkpoints.BYTES: binary}
        assert all(type(p) is list or "m" in p for p in doc["values"])
        assert (type(doc["values"][0]) is list) == (values[0][-1] == 2**64)
        got = checkpoints._values(checkpoints.unpack(checkpoints.pack(doc)))
        assert got == values
        assert [type(v) for r in got for v in r] == [type(v) for r in values for v in r]
    # runs of one type in a stretch of several: each run of 64 or more of a type of
    # ints is columns, the rest lists of values (as they come)
    runs = [(0, 70), (1, 5), (0, 100), (2, 80), (0, 10), (1, 64), (0, 1)]
    type_of = [t for t, k in runs for _ in range(k)]
    values = [(i, -i) if t == 0 else (i,) if t == 1 else ("x",) for i, t in enumerate(type_of)]
    store = SimpleNamespace(type_of=array("i", type_of), values=values)
    texts, binary = checkpoints._facts_text(  # type: ignore[arg-type]
        store, 0, len(values), True, columnar)
    doc = {"format": checkpoints.FORMAT, "values": json.loads(texts["values"]),
           checkpoints.BYTES: binary}
    assert [p["m"][0] if "m" in p else p["c"][0] for p in doc["values"]] == [
        70, 5, 100, 90, 64, 1]
    assert ["c" in p for p in doc["values"]] == [True, False, True, False, True, False]
    assert checkpoints._values(checkpoints.unpack(checkpoints.pack(doc))) == values
    # alternating types: no run
    store = SimpleNamespace(type_of=array("i", [0, 1] * n), values=[(1, 2), (3,)] * n)
    texts, binary = checkpoints._facts_text(store, 0, 2 * n, True, columnar)  # type: ignore[arg-type]
    assert [p["m"][0] for p in json.loads(texts["values"])] == [2 * n]
    # damaged: columns longer than the binary, binary left over, an unknown typecode
    for part, binary in [({"c": [2, "h"]}, b"\0\0"), ({"c": [1, "h"]}, b"\0\0\0\0"),
                         ({"c": [1, "x"]}, b"\0\0")]:
        with pytest.raises(checkpoints.Unsupported):
            checkpoints._values({"format": 4, "values": [part], checkpoints.BYTES: binary})
    # damaged: msgpack cut short, not an array of the count, binary left over
    data = msgpack.packb([(1, 2), (3, 4)])
    for part, binary in [({"m": [2, len(data)]}, data[:-1]), ({"m": [3, len(data)]}, data),
                         ({"m": [2, len(data) - 1]}, data)]:
        with pytest.raises(checkpoints.Unsupported):
            checkpoints._values({"format": 5, "values": [part], checkpoints.BYTES: binary})


def test_values_the_trace_rows_packed_are_columns_taken_apart_from_their_bytes() -> None:
    # facts whose values the trace rows packed (FactStore.packed: little-endian ints
    # fact by fact) are parts of columns made from those bytes (entries one after
    # another, of one type and typecode: one part), of any number of facts; the facts
    # around them are columns or lists as before; an entry outside the facts encoded
    # is not used
    import struct
    from types import SimpleNamespace

    n = checkpoints.COLUMNS_FROM
    type_of = [0] * n + [1] * 3 + [0] * 5 + [0] * 3 + [2] * 2 + [0] * 4
    values = [(i, -i * 70_000 if n + 3 <= i < n + 8 else -i) if t == 0
              else (i,) if t == 1 else ("x",) for i, t in enumerate(type_of)]
    store = SimpleNamespace(type_of=array("i", type_of), values=values)

    def rows(first: int, count: int, fields: int, code: str) -> checkpoints.Packed:
        flat = [v for row in values[first:first + count] for v in row]
        return first, count, fields, code, struct.pack(f"<{len(flat)}{code}", *flat)

    handed = [rows(n, 3, 1, "h"), rows(n + 3, 2, 2, "i"), rows(n + 5, 3, 2, "i"),
              rows(n + 8, 3, 2, "h"), rows(n + 13, 4, 2, "q"),
              rows(0, 2, 2, "h")]  # (the last: not among the facts from n + 17 on)
    texts, binary = checkpoints._facts_text(  # type: ignore[arg-type]
        store, 0, len(values), True, {0: 2, 1: 1}, handed)
    doc = checkpoints.unpack(checkpoints.pack(
        {"format": checkpoints.FORMAT, "values": json.loads(texts["values"]),
         checkpoints.BYTES: binary}))
    assert doc["values"] == [{"c": [n, "hh"]}, {"c": [3, "h"]}, {"c": [5, "ii"]},
                             {"c": [3, "hh"]}, {"m": [2, 7]}, {"c": [4, "qq"]}]
    got = checkpoints._values(doc)
    assert got == values and all(type(v) is int for row in got[:-6] for v in row)


def test_facts_the_format_cannot_write_end_the_checkpoints_not_the_job() -> None:
    # the facts' texts are encoded outside pack (kept for the snapshots): a value JSON
    # refuses (a TypeError: a map keyed by tuples) must still be Unsupported, which
    # ends a job's checkpoints, not an error that ends the job
    from types import SimpleNamespace

    store = SimpleNamespace(type_of=array("i", [0, 0]), values=[(1,), ({1, 2},)])
    texts, binary = checkpoints._facts_text(store, 0, 1)  # type: ignore[arg-type]
    doc = {"format": checkpoints.FORMAT, "values": json.loads(texts["values"]),
           checkpoints.BYTES: binary}
    assert checkpoints._values(doc) == [(1,)]
    with pytest.raises(checkpoints.Unsupported):  # (neither msgpack nor JSON writes a set)
        checkpoints._facts_text(store, 0, 2)  # type: ignore[arg-type]
    # (format 5: msgpack writes a map keyed by tuples, which JSON refused; read back, it
    # is Unsupported: the resume re-executes the job)
    store.values[1] = ({(1, 2): 3},)
    texts, binary = checkpoints._facts_text(store, 0, 2)  # type: ignore[arg-type]
    with pytest.raises(checkpoints.Unsupported):
        checkpoints._values({"format": checkpoints.FORMAT,
                             "values": json.loads(texts["values"]), checkpoints.BYTES: binary})


_JSON_LEAVES = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text()
                | st.dates() | st.timedeltas() | st.datetimes(timezones=st.just(UTC)))


@settings(max_examples=200, deadline=None)
@given(st.recursive(_JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                    | st.tuples(inner, inner)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                    max_leaves=20))
def test_a_checkpoint_document_packs_to_the_json_its_format_says(value: Any) -> None:
    # the format is `json.dumps(doc, separators=(",", ":"), default=_tag)` (compressed
    # when long); pack's own encoder must write those bytes, whatever the values
    doc = {"format": checkpoints.FORMAT, "kind": checkpoints.DELTA, "v": value}
    text = json.dumps(doc, separators=(",", ":"), default=checkpoints._tag)
    assert checkpoints.pack(doc) in (
        text.encode("utf-8", "surrogatepass"),
        zlib.compress(text.encode("utf-8", "surrogatepass"), 1))
    with pytest.raises(checkpoints.Unsupported):
        checkpoints.pack({"v": [value, object()]})


SUPPORTED = """\
ruleset supported
fact Cost { sku: str }
fact Rate { qty: int }
agent sure { when Cost() emit Rate(qty: -2) }
agent unsure { when Cost() emit Rate(qty: -2) confidence 0.25 }
agent again { when Rate() emit Rate(qty: -2) }
"""


def test_a_support_of_less_confidence_reads_back_as_the_whole_runs(tmp_path: Path) -> None:
    # (found: a plain fact supported in a committed cycle by an agent of confidence
    # 0.25 was (..., 0.25) in the whole run's fact_events and (..., 1.0) in the resumed
    # run's, read back from its fact_supported line, which has no confidence)
    ruleset = ruleset_file(tmp_path, "supported", SUPPORTED)
    facts = [("Cost", {"sku": "a"})]
    whole = api.run(ruleset, facts, now=JOB_TIME)
    supports = [ev for ev in whole.trace.fact_events() if ev[0] == 4]
    assert supports and all(ev[5] == 1.0 for ev in supports)
    assert check_resumes(ruleset, facts, lambda k: str(tmp_path / f"r{k}.db")) >= 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=6))
def test_a_zlib_stream_of_deflated_parts_reads_back_as_their_bytes(
    pieces: list[bytes],
) -> None:
    # a snapshot's zlib stream is made of parts compressed apart (see _snapshot_data):
    # the blocks of each, then the last block and the Adler-32 of them all, combined
    stream = checkpoints._zlib_stream([checkpoints._deflated(p) for p in pieces])
    assert zlib.decompress(stream) == b"".join(pieces)


@pytest.mark.parametrize(("name", "text", "facts", "group"), [
    ("prunes", PRUNES, [("Tick", {"id": i, "n": 0}) for i in "ab"], 1),
    ("prunes", PRUNES, [("Tick", {"id": i, "n": 0}) for i in "ab"], 3),
    ("keyed", KEYED, [("Count", {"id": i, "n": n}) for i, n in (("a", 0), ("b\u2028é", 3))],
     2),
    ("grows", *_grows(), 1),
    ("chained", *_chained(), 2),
])
def test_a_snapshot_of_earlier_snapshots_parts_holds_what_its_document_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str,
    facts: list[Any], group: int,
) -> None:
    # a snapshot's facts and cycles are compressed parts of the snapshots before it
    # and of what came since: it reads back as the document it is, all of it encoded
    # at once (the columns may be cut elsewhere: the facts' values compared)
    ruleset = ruleset_file(tmp_path, name, text)
    made = checkpoints.Checkpointer._snapshot_data
    seen: list[int] = []

    def snapshot_data(self: checkpoints.Checkpointer, doc: dict[str, Any]) -> bytes:
        data = made(self, doc)
        store = self.job.store
        texts, binary = checkpoints._facts_text(store, 0, store.next_id, self._chars,
                                                self._columnar)
        texts["starts"] = checkpoints._dumps(store.cycle_starts.tolist())
        texts["numbers"] = checkpoints._dumps(store.cycle_numbers.tolist())
        # (the binary encoded at once may be cut elsewhere: its sum is another)
        alone = {key: value for key, value in doc.items() if key != checkpoints.SUM}
        whole = checkpoints.unpack(checkpoints.pack({**alone, "bytes": binary}, texts))
        got = checkpoints.unpack(data)
        assert (checkpoints.SUM in got) == bool(got.get("bytes"))
        assert checkpoints._values(got) == checkpoints._values(whole)
        assert checkpoints._type_ids(got["types"]) == checkpoints._type_ids(whole["types"])
        for key in ("values", "types", "bytes", checkpoints.SUM):
            got.pop(key, None)
            whole.pop(key, None)
        assert got == whole
        seen.append(store.next_id)
        return data

    monkeypatch.setattr(checkpoints.Checkpointer, "_snapshot_data", snapshot_data)
    result = api.run(ruleset, facts, now=JOB_TIME,
                     store=f"sqlite:///{tmp_path / 'run.db'}?group={group}&snapshot_every=2")
    assert len(seen) >= 2 and result.status == "converged"


# an older fact derived again (Big) and losing a derivation that rested on a pruned
# fact (its dependents), in later cycles
AGAIN = """\
ruleset again
fact N { key id: str, n: int }
fact Seen { id: str, n: int }
fact Big { level: int }
agent note { when N(id, n) emit lasting Seen(id: id, n: n) }
agent big { when Seen(n) where n >= 2 emit Big(level: n - n % 3) }
agent up { when N(id, n) where n < 7 emit N(id: id, n: n + 1) }
policy N { resolve by latest }
prune Seen when age > 2
"""


@pytest.mark.parametrize(("name", "text", "facts"), [
    ("keyed", KEYED, [("Count", {"id": i, "n": 0}) for i in "ab"]),
    ("prunes", PRUNES, [("Tick", {"id": i, "n": 0}) for i in "abc"]),
    ("cyclic", CYCLIC, [("Phase", {"id": "a", "n": 10}), ("Phase", {"id": "b", "n": 2})]),
    ("mixed", MIXED, [("Count", {"id": i, "n": n % 2}) for n, i in enumerate("abc")]),
    ("again", AGAIN, [("N", {"id": "a", "n": 0}), ("N", {"id": "b", "n": 3})]),
])
@pytest.mark.parametrize("group", [1, 3])
def test_a_delta_names_every_older_fact_whose_state_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str,
    facts: list[Any], group: int,
) -> None:
    # the store notes what a delta needs (FactStore.touched and .left, not every fact
    # it changed: a new fact's own state is in the delta whole): every fact older than
    # the last checkpoint whose liveness, derivations or dependents changed since is
    # one the delta writes, told here from the store's state at the two checkpoints
    monkeypatch.setattr(SqliteStore, "group_seconds", 3600.0)
    ruleset = ruleset_file(tmp_path, name, text)
    before: dict[int, Any] = {}
    changed_any: list[int] = []

    def state(store: Any) -> dict[int, Any]:
        live = {fid for ids in store.live for fid in ids}
        return {fid: (fid in live, repr(store.derivations.get(fid)),
                      repr(store.dependents.get(fid))) for fid in range(store.next_id)}

    delta, shadow = checkpoints.Checkpointer._delta, checkpoints.Checkpointer._shadow

    def checked_delta(self: Any, job_state: dict[str, Any]
                      ) -> tuple[dict[str, Any], list[int]]:
        doc, gone = delta(self, job_state)
        now = state(self.job.store)
        changed = {fid for fid, was in before.items() if now[fid] != was}
        written = {int(f) for f, _ in doc["derivs"]} & {int(f) for f, _ in doc["deps"]}
        assert changed <= written, f"not in the delta: {sorted(changed - written)}"
        changed_any.extend(changed)
        return doc, gone

    def checked_shadow(self: Any) -> None:
        shadow(self)
        before.clear()
        before.update(state(self.job.store))

    monkeypatch.setattr(checkpoints.Checkpointer, "_delta", checked_delta)
    monkeypatch.setattr(checkpoints.Checkpointer, "_shadow", checked_shadow)
    db = tmp_path / "run.db"
    api.run(ruleset, facts, now=JOB_TIME, store=f"sqlite:///{db}?group={group}")
    assert changed_any, "older facts changed"
