"""A job store on a disk that fills up: the job stops with a message naming the store
and the fix, no traceback, and the cycles committed before are still there, readable."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

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
