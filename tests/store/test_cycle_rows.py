"""One ``cycles`` row per transaction (migration 12): the row holds the cycles the
transaction committed, each with its lines and bytes (``sizes``), keyed by the last of
them; every reader gives what one row per cycle gave — the cycles of a job, their
sizes, the totals of ``store info`` — and a resume cuts inside such a row. Rows of
the older layout (one cycle, no ``sizes``) read as before and are not rewritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import converge_rules
from converge_rules import api
from converge_rules.benchmarks import pruned_ruleset
from converge_rules.errors import StoreError
from converge_rules.store import sqlite
from converge_rules.store.sqlite import (
    SqliteStore,
    cycle_entries,
    cycles_row,
    encode_sizes,
)
from tests.store.conftest import Backend

PRUNED = pruned_ruleset(40)  # (item 10's job, 41 cycles)


def _per_cycle(lines: list[str]) -> dict[int, int]:
    """Trace lines per cycle, as the trace itself says (a line names its cycle; the
    lines before the first cycle count to cycle 0, those after the last to it)."""
    counts: dict[int, int] = {}
    cycle = 0
    for line in lines:
        cycle = int(json.loads(line.rsplit("\t", 1)[0]).get("cycle", cycle))
        counts[cycle] = counts.get(cycle, 0) + 1
    return counts


def test_sizes_round_trip_and_join() -> None:
    # a run, a cycle twice, a gap, cycles alike (the first one's number is absolute)
    flat = [3, 4, 100, 4, 2, 50, 4, 1, 7, 9, 0, 0, 10, 0, 0, 11, 0, 0, 12, 5, 5,
            13, 5, 5, 14, 5, 5, 15, 5, 5]
    text = encode_sizes(flat)
    assert text == "3,4,100,1,2,50,0,1,7,5,0,0,2*1,0,0,4*1,5,5;"
    entries = [(3, 4, 100), (4, 2, 50), (4, 1, 7), (9, 0, 0), (10, 0, 0), (11, 0, 0),
               (12, 5, 5), (13, 5, 5), (14, 5, 5), (15, 5, 5)]
    assert cycle_entries(15, 27, 177, text) == entries
    alike = encode_sizes([7, 9, 175, 8, 9, 175, 9, 9, 175])
    assert alike == "7,9,175,2*1,9,175;"
    assert cycle_entries(9, 27, 525, alike) == [(7, 9, 175), (8, 9, 175), (9, 9, 175)]
    # two rows' texts joined (ON CONFLICT appends) read as both rows' cycles
    assert cycle_entries(15, 28, 180, text + encode_sizes([15, 1, 3])) == [
        *entries, (15, 1, 3)]
    assert cycle_entries(5, 2, 10, None) == [(5, 2, 10)]
    assert cycles_row(1, [5, 2, 10]) == (1, 5, 2, 10, None)
    assert cycles_row(1, flat) == (1, 15, 27, 177, text)


def test_a_transaction_writes_one_cycles_row(backend: Backend,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """It wrote one row per cycle: a short cycle's INSERT cost more than its trace."""
    monkeypatch.setattr(SqliteStore, "group_seconds", 1e9)  # commits by count only
    program = converge_rules.loads(PRUNED)
    facts = [("Tick", {"id": "t", "n": 0})]
    one = api.run(program, facts, store=backend.grouped(1), now=None)
    grouped = api.run(program, facts, store=backend.grouped(8), now=None)
    assert grouped.cycles == one.cycles == 41
    with backend.open() as store:
        (a, b) = store.jobs()
        rows = {job: int(store._read("SELECT count(*) FROM cycles WHERE job = ?",
                                     (job,))[0][0]) for job in (a.id, b.id)}
        assert rows[a.id] == 42  # cycles 0..41, one a transaction (the job's end too)
        assert rows[b.id] <= 42 // 8 + 2
        for job in (a, b):
            lines = list(store.trace_lines(job.id))
            sizes = store.cycle_sizes(job.id)
            # each cycle once, in order, with the lines the trace gives it
            assert [(c, n) for c, n, _ in sizes] == sorted(_per_cycle(lines).items())
            assert (job.cycles, job.trace_lines, job.trace_bytes) == (
                sizes[-1][0], len(lines), sum(s for _, _, s in sizes))
        # bytes shares differ with the rows, lines not
        assert [s[:2] for s in store.cycle_sizes(a.id)] == [
            s[:2] for s in store.cycle_sizes(b.id)]


