"""Ray's per-cycle overhead against ``processes`` on the same machine.

The workload is all overhead: ``agents`` agents each updating its own keyed counter
(``counters_ruleset``), so every cycle ships a small delta to each replica, runs
``agents`` trivial activations and brings their effects back. Each executor is timed
around its ``run_cycle`` calls alone (the job's merge and its start-up are left out;
start-up is printed apart), ``serial`` as the floor. Rounds alternate the executors;
the numbers are medians; every job must give ``serial``'s result and trace.

    PYTHONPATH=.:plugins/converge-ray python bench/ray/bench_ray.py [--quick]

Ray is started once on this machine (127.0.0.1, ``--cpus`` CPUs) and stopped at the
end; ``processes`` and ``ray`` both use ``--workers`` workers.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import ray

import converge_rules
from converge_rules.benchmarks import counters_ruleset
from converge_rules.engine import run
from converge_rules.engine.executors import SerialExecutor, processes_executor


class Timed:
    """An executor that times the one it wraps: ``start`` apart, ``run_cycle`` summed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.wants_delta = getattr(inner, "wants_delta", True)
        self.start_s = 0.0
        self.cycles_s = 0.0
        self.cycles = 0

    def start(self, *args: Any, **kwargs: Any) -> None:
        t = time.perf_counter()
        self.inner.start(*args, **kwargs)
        self.start_s = time.perf_counter() - t

    def run_cycle(self, cycle: int, delta: Any, activations: Sequence[Any]) -> Any:
        t = time.perf_counter()
        effects = self.inner.run_cycle(cycle, delta, activations)
        self.cycles_s += time.perf_counter() - t
        self.cycles += 1
        return effects

    def close(self) -> None:
        self.inner.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cycles and rounds")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args(argv)
    cycles, rounds = (50, 3) if args.quick else (300, 5)

    from converge_ray.executor import RayExecutor

    text = counters_ruleset(args.agents, cycles)
    ruleset = converge_rules.loads(text, plugins=False)
    # with agent_timeout, ray sends one call per activation (to cut one at its deadline)
    budget = f"max_cycles = {cycles + 10}"
    timed_ruleset = converge_rules.loads(
        text.replace(budget, f"{budget}\n  agent_timeout = 60s\n"), plugins=False)
    facts = [("Count", {"id": f"c{i}", "n": 0}) for i in range(args.agents)]
    reference = run(ruleset.program, facts, now=None)
    expected = (reference.to_json(), reference.trace.to_jsonl())
    timed_reference = run(timed_ruleset.program, facts, now=None)
    timed_expected = (timed_reference.to_json(), timed_reference.trace.to_jsonl())

    makers: dict[str, Callable[[], Any]] = {
        "serial": SerialExecutor,
        "processes": lambda: processes_executor(args.workers),
        "ray": lambda: RayExecutor(args.workers),
        "ray, agent_timeout": lambda: RayExecutor(args.workers),
    }
    per_cycle: dict[str, list[float]] = {name: [] for name in makers}
    starts: dict[str, list[float]] = {name: [] for name in makers}
    ray.init(address="local", num_cpus=args.cpus, _node_ip_address="127.0.0.1",
             include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    agree = True
    try:
        for r in range(rounds):
            order = list(makers) if r % 2 == 0 else list(reversed(makers))
            for name in order:
                timed = Timed(makers[name]())
                with_timeout = name.endswith("agent_timeout")
                program = (timed_ruleset if with_timeout else ruleset).program
                result = run(program, facts, now=None, executor=timed)
                agree &= (result.to_json(), result.trace.to_jsonl()) == (
                    timed_expected if with_timeout else expected)
                per_cycle[name].append(timed.cycles_s / max(timed.cycles, 1))
                starts[name].append(timed.start_s)
    finally:
        ray.shutdown()
    median = {name: statistics.median(v) for name, v in per_cycle.items()}
    print(f"{args.agents} counters, {reference.cycles} cycles, {args.workers} workers, "
          f"{rounds} rounds (medians)")
    print(f"{'executor':<20} {'per cycle':>12} {'start':>9} {'vs processes':>13}")
    for name in makers:
        start = statistics.median(starts[name])
        print(f"{name:<20} {median[name] * 1e6:>9,.0f} µs {start:>7.3f} s"
              f" {median[name] / median['processes']:>12.2f}x")
    print(f"ray - processes: {(median['ray'] - median['processes']) * 1e6:,.0f} µs per cycle")
    if not agree:
        print("error: an executor's result or trace differs from serial", file=sys.stderr)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
