"""The trace rows' chain covers every column a reader or a resume relies on, in every
store backend: an edit of a row's text, first line number (``seq``), cycle, line count
or format is caught by the line chain ``converge verify`` checks, at the row's first
line (found by review r22: ``seq``, ``cycle`` and ``lines`` were not covered)."""

from __future__ import annotations

from pathlib import Path

import pytest

import converge_rules
from converge_rules import api
from converge_rules.integrity import verify_lines
from tests.store.conftest import Backend
from tests.store.test_sqlite_store import counter

EDITS = {
    "seq": "seq = seq + 1000",
    "cycle": "cycle = cycle + 1",
    "lines": "lines = lines + 1",
    "kind": "kind = 'text'",
    # (the second row: its text, empty in a row of format rawm, and its msgpack bytes)
    "data": "data = replace(data, '5', '6') || ' '",
    "packed": "packed = substr(packed, 2)",
    # a hash that is no hex at all (the next row's hash follows from it): tampered,
    # not an internal error (review r23a: bytes.fromhex raised)
    "hash": "hash = 'zz'",
    "hash of odd length": "hash = substr(hash, 2)",
}


@pytest.mark.parametrize("column", list(EDITS))
def test_an_edit_of_any_column_of_a_stored_trace_row_is_caught(
    tmp_path: Path, backend: Backend, column: str,
) -> None:
    ruleset, facts = counter(tmp_path, 8)
    loaded = converge_rules.load(ruleset)
    # two cycles a transaction: rows that each hold two cycles' events
    api.run(loaded, api.read_facts(loaded, facts), store=backend.grouped(2), now=None)
    with backend.open() as store:
        job = store.job(None).id
        assert verify_lines(list(store.trace_lines(job))).ok
    with backend.connect() as db:
        second = int(db.execute("SELECT seq FROM trace_rows ORDER BY seq LIMIT 1 OFFSET 1"
                                ).fetchone()[0])
        db.execute(f"UPDATE trace_rows SET {EDITS[column]} WHERE seq = ?", (second,))
    with backend.open() as store:
        verdict = verify_lines(list(store.trace_lines(job)))
    assert not verdict.ok
    assert verdict.line == second + 1  # the first line of the second row


def _rows_and_lines(backend: Backend, job: int) -> tuple[list[tuple[int, ...]], list[str]]:
    with backend.connect() as db:
        rows = [tuple(int(v) for v in r) for r in db.execute(
            "SELECT seq, cycle, lines FROM trace_rows WHERE job = ? ORDER BY seq", (job,))]
        ends = [tuple(int(v) for v in r) for r in db.execute(
            "SELECT cycle, (SELECT sum(lines) FROM cycles AS c WHERE c.job = k.job AND "
            "c.cycle <= k.cycle) FROM checkpoints AS k WHERE job = ? ORDER BY cycle", (job,))]
    with backend.open() as store:
        lines = list(store.trace_lines(job))
    return rows + [(-1, *e) for e in ends], lines


def test_a_transaction_s_cycles_share_a_trace_row_ending_at_each_checkpoint(
    tmp_path: Path, backend: Backend,
) -> None:
    """The raw events of the cycles one transaction commits but its last are one
    trace row (one hash, one INSERT), not a row each; a row ends with each cycle whose checkpoint is
    stored (a resume truncates the trace there), and the trace reads back as the one
    a row per cycle gives, and as ``--trace`` writes it."""
    ruleset, facts = counter(tmp_path, 300)  # 40 cycles: max_cycles
    loaded = converge_rules.load(ruleset)
    trace = tmp_path / "t.jsonl"
    api.run(loaded, api.read_facts(loaded, facts), trace=trace, now=None)
    # at most 8 cycles a transaction, then one a transaction
    api.run(loaded, api.read_facts(loaded, facts), store=backend.grouped(8), now=None)
    api.run(loaded, api.read_facts(loaded, facts), store=backend.grouped(1), now=None)
    joined, lines = _rows_and_lines(backend, 1)
    single, single_lines = _rows_and_lines(backend, 2)
    assert lines == single_lines == trace.read_text().splitlines()
    assert verify_lines(lines).ok
    rows = [r for r in joined if r[0] >= 0]
    cycles = 41
    assert len([r for r in single if r[0] >= 0]) == cycles + 1  # a row each, the end's
    # two rows a transaction (its last cycle has its own: a job cut inside it is
    # resumed by running it again whole), and the end's
    assert len(rows) <= 2 * (cycles // 8 + 1) + 1
    row_ends = {seq + count for seq, _, count in rows}
    checkpoints = [(cycle, through) for _, cycle, through in joined if _ < 0]
    assert len(checkpoints) >= 4
    assert all(through in row_ends for _, through in checkpoints)
    # a row's cycle column is the last cycle it holds
    assert rows[-2][1] == checkpoints[-1][0]


def test_a_cycle_larger_than_join_bytes_has_a_row_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from converge_rules.engine import tracerows
    from converge_rules.store import sqlite

    ruleset, facts = counter(tmp_path, 40)
    loaded = converge_rules.load(ruleset)
    db = tmp_path / "s.db"
    monkeypatch.setattr(sqlite, "JOIN_BYTES", 1)  # every cycle is larger
    # (rows of events, made as each cycle ends: the counter's are raw rows, below)
    monkeypatch.setattr(tracerows, "RAW_KINDS", frozenset())  # (no cycle is raw)
    api.run(loaded, api.read_facts(loaded, facts), store=db, now=None)
    with sqlite.SqliteStore(db) as store:
        assert store._read("SELECT count(*) FROM trace_rows")[0][0] == 41 + 1
        assert verify_lines(list(store.trace_lines(1))).ok


def test_raw_rows_hold_a_transactions_cycles_but_its_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from converge_rules.store import sqlite

    ruleset, facts = counter(tmp_path, 40)
    loaded = converge_rules.load(ruleset)
    db = tmp_path / "s.db"
    monkeypatch.setattr(sqlite, "JOIN_BYTES", 1)  # (a limit of rows of events only)
    api.run(loaded, api.read_facts(loaded, facts), store=db, now=None)
    with sqlite.SqliteStore(db) as store:
        # cycles 0-40 in one transaction: 0-39, 40 (a resume may cut the trace
        # before it), the job's end
        assert store._read("SELECT kind, cycle, lines FROM trace_rows ORDER BY seq") == [
            ("rawm", 39, 341), ("rawm", 40, 6), ("events", 40, 2)]
        assert verify_lines(list(store.trace_lines(1))).ok
