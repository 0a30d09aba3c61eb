"""Where the engine's time goes on the closure benchmark: a phase breakdown measured by
wrapping the executor's compute phase and the merge (no profiler overhead), the work
counts behind it, and optionally a cProfile listing.

    python bench/closure/profile_closure.py [--graph chain:1000 | --graph random:2000:4000]
                                            [--cprofile] [--memory]

Per derivation (one join result an agent emits, duplicates included) the engine's time
is compared with the baseline's, which enumerates exactly the same join results.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_closure as bench

import converge_rules
from converge_rules.engine import executors, merge


def derivations(edges: list[tuple[int, int]]) -> tuple[int, set[tuple[int, int]]]:
    """The baseline, counting the join results it looks at (slower: not timed)."""
    by_dst: dict[int, list[int]] = defaultdict(list)
    for a, b in edges:
        by_dst[b].append(a)
    path = set(edges)
    delta = list(path)
    seen = len(edges)
    while delta:
        new: set[tuple[int, int]] = set()
        for b, c in delta:
            froms = by_dst.get(b, ())
            seen += len(froms)
            for a in froms:
                p = (a, c)
                if p not in path:
                    new.add(p)
        path |= new
        delta = list(new)
    return seen, path


class PhaseTimer:
    """Wraps the compute phase and the merge with wall-clock timers."""

    def __init__(self) -> None:
        self.compute = 0.0
        self.merge = 0.0
        self.outputs = 0

    def install(self) -> None:
        timer = self
        run_cycle = executors.SerialExecutor.run_cycle
        merge_cycle = merge.Merger.merge_cycle

        def timed_run_cycle(self: Any, *args: Any) -> Any:
            start = time.perf_counter()
            effects = run_cycle(self, *args)
            timer.compute += time.perf_counter() - start
            timer.outputs += sum(len(e.outputs) for e in effects)
            return effects

        def timed_merge_cycle(self: Any, *args: Any) -> Any:
            start = time.perf_counter()
            changed = merge_cycle(self, *args)
            timer.merge += time.perf_counter() - start
            return changed

        executors.SerialExecutor.run_cycle = timed_run_cycle  # type: ignore[method-assign]
        merge.Merger.merge_cycle = timed_merge_cycle  # type: ignore[method-assign]


def graph(spec: str) -> list[tuple[int, int]]:
    kind, *sizes = spec.split(":")
    if kind == "chain":
        return bench.chain(int(sizes[0]))
    return bench.random_graph(int(sizes[0]), int(sizes[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", default="random:1000:2000",
                        help="chain:N or random:NODES:EDGES (default random:1000:2000)")
    parser.add_argument("--cprofile", action="store_true", help="also print a cProfile top 15")
    parser.add_argument("--memory", action="store_true",
                        help="also measure peak and retained memory (tracemalloc; slow)")
    args = parser.parse_args()
    edges = graph(args.graph)
    ruleset = converge_rules.loads(bench.RULESET, plugins=False)
    facts = [("Edge", {"src": a, "dst": b}) for a, b in edges]

    joins, _ = derivations(edges)  # the counting copy is not timed
    gc.collect()
    start = time.perf_counter()
    paths = bench.baseline(edges)
    t_base = time.perf_counter() - start

    timer = PhaseTimer()
    timer.install()
    gc.collect()
    start = time.perf_counter()
    result = converge_rules.run(ruleset, facts)
    t_engine = time.perf_counter() - start
    assert len(result.fact_ids("Path")) == len(paths)
    other = t_engine - timer.compute - timer.merge

    print(f"graph {args.graph}: {len(edges):,} edges, {len(paths):,} paths, "
          f"{result.cycles} cycles, {timer.outputs:,} derivations emitted "
          f"({timer.outputs / len(paths):.2f} per path; baseline join results {joins:,})")
    print(f"  baseline {t_base:8.3f} s   {t_base / joins * 1e9:7.0f} ns per join result")
    print(f"  engine   {t_engine:8.3f} s   {t_engine / timer.outputs * 1e9:7.0f} ns per "
          f"derivation   ratio {t_engine / t_base:.2f}")
    for name, value in (("agents (compute)", timer.compute), ("merge", timer.merge),
                        ("rest (inputs, activation, GC per cycle)", other)):
        print(f"    {name:<36} {value:8.3f} s  {value / t_engine:6.1%}  "
              f"{value / timer.outputs * 1e9:6.0f} ns per derivation")
    del result
    gc.collect()

    if args.memory:
        tracemalloc.start()
        kept = converge_rules.run(ruleset, facts)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del kept
        gc.collect()
        tracemalloc.start()
        _, base_paths = derivations(edges)
        b_current, b_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        n = len(base_paths)
        print(f"  memory per path: engine retained {current / n:.0f} B (peak {peak / n:.0f} B), "
              f"baseline retained {b_current / n:.0f} B (peak {b_peak / n:.0f} B)")

    if args.cprofile:
        profile = cProfile.Profile()
        profile.runcall(converge_rules.run, ruleset, facts)
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
