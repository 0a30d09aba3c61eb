"""What recording timings costs (issue 15): the keyed-counter and closure workloads of
`converge bench`, each run without a :class:`~converge_rules.engine.timings.Timings`
collector and with one, alternating, medians; results checked equal.

    python bench/engine/bench_timings.py [--rounds N] [--only off|on] [--json]

``--only off`` times the untimed run alone: run it under two checkouts' PYTHONPATH,
alternating, to compare a branch against main (the cost of the hooks when timings are
off, which must be none)."""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from typing import Any

import converge_rules
from converge_rules.benchmarks import CLOSURE_RULESET, chain, counters_ruleset
from converge_rules.engine import run, validate_pairs


def _workloads() -> list[tuple[str, Any, Any, int]]:
    """(name, program, validated facts, agent runs per job)."""
    agents, cycles = 200, 100
    counters = converge_rules.loads(counters_ruleset(agents, cycles), plugins=False)
    closure = converge_rules.loads(CLOSURE_RULESET, plugins=False)
    return [
        ("keyed counters, 200 agents x 100 cycles (per agent run)", counters.program,
         validate_pairs(counters.program, [("Count", {"id": f"c{i}", "n": 0})
                                           for i in range(agents)]), agents * (cycles + 1)),
        ("closure, chain of 300 (whole run)", closure.program,
         validate_pairs(closure.program, [("Edge", {"src": a, "dst": b})
                                          for a, b in chain(300)]), 1),
    ]


def _once(program: Any, facts: Any, timed: bool) -> tuple[float, str]:
    timings = None
    if timed:
        from converge_rules.engine.timings import Timings

        timings = Timings()
    gc.collect()
    began = time.perf_counter()
    result = run(program, facts, now=None, timings=timings) if timed else \
        run(program, facts, now=None)
    took = time.perf_counter() - began
    return took, result.to_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=("off", "on"), default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    modes = [args.only == "on"] if args.only else [False, True]
    rows = []
    for name, program, facts, per in _workloads():
        _once(program, facts, False)  # imports and caches: start-up, untimed
        times: dict[bool, list[float]] = {m: [] for m in modes}
        answers: set[str] = set()
        for _ in range(args.rounds):
            for mode in modes:
                took, answer = _once(program, facts, mode)
                times[mode].append(took / per)
                answers.add(answer)
        row: dict[str, Any] = {"workload": name, "rounds": args.rounds,
                               "agree": len(answers) == 1}
        for mode in modes:
            row["on" if mode else "off"] = statistics.median(times[mode])
        if len(modes) == 2:
            row["on/off"] = round(row["on"] / row["off"], 3)
        rows.append(row)
    if args.json:
        json.dump(rows, sys.stdout)
        print()
        return
    for row in rows:
        cells = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                 for k, v in row.items() if k != "workload"]
        print(f"{row['workload']}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
