"""Transitive closure: converge_rules against the pure-Python ceiling, in the same run.

    python bench/closure/bench_closure.py [--quick]

The baseline is a hand-written semi-naive evaluation with dict indexes — what a careful
Python programmer writes for this one query, and the fastest pure Python gets. The
engine runs the general ruleset below (two agents, a join, set semantics, provenance).
Each line prints both times and the ratio engine / baseline (target: under 2.0).
"""

from __future__ import annotations

import argparse

import converge_rules
from converge_rules.benchmarks import (
    CLOSURE_RULESET,
    chain,
    closure_baseline,
    random_graph,
    timed,
)

RULESET = CLOSURE_RULESET
baseline = closure_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small graphs only")
    args = parser.parse_args()
    ruleset = converge_rules.loads(RULESET)
    # Untimed warm-up: the engine's modules are imported on the first run.
    converge_rules.run(ruleset, [("Edge", {"src": 0, "dst": 1})])
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
