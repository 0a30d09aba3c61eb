"""Where a stored run's trace time goes (issue 13 item 10), by taking parts away: each
workload of ``bench_raw.py`` run ``none`` (no store), ``no-ckpt`` (the SQLite store,
the checkpoints' staging skipped, as ``bench_raw.py``'s way of that name), ``no-sink``
(the same, the sink's ``cycle_raw``, ``cycle_waits``, ``commit_due`` and
``encode_waiting`` doing nothing: the cycles a raw row cannot hold are made by
``compact`` as they end, nothing is written until the job's last lines) and
``no-rows`` (``compact`` too replaced by a constant, for every cycle: the store is
opened, the job recorded, the runner's path taken, no trace row made).

    python bench/store/bench_trace_parts.py [--rounds N] [--quick] [--only NAME]

CPU time (``time.process_time``) of each run in the same process, the ways in
alternating order, medians; then each part per cycle: ``compact`` (no-sink − no-rows:
the cycles ``compact`` makes as they end), the sink (no-ckpt − no-sink: the raw rows'
encoding at the commit, hashing, SQLite), and the rest (no-rows − none). Not a way
converge runs: a measuring tool. Run it with another checkout's code first on
``PYTHONPATH`` for a before/after under the same load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_store import pruned_ruleset, workloads

import converge_rules
from converge_rules import api

WAYS = ("none", "no-ckpt", "no-sink", "no-rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10x smaller workloads")
    parser.add_argument("--only", help="the workloads whose name starts with this")
    args = parser.parse_args()
    from converge_rules.engine import checkpoints, tracerows
    from converge_rules.store import sqlite

    def no_stage(self: Any, cycle: int, lines: int, **_: Any) -> None:
        self.lines += lines

    job = sqlite.SqliteJob
    names = ("cycle_raw", "cycle_waits", "commit_due", "encode_waiting")
    real = {n: getattr(job, n) for n in names}
    real_compact, real_kinds = tracerows.compact, tracerows.RAW_KINDS
    empty = tracerows.CompactCycle("lines", "[]", 0, None)

    def way(name: str) -> None:
        for n, f in real.items():
            setattr(job, n, f)
        tracerows.compact, tracerows.RAW_KINDS = real_compact, real_kinds
        if name in ("no-sink", "no-rows"):  # the sink keeps nothing of the cycles
            job.cycle_raw = lambda self, *args: False  # type: ignore[method-assign]
            job.cycle_waits = lambda self, cycle, events: None  # type: ignore[method-assign]
            job.commit_due = lambda self, tools: False  # type: ignore[method-assign]
            job.encode_waiting = lambda self: []  # type: ignore[method-assign]
        if name == "no-rows":  # nor does the engine make any compact cycle
            tracerows.compact = lambda trace, start, events=None: empty  # type: ignore[assignment]
            tracerows.RAW_KINDS = frozenset()  # (no cycle is raw)

    stage, waits = checkpoints.Checkpointer.stage, checkpoints.Checkpointer.waits
    checkpoints.Checkpointer.stage = no_stage  # type: ignore[method-assign]
    checkpoints.Checkpointer.waits = lambda self, cycle: None  # type: ignore[method-assign]
    chosen = {k: v for k, v in workloads(args.quick, not args.quick).items()
              if ("800" in k or "100" in k or k.startswith("counter (5,000")
                  or k.startswith("counter (500 "))}
    pruned = 1_000 if args.quick else 10_000
    chosen[f"pruned ({pruned:,} cycles)"] = (
        converge_rules.loads(pruned_ruleset(pruned), plugins=False),
        [("Tick", {"id": "t", "n": 0})])
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k.startswith(args.only)}
    print(f"{'workload':<28}" + "".join(f"{w + ' s':>11}" for w in WAYS)
          + f"{'compact':>10}{'sink':>8}{'rest':>8}  (µs a cycle)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ruleset, facts) in chosen.items():
            times: dict[str, list[float]] = {w: [] for w in WAYS}
            cycles = 0
            for i in range(args.rounds):
                for w in (WAYS if i % 2 == 0 else WAYS[::-1]):
                    way(w)
                    store: dict[str, Any] = {} if w == "none" else {
                        "store": Path(tmp) / f"{w}{i}.db"}
                    start = time.process_time()
                    result = api.run(ruleset, facts, now=None, **store)
                    times[w].append(time.process_time() - start)
                    cycles = max(result.cycles, 1)
            way("no-ckpt")
            med = {k: statistics.median(v) for k, v in times.items()}
            us = 1e6 / cycles
            print(f"{name:<28}" + "".join(f"{med[w]:>11.3f}" for w in WAYS)
                  + f"{(med['no-sink'] - med['no-rows']) * us:>10.1f}"
                  f"{(med['no-ckpt'] - med['no-sink']) * us:>8.1f}"
                  f"{(med['no-rows'] - med['none']) * us:>8.1f}", flush=True)
    checkpoints.Checkpointer.stage = stage  # type: ignore[method-assign]
    checkpoints.Checkpointer.waits = waits  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
