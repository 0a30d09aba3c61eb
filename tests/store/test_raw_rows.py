"""Cycles whose events are all of the kinds a raw row keeps (engine/tracerows.py
``raw_run``: keyed updates, lasting supports, removals of older facts, the inputs)
are encoded together at the commit as the tuples the engine recorded: the trace a job
store gives back is byte for byte the ``--trace`` file all the same, and a value JSON
does not keep exactly sends its cycles the way they went before (``compact``)."""

from __future__ import annotations

from pathlib import Path

import pytest

import converge_rules
from converge_rules import api
from converge_rules.integrity import verify_lines
from converge_rules.store import sqlite
from converge_rules.store.sqlite import SqliteStore

PRUNED = """\
ruleset ticker
root "ticks" {
  max_cycles = 100
}
fact Tick { key id: str, n: int }
fact Reading { n: int, slot: int, value: int }
agent step { when Tick(id, n) where n < 40 emit Tick(id: id, n: n + 1) }
agent read0 { when Tick(id, n) emit lasting Reading(n: n, slot: 0, value: (n * 7) % 13) }
agent read1 { when Tick(id, n) emit lasting Reading(n: n, slot: 1, value: (n * 5) % 11) }
policy Tick { resolve by latest }
prune Reading when age >= 3
"""

KEYED = """\
ruleset keyed
root "keyed" {
  max_cycles = 100
}
fact Acc { key id: str, key day: date, total: float, n: int }
agent add { when Acc(id, day, total, n) where n < 30
            emit Acc(id: id, day: day, total: total * FACTOR, n: n + 1) }
policy Acc { resolve by latest }
"""

SUPPORTED = """\
ruleset again
root "again" {
  max_cycles = 100
}
fact Tick { key id: str, n: int }
fact Seen { id: str }
agent step { when Tick(id, n) where n < 20 emit Tick(id: id, n: n + 1) }
agent seen { when Tick(id, n) emit lasting Seen(id: id) }
policy Tick { resolve by latest }
"""
"""A lasting support in a fact added (the first cycle) and in the fact supported again
each cycle after it: both kinds' lasting places in one row."""

ACC = [("Acc", {"id": "a\u00e9\"", "day": "2026-12-07", "total": 0.1, "n": 0}),
       ("Acc", {"id": "b", "day": "2026-01-01", "total": -0.0, "n": 5})]


@pytest.mark.parametrize(("text", "facts", "events_rows"), [
    # (the last cycle: lean effects of lasting facts, kept as a row of events)
    (PRUNED, [("Tick", {"id": "t", "n": 0})], 2),
    (KEYED.replace("FACTOR", "1.5"), ACC, 1),
    (SUPPORTED, [("Tick", {"id": "t", "n": 0})], 2),
    # past ~1e308 the totals are infinite, the effects discarded: those cycles (an
    # event a raw row does not keep) are kept as rows of events, the others raw
    (KEYED.replace("FACTOR", "1e60"), ACC, 2),
], ids=["lasting-pruned", "keyed-dates-floats", "lasting-supported", "discarded"])
@pytest.mark.parametrize("encodes", ["rawm", "raw", None],
                         ids=["rawm", "raw", "raw-run-refused"])
def test_raw_rows_read_back_as_the_trace_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
    facts: list[tuple[str, dict[str, object]]], events_rows: int, encodes: str | None,
) -> None:
    from converge_rules.engine import tracerows

    if encodes == "raw":  # as for a value msgpack does not keep exactly: JSON
        monkeypatch.setattr(tracerows.msgpack, "packb", _refused)
    if encodes is None:  # as for a value JSON does not keep exactly: each cycle as compact
        monkeypatch.setattr(tracerows, "raw_run", lambda *args: None)
    program = converge_rules.loads(text, plugins=False)
    api.run(program, facts, trace=tmp_path / "t.jsonl", now=None)
    # several transactions of up to 7 cycles
    api.run(program, facts, store=f"sqlite:///{tmp_path}/s.db?group=7", now=None)
    expected = (tmp_path / "t.jsonl").read_text().splitlines()
    with SqliteStore(tmp_path / "s.db") as store:
        job = store.job(None).id
        lines = list(store.trace_lines(job))
        kinds = [k for (k,) in store._read("SELECT kind FROM trace_rows WHERE job = ?",
                                           (job,))]
        sizes = store.cycle_sizes(job)
    assert lines == expected
    assert verify_lines(lines).ok
    if encodes:
        assert kinds.count("events") == events_rows
        assert encodes in kinds
        assert set(kinds) == {encodes, "events"}
    else:
        assert set(kinds) == {"events"}
    # each cycle's lines counted (what resume reads; the job's end with the last)
    assert sum(n for _, n, _ in sizes) == len(lines)


def _refused(*args: object, **kwargs: object) -> bytes:
    raise OverflowError("as for an int beyond 64 bits")


def test_a_converge_that_knows_no_raw_rows_refuses_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    program = converge_rules.loads(PRUNED, plugins=False)
    api.run(program, [("Tick", {"id": "t", "n": 0})], store=tmp_path / "s.db", now=None)
    # an older converge: migration 9 (rows of format raw) unknown to it
    monkeypatch.setattr(sqlite, "MIGRATIONS", sqlite.MIGRATIONS[:8])
    monkeypatch.setattr(sqlite, "SCHEMA_VERSION", 8)
    with pytest.raises(sqlite.StoreError, match="newer than this converge knows"):
        SqliteStore(tmp_path / "s.db")


def test_cycles_waiting_raw_are_encoded_before_the_trace_spills_their_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from converge_rules.engine import tracerows
    from converge_rules.engine.trace import SPILL_EVENTS

    read: list[tuple[int, int]] = []
    events_of = tracerows.events_of

    def in_memory(trace: object, start: int, end: int) -> object:
        read.append((start, trace._spilled))  # type: ignore[attr-defined]
        return events_of(trace, start, end)  # type: ignore[arg-type]

    monkeypatch.setattr(tracerows, "events_of", in_memory)
    monkeypatch.setattr(SqliteStore, "group_seconds", 1e9)  # no commit for the time
    program = converge_rules.loads(
        PRUNED.replace("n < 40", "n < 600").replace("= 100", "= 1000"), plugins=False)
    facts = [("Tick", {"id": "t", "n": 0})]
    api.run(program, facts, trace=tmp_path / "t.jsonl", now=None)
    # up to 1,000 cycles a transaction: far more events than the trace holds in memory
    api.run(program, facts, store=f"sqlite:///{tmp_path}/s.db?group=1000", now=None)
    with SqliteStore(tmp_path / "s.db") as store:
        job = store.job(None).id
        lines = list(store.trace_lines(job))
        commits = store._read("SELECT count(*) FROM checkpoints WHERE job = ?", (job,))
    assert lines == (tmp_path / "t.jsonl").read_text().splitlines()
    assert len(lines) > 2 * SPILL_EVENTS
    assert read and all(start >= spilled for start, spilled in read)
    # ... and still wait for their group's commit: the job's one transaction (and its
    # one checkpoint), not one more for each spill (3 checkpoints before session 28)
    assert commits[0][0] == 1
    assert any(spilled for _, spilled in read)  # (the trace did spill)
