"""Transitive closure: converge_rules against the pure-Python ceiling, in the same run.

    python bench/closure/bench_closure.py [--quick]

The baseline is a hand-written semi-naive evaluation with dict indexes — what a careful
Python programmer writes for this one query, and the fastest pure Python gets. The
engine runs the general ruleset below (two agents, a join, set semantics, provenance).
Each line prints both times and the ratio engine / baseline (target: under 2.0).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import converge_rules

RULESET = '''ruleset closure "Transitive closure of a directed graph"

root "every path" {
  max_cycles = 100_000                   # a chain of N nodes needs N cycles
  max_facts  = 10_000_000                # the random graph has 2.55M paths
}

fact Edge { src: int, dst: int }
fact Path { src: int, dst: int }

agent base {
  when Edge(src: a, dst: b)
  emit Path(src: a, dst: b)
}

agent step {
  when Edge(src: a, dst: b) and Path(src: b, dst: c)
  emit Path(src: a, dst: c)
}
'''


def baseline(edges: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """Semi-naive closure: each round joins only the paths found in the round before."""
    by_dst: dict[int, list[int]] = defaultdict(list)
    for a, b in edges:
        by_dst[b].append(a)
    path = set(edges)
    delta = list(path)
    while delta:
        new: set[tuple[int, int]] = set()
        for b, c in delta:
            for a in by_dst.get(b, ()):
                p = (a, c)
                if p not in path:
                    new.add(p)
        path |= new
        delta = list(new)
    return path


def chain(n: int) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(n)]


def random_graph(nodes: int, edges: int, seed: int = 7) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    out: set[tuple[int, int]] = set()
    while len(out) < edges:
        a, b = rng.randrange(nodes), rng.randrange(nodes)
        if a != b:
            out.add((a, b))
    return sorted(out)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small graphs only")
    args = parser.parse_args()
    ruleset = converge_rules.loads(RULESET)
    cases: list[tuple[str, list[tuple[int, int]]]] = [
        ("chain 200", chain(200)),
        ("chain 500", chain(500)),
        ("chain 1000", chain(1000)),
        ("random 2000/4000", random_graph(2000, 4000)),
    ]
    if args.quick:
        cases = cases[:2]
    print(f"{'graph':<18} {'paths':>9} {'baseline s':>11} {'engine s':>9} {'ratio':>6}")
    for name, edges in cases:
        t_base, paths = timed(lambda edges=edges: baseline(edges))
        facts = [("Edge", {"src": a, "dst": b}) for a, b in edges]
        t_engine, result = timed(lambda facts=facts: converge_rules.run(ruleset, facts))
        got = {(p["src"], p["dst"]) for p in result.facts("Path")}
        assert result.status == "converged", result.status
        assert got == paths, f"{name}: engine found {len(got)} paths, baseline {len(paths)}"
        print(f"{name:<18} {len(paths):>9,} {t_base:>11.3f} {t_engine:>9.3f} "
              f"{t_engine / t_base:>6.2f}")


if __name__ == "__main__":
    main()
