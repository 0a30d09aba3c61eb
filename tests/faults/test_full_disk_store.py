"""A job store on a disk that fills up: the job stops with a message naming the store
and the fix, no traceback, and the cycles committed before are still there, readable."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import converge_rules
from converge_rules.benchmarks import pruned_ruleset
from converge_rules.engine import validate_pairs
from converge_rules.store.sqlite import SqliteStore

COUNTER = """\
ruleset counter
root "count" {
  max_cycles = 100000
}
fact Count { key id: str, n: int }
agent step { when Count(id, n) where n < 20000 emit Count(id: id, n: n + 1) }
policy Count { resolve by latest }
"""


def test_a_store_that_fills_the_disk_keeps_what_it_committed(
    small_disk: Callable[..., Any],
) -> None:
    disk = small_disk({"counter.cvg": COUNTER, "in.jsonl": '{"Count": {"id": "a", "n": 0}}\n'},
                      free=400_000)  # the schema, then a few cycles and checkpoints
    # one transaction per cycle: many small commits before the disk is full
    result = disk.run("run", "counter.cvg", "-f", "in.jsonl", "--store",
                      "sqlite:///run.db?group=1")
    assert result.code == 2, result.text
    assert "Traceback" not in result.text
    assert "converge: error: cannot write the store run.db: the disk is full" in result.err
    db = sqlite3.connect(disk.root / "run.db")
    try:
        status, cycles = db.execute(
            "SELECT j.status, max(c.cycle) FROM jobs j JOIN cycles c ON c.job = j.id"
        ).fetchone()
        lines = db.execute("SELECT coalesce(sum(lines), 0) FROM trace_rows").fetchone()[0]
    finally:
        db.close()
    assert status in ("running", "aborted")  # marking it aborted needs space too
    assert cycles >= 5 and lines == 1 + 6 * cycles  # the input fact, then whole cycles


def test_a_store_committing_groups_of_cycles_keeps_whole_cycles_on_a_full_disk(
    small_disk: Callable[..., Any],
) -> None:
    disk = small_disk({"counter.cvg": COUNTER, "in.jsonl": '{"Count": {"id": "a", "n": 0}}\n'},
                      free=600_000)
    result = disk.run("run", "counter.cvg", "-f", "in.jsonl", "--store", "run.db")
    assert result.code == 2, result.text
    assert "Traceback" not in result.text
    assert "converge: error: cannot write the store run.db: the disk is full" in result.err
    db = sqlite3.connect(disk.root / "run.db")
    try:
        cycles = db.execute("SELECT max(cycle) FROM cycles").fetchone()[0]
        lines = db.execute("SELECT coalesce(sum(lines), 0) FROM trace_rows").fetchone()[0]
    finally:
        db.close()
    assert cycles >= 64 and lines == 1 + 6 * cycles  # groups of whole cycles


def test_gc_on_a_full_disk_deletes_the_jobs_and_says_what_giving_the_space_back_needs(
    small_disk: Callable[..., Any], tmp_path: Path,
) -> None:
    """Found: `store gc` on a nearly full disk freed nothing and said the disk was full
    (SQLite built with secure_delete, as Debian's is, zeroes every page a delete frees:
    deleting 1.1 MB of jobs wrote 1.1 MB to the WAL). Now the jobs are deleted; the
    file cannot shrink (compacting writes a copy of what the store keeps), and the
    message says so, how much room that needs, and that a later gc does it."""
    made = tmp_path / "made.db"
    ruleset = converge_rules.loads(pruned_ruleset(3000), plugins=False)
    facts = validate_pairs(ruleset.program, [("Tick", {"id": "t", "n": 0})])
    for _ in range(4):  # ~1.5 MB: four jobs of ~380 kB
        converge_rules.run(ruleset, facts, now=None, store=made)
    disk = small_disk({"run.db": made.read_bytes()}, free=300_000)
    result = disk.run("store", "gc", "run.db", "--keep-last", "1")
    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    assert "run.db: deleted 3 jobs (1, 2, 3)" in result.err
    assert ("converge: error: the store run.db could not shrink: compacting it writes a "
            "copy of what it keeps (about ") in result.err
    assert "Free that much disk space and run `converge store gc` again" in result.err
    # the jobs are gone (read back where there is room: the WAL holds the delete)
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    for suffix in ("", "-wal"):
        if (disk.root / f"run.db{suffix}").exists():
            shutil.copyfile(disk.root / f"run.db{suffix}", roomy / f"run.db{suffix}")
    with SqliteStore(roomy / "run.db") as store:
        assert [j.id for j in store.jobs()] == [4]
    # with room, the next gc gives the space back
    before = (roomy / "run.db").stat().st_size
    again = replace(disk, root=roomy, free=10**9, limit_process=True).run(
        "store", "gc", "run.db", "--keep-last", "1")
    assert again.code == 0, again.text
    assert ("run.db: nothing to delete (1 finished job, at most 1 kept); the space of "
            "jobs deleted before given back; ") in again.out
    assert (roomy / "run.db").stat().st_size < before / 2