def test_a_resume_cuts_inside_a_transactions_row(backend: Backend,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``reopen`` keeps the cycles up to the one it goes on from, that one with the
    lines and bytes it is given, though they share a row with the cycles dropped."""
    monkeypatch.setattr(SqliteStore, "group_seconds", 1e9)
    program = converge_rules.loads(PRUNED)
    api.run(program, [("Tick", {"id": "t", "n": 0})], store=backend.grouped(4), now=None)
    with backend.open() as store:
        job = store.job(None)
        before = store.cycle_sizes(job.id)
        raw = store._read("SELECT cycle, lines, bytes, sizes FROM cycles WHERE job = ? "
                          "ORDER BY cycle", (job.id,))
        # a transaction's row of four cycles; its last one has a trace row of its own
        first, *_, last = [c for c, _, _ in cycle_entries(*raw[3])]
        assert last - first == 3
        cut = last - 1
        keep = sum(n for c, n, _ in before if c <= cut)
        sink = store.resume_job(job.id, job.trace_lines)
        sink.reopen(keep, cut, dict((c, n) for c, n, _ in before)[cut], 77)
        with sink:
            sink.write_lines([])  # the reopening commits (a row of cycle `cut` again)
        after = store.cycle_sizes(job.id)
        assert after == [s for s in before if s[0] < cut] + [
            (cut, dict((c, n) for c, n, _ in before)[cut], 77)]
        assert store.job(job.id).cycles == cut
        assert len(list(store.trace_lines(job.id))) == keep == store.job(job.id).trace_lines


def test_rows_of_the_older_layout_read_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store of schema version 11 (a row per cycle) is migrated without rewriting
    its rows; they read as they did, and a resumed job goes on after them."""
    program = converge_rules.loads(PRUNED)
    facts = [("Tick", {"id": "t", "n": 0})]
    whole = api.run(program, facts, trace=tmp_path / "whole.jsonl", now=None)
    db = tmp_path / "s.db"
    api.run(program, facts, store=db, now=None)
    with SqliteStore(db) as store:
        job = store.job(None)
        sizes = store.cycle_sizes(job.id)
        lines = list(store.trace_lines(job.id))
    # the same store as migration 11 left it: one row per cycle, no `sizes` column
    conn = sqlite.sqlite3.connect(db, isolation_level=None)
    conn.execute("DELETE FROM cycles")
    conn.execute("ALTER TABLE cycles DROP COLUMN sizes")
    conn.executemany("INSERT INTO cycles (job, cycle, lines, bytes) VALUES (?, ?, ?, ?)",
                     [(job.id, *s) for s in sizes])
    conn.execute("DELETE FROM schema_version WHERE version = 12")
    conn.close()
    with monkeypatch.context() as m:
        m.setattr(sqlite, "MIGRATIONS", sqlite.MIGRATIONS[:11])
        m.setattr(sqlite, "SCHEMA_VERSION", 11)
        with SqliteStore(db) as store:
            assert store.schema_version == 11
    with SqliteStore(db) as store:
        assert store.schema_version == 12
        assert store.cycle_sizes(job.id) == sizes
        assert store.job(job.id) == job
        assert list(store.trace_lines(job.id)) == lines
        assert whole.cycles == job.cycles
        # reopened at its last cycle (the older rows cut and set as before)
        last, n, _ = sizes[-1]
        sink = store.resume_job(job.id, job.trace_lines)
        sink.reopen(job.trace_lines, last, n, 77)
        with sink:
            sink.write_lines([])
        assert store.cycle_sizes(job.id) == [*sizes[:-1], (last, n, 77)]


@pytest.mark.parametrize("sizes", [
    "garbage", "1,2", "1,2,3;x", "1,2,3", "3,1,1,x*1,1,1;", "3,1,1,1,1;",
    "99999999999*1,1,1;", "3,1,1,99999999999*1,1,1;", "3,1,1,-1,1,1;",
    "3,1,1,100*0,1,1;", "3,1,1,20,1,1;",
])
def test_a_damaged_sizes_text_is_a_store_error_not_a_crash_or_a_hang(sizes: str) -> None:
    """The `sizes` column is outside the trace's chain: an edited one is refused as
    damaged (it was a ValueError or IndexError out of `store info --job` and
    `run --resume`, and a forged run count built a list of that many entries)."""
    with pytest.raises(StoreError, match="damaged row of the store's cycles table"):
        cycle_entries(15, 27, 177, sizes)


def test_a_damaged_cycles_row_is_reported_by_store_info_and_resume(
        tmp_path: Path) -> None:
    from click.testing import CliRunner

    from converge_rules.cli import main

    rules = tmp_path / "ticks.cvg"
    rules.write_text(PRUNED)
    db = tmp_path / "s.db"
    api.run(converge_rules.load(rules), [("Tick", {"id": "t", "n": 0})],
            store=f"sqlite:///{db}?group=4", now=None)
    conn = sqlite.sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE cycles SET sizes = 'garbage' WHERE sizes IS NOT NULL")
    conn.execute("UPDATE jobs SET status = 'interrupted'")
    conn.close()
    for args in (["store", "info", str(db), "--job", "1"],
                 ["run", str(rules), "--resume", str(db)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert "damaged row of the store's cycles table" in result.output
        assert "internal error" not in result.output
