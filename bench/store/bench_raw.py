"""The SQLite store's run-time cost in CPU time, paired and alternating (issue 13 item
10: within 1.3x of the same run without it): the keyed counter (5,000 short cycles),
the closure of a chain of 800, and item 10's own job (``bench_store.py``'s pruned
job, 10,000 cycles each replacing a ``Tick``, adding a ``Reading`` and pruning one),
each run ``none`` (no trace) and ``store`` (a new store file each run), and ``store,
no checkpoints`` (the same with the checkpoints' staging skipped: the trace's share of
the store's cost, not a way converge runs).

    python bench/store/bench_raw.py [--rounds N] [--quick] [--only NAME]

CPU time (``time.process_time``) of each run in the same process, the ways in
alternating order, medians; the ratio is over ``none``. Run it with another
checkout's code first on ``PYTHONPATH`` for a before/after under the same load (the
``no checkpoints`` way then needs the same ``Checkpointer.stage``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_store import pruned_ruleset, workloads

import converge_rules
from converge_rules import api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10x smaller workloads")
    parser.add_argument("--only", help="the workloads whose name starts with this")
    args = parser.parse_args()
    from converge_rules.engine import checkpoints

    stage = checkpoints.Checkpointer.stage
    waits = getattr(checkpoints.Checkpointer, "waits", None)  # (older code: stage)

    def no_waits(self: Any, cycle: int) -> None:
        pass

    def no_stage(self: Any, cycle: int, lines: int, **_: Any) -> None:
        self.lines += lines

    chosen = {k: v for k, v in workloads(args.quick, not args.quick).items()
              if ("800" in k or "100" in k or k.startswith("counter (5,000")
                  or k.startswith("counter (500 "))}
    pruned = 1_000 if args.quick else 10_000
    chosen[f"pruned ({pruned:,} cycles)"] = (
        converge_rules.loads(pruned_ruleset(pruned), plugins=False),
        [("Tick", {"id": "t", "n": 0})])
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k.startswith(args.only)}
    print(f"{'workload':<28}{'none s':>9}{'store s':>9}{'store/none':>11}"
          f"{'no-ckpt s':>10}{'no-ckpt/none':>13}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ruleset, facts) in chosen.items():
            times: dict[str, list[float]] = {"none": [], "store": [], "no-ckpt": []}
            for i in range(args.rounds):
                ways: dict[str, Callable[[], Any]] = {
                    "none": lambda r=ruleset, f=facts: api.run(r, f, now=None),
                    "store": lambda r=ruleset, f=facts, i=i: api.run(
                        r, f, now=None, store=Path(tmp) / f"s{i}.db"),
                    "no-ckpt": lambda r=ruleset, f=facts, i=i: api.run(
                        r, f, now=None, store=Path(tmp) / f"n{i}.db"),
                }
                order = list(ways) if i % 2 == 0 else list(reversed(ways))
                for way in order:
                    checkpoints.Checkpointer.stage = (  # type: ignore[method-assign]
                        no_stage if way == "no-ckpt" else stage)
                    if waits is not None:
                        checkpoints.Checkpointer.waits = (  # type: ignore[method-assign]
                            no_waits if way == "no-ckpt" else waits)
                    start = time.process_time()
                    ways[way]()
                    times[way].append(time.process_time() - start)
                checkpoints.Checkpointer.stage = stage  # type: ignore[method-assign]
                if waits is not None:
                    checkpoints.Checkpointer.waits = waits  # type: ignore[method-assign]
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"{name:<28}{med['none']:>9.3f}{med['store']:>9.3f}"
                  f"{med['store'] / med['none']:>11.2f}{med['no-ckpt']:>10.3f}"
                  f"{med['no-ckpt'] / med['none']:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
