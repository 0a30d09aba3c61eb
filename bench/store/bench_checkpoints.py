"""Checkpoints (issue 13, item 2, and item 10's store-size row): what they cost in the
store, and what they save a resume.

    python bench/store/bench_checkpoints.py [--quick] [--rounds N]

* **size**: a job that changes one fact a cycle (a keyed counter, ``CYCLES`` cycles)
  beside a context of N input facts that never change, for several N: the bytes of
  the checkpoints per cycle (the median delta, the snapshots written and their bytes,
  all checkpoint bytes over the cycles) and of the trace. The store should grow with
  what changed, not with the context: the delta stays the same size whatever N, and
  a snapshot is written again only once the deltas since outgrow the last one (not
  counting the facts and cycle starts they add, which a snapshot holds again).
* **resume**: the same job stopped after its next-to-last cycle, resumed from its
  checkpoints and, on a copy without them, by re-executing it from its inputs (the
  fallback); alternating, ``--rounds`` rounds, medians. Both results are checked equal.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import converge_rules
from converge_rules import api
from converge_rules.store.sqlite import SqliteStore

COUNTER = """\
ruleset counter
root "count" {
  max_cycles = 1000000
}
fact Item { id: int, name: str }
fact Count { key id: str, n: int }
agent step { when Count(id, n) where n < LIMIT emit Count(id: id, n: n + 1) }
policy Count { resolve by latest }
"""


def _facts(context: int) -> list[tuple[str, dict[str, Any]]]:
    return [("Count", {"id": "a", "n": 0}),
            *(("Item", {"id": i, "name": f"item number {i}"}) for i in range(context))]


def _ruleset(tmp: Path, cycles: int) -> Any:
    path = tmp / f"counter{cycles}.cvg"
    path.write_text(COUNTER.replace("LIMIT", str(cycles)))
    return converge_rules.load(path)


def size_row(tmp: Path, context: int, cycles: int) -> dict[str, Any]:
    ruleset = _ruleset(tmp, cycles)
    db = tmp / f"size{context}.db"
    db.unlink(missing_ok=True)
    api.run(ruleset, _facts(context), store=str(db), now=None)
    with SqliteStore(db) as store:
        rows = list(store.checkpoints(1, 10**9, since=0))
        sizes = store.cycle_sizes(1)
        trace, first = sum(b for _, _, b in sizes), sizes[0][2]
    deltas = [len(d) for _, k, d in rows if k == "delta"]
    snapshots = [len(d) for _, k, d in rows if k == "snapshot"]
    total = sum(deltas) + sum(snapshots)
    return {"context": context, "cycles": len(rows), "delta_median": statistics.median(deltas),
            "snapshots": len(snapshots), "snapshot_bytes": max(snapshots),
            "per_cycle": total / len(rows),
            "after_first": (total - snapshots[0]) / (len(rows) - 1),
            "trace_after_first": (trace - first) / (len(rows) - 1)}


def resume_row(tmp: Path, context: int, cycles: int, rounds: int) -> dict[str, Any]:
    ruleset = _ruleset(tmp, cycles)
    facts = _facts(context)
    base = tmp / f"resume{context}.db"
    base.unlink(missing_ok=True)
    asked = iter([False] * (cycles - 1))
    api.run(ruleset, facts, store=str(base), now=None, stop=lambda: next(asked, True))
    bare = tmp / f"bare{context}.db"
    shutil.copy(base, bare)
    conn = sqlite3.connect(bare, isolation_level=None)
    conn.execute("DELETE FROM checkpoints")
    conn.close()  # the last connection: its WAL goes into the file, which is copied
    times: dict[str, list[float]] = {"checkpoints": [], "re-execution": []}
    results: dict[str, str] = {}
    for _ in range(rounds):
        for way, source in (("checkpoints", base), ("re-execution", bare)):
            db = tmp / f"{way}.db"
            shutil.copy(source, db)
            for suffix in ("-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            start = time.perf_counter()
            result = api.resume(str(db), ruleset=ruleset)
            times[way].append(time.perf_counter() - start)
            assert (result.resumed_from is not None) == (way == "checkpoints"), way
            results[way] = result.to_json()
    assert results["checkpoints"] == results["re-execution"], "the two resumes differ"
    ck, rx = (statistics.median(times[w]) for w in ("checkpoints", "re-execution"))
    return {"context": context, "cycles": cycles, "checkpoints": ck, "re-execution": rx,
            "ratio": rx / ck}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    contexts = [1_000, 10_000] if args.quick else [1_000, 10_000, 50_000]
    cycles = 100 if args.quick else 500
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        print(f"size: one keyed fact replaced a cycle, {cycles} cycles, beside N facts")
        print("| N | checkpoints | median delta | snapshots | largest snapshot "
              "| checkpoint bytes / cycle | after cycle 0 | trace bytes / cycle after cycle 0 |")
        print("|---|---|---|---|---|---|---|---|")
        for context in contexts:
            r = size_row(tmp, context, cycles)
            print(f"| {context:,} | {r['cycles']} | {r['delta_median']:,.0f} B "
                  f"| {r['snapshots']} | {r['snapshot_bytes']:,} B | {r['per_cycle']:,.0f} B "
                  f"| {r['after_first']:,.0f} B | {r['trace_after_first']:,.0f} B |")
        long = 300 if args.quick else 2_000
        print(f"\nresume after {long - 1} of {long} cycles (median of {args.rounds}, "
              "alternating)")
        print("| N | from checkpoints | re-executing | re-executing / checkpoints |")
        print("|---|---|---|---|")
        for context in contexts[:2]:
            r = resume_row(tmp, context, long, args.rounds)
            print(f"| {context:,} | {r['checkpoints']:.2f} s | {r['re-execution']:.2f} s "
                  f"| {r['ratio']:.1f}x |")


if __name__ == "__main__":
    main()
