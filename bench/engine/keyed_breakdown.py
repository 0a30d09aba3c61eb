"""Where one agent run of the keyed-counter workload spends its time (issue 11).

    python bench/engine/keyed_breakdown.py [--agents 200] [--cycles 100] [--rounds 5]
    python bench/engine/keyed_breakdown.py --profile      # cProfile, top 30 by tottime

The workload is ``converge bench``'s: ``agents`` agents, each updating its own keyed
``Count(id: "c<i>")`` (``resolve by latest``) from 0 to ``cycles``, one agent run and
one replacement per agent per cycle. The script first times whole runs (CPU time,
medians), then runs the job again with the engine's phases wrapped in timers and
prints each phase's *exclusive* CPU time per agent run, the timers' own cost
subtracted (calibrated on empty functions in the same process), as a share of the
wrapped run, applied to the unwrapped CPU time (the calibration is approximate: the
shares are the finding, not the last digit). Per-cycle work (gc, the trace's spill,
the fingerprint…) is divided by the agent runs, like everything else.

Phases:

* activation: deciding which agents run (``_Job._activations``)
* executor: the serial executor's loop and ``run_agent`` around the agent (runtime,
  output check, the effect object)
* agent code: the generated agent function itself
* effects check: the runner checking the executor's answer (``_Job._effects``)
* merge (split in a second run, scaled to the first run's merge total):
  merge loop: ``Merger.merge_cycle`` outside the keyed merge, with
  ``KeyedMerge.lane`` (a generator, which no timer wraps: the serial executor's
  columns are merged there, the fused updates' ``update_in_place`` aside);
  keyed decision: ``KeyedMerge.merge`` / ``_merge_one`` outside what they call;
  conflict record: the compact conflict event;
  fact added: ``KeyedMerge._add`` and the store's ``add`` / ``derive``;
  replacement: ``Retraction.replace``, ``Merger.retire``, the store's ``remove``, the
  cascade; store update in place: the fused add-and-remove of a keyed fact
* trace spill, gc, commit, fingerprint: per-cycle work
* runner rest: the cycle loop itself and everything not listed
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import converge_rules
from converge_rules.benchmarks import counters_baseline, counters_ruleset
from converge_rules.engine import run, validate_pairs

# CPU time of this thread: on a machine shared with other jobs, wall time counts
# their turns on the cores too. (A call costs ~0.7 µs; the timers are calibrated.)
_clock = time.thread_time


class Phases:
    """Exclusive time per label: a wrapped call's time minus its wrapped callees'."""

    def __init__(self) -> None:
        self.time: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        #: per label, how many wrapped calls its own calls made (their timers' cost
        #: lands in its exclusive time)
        self.children: dict[str, int] = {}
        self.stack: list[list[Any]] = []  # per open call: [start, children's time, label]

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        stack = self.stack
        times, calls, children = self.time, self.calls, self.children
        times.setdefault(label, 0.0)
        calls.setdefault(label, 0)
        children.setdefault(label, 0)

        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [_clock(), 0.0, label]
            stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                stack.pop()
                spent = _clock() - frame[0]
                times[label] += spent - frame[1]
                calls[label] += 1
                if stack:
                    parent = stack[-1]
                    parent[1] += spent
                    children[parent[2]] += 1
        return timed


def _loop(fn: Callable[[], None], n: int) -> Callable[[], None]:
    def calls() -> None:
        for _ in range(n):
            fn()
    return calls


def _calibrate() -> tuple[float, float]:
    """(what a wrapped empty call adds to its own label, what it adds to its
    wrapped caller's exclusive time), in seconds per call: the best of five."""
    best_self, best_parent = float("inf"), float("inf")
    n = 20_000
    for _ in range(5):
        p = Phases()
        p.wrap("outer", _loop(p.wrap("inner", lambda: None), n))()
        b = Phases()
        b.wrap("outer", _loop(lambda: None, n))()
        best_self = min(best_self, p.time["inner"] / n)
        best_parent = min(best_parent, (p.time["outer"] - b.time["outer"]) / n)
    return best_self, max(best_parent, 0.0)


def _job(agents: int, cycles: int) -> tuple[Any, Any, int]:
    ruleset = converge_rules.loads(counters_ruleset(agents, cycles), plugins=False)
    facts = validate_pairs(ruleset.program,
                           [("Count", {"id": f"c{i}", "n": 0}) for i in range(agents)])
    _, runs, _ = counters_baseline(agents, cycles)
    return ruleset, facts, runs


def whole_runs(agents: int, cycles: int, rounds: int) -> tuple[float, float]:
    """Median CPU and wall time per agent run of unwrapped runs."""
    ruleset, facts, runs = _job(agents, cycles)
    converge_rules.run(ruleset, facts)
    cpu, wall = [], []
    for _ in range(rounds):
        c, w = time.process_time(), time.perf_counter()
        converge_rules.run(ruleset, facts)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu) / runs, statistics.median(wall) / runs


def _wrapped_run(agents: int, cycles: int, p: Phases,
                 targets: list[tuple[Any, str, str]], agent_code: bool) -> int:
    """One run of the workload with ``targets`` ((owner, attribute, label)) and, with
    ``agent_code``, every agent function wrapped in ``p``'s timers (a warm-up run
    first, then the timers reset). Returns the agent runs."""
    import dataclasses

    from converge_rules.engine import runner

    ruleset, facts, runs = _job(agents, cycles)
    patches: list[tuple[Any, str, Any]] = []
    real_gc = runner.gc
    for owner, name, label in targets:
        if not hasattr(owner, name):
            continue  # (an older tree, measured for comparison)
        if owner is gc:
            runner.gc = type("gc", (), {  # type: ignore[assignment]
                "collect": staticmethod(p.wrap(label, gc.collect)),
                "get_count": staticmethod(gc.get_count)})
            continue
        original = getattr(owner, name)
        patches.append((owner, name, original))
        setattr(owner, name, p.wrap(label, original))
    program = ruleset.program
    if agent_code:
        program = dataclasses.replace(program, agents=tuple(
            dataclasses.replace(a, fn=p.wrap("agent code", a.fn)) for a in program.agents))
    try:
        run(program, facts)  # warm
        for label in p.time:
            p.time[label] = 0.0
            p.calls[label] = 0
            p.children[label] = 0
        p.wrap("runner rest", lambda: run(program, facts))()
    finally:
        runner.gc = real_gc  # type: ignore[assignment]
        for owner, name, original in reversed(patches):
            setattr(owner, name, original)
    return runs


def _corrected(p: Phases, own: float, parent: float) -> dict[str, float]:
    return {label: t - p.calls[label] * own - p.children[label] * parent
            for label, t in p.time.items()}


def breakdown(agents: int, cycles: int) -> tuple[dict[str, float], int, float]:
    """Exclusive seconds per phase (see the module docstring) for the workload, the
    agent runs, and their sum. Two wrapped runs: one with timers only around per-cycle
    calls (and the agent functions), exact to within their calibrated cost; one with
    timers inside the merge, whose split of the merge's time is scaled to the first
    run's merge total (a timer per call inflates cheap calls; the scaling keeps the
    total honest, the split is approximate)."""
    from converge_rules.engine import (
        executors,
        factstore,
        fingerprints,
        keyed,
        merge,
        retraction,
        runner,
        trace,
    )

    own, parent = _calibrate()
    coarse = Phases()
    runs = _wrapped_run(agents, cycles, coarse, [
        (runner._Job, "_activations", "activation"),
        (executors.SerialExecutor, "run_cycle", "executor"),
        (runner._Job, "_effects", "effects check"),
        (merge.Merger, "merge_cycle", "merge"),
        (trace.Trace, "spill", "trace spill"),
        (runner._Job, "_commit_cycle", "commit"),
        (runner._Job, "_invariants", "budgets/invariants"),
        (runner._Job, "_effect_budgets", "budgets/invariants"),
        (merge.Merger, "prune", "budgets/invariants"),
        (fingerprints.FingerprintIndex, "get", "fingerprint"),
        (fingerprints.FingerprintIndex, "add", "fingerprint"),
        (gc, "collect", "gc"),
    ], agent_code=True)
    out = _corrected(coarse, own, parent)
    fine = Phases()
    _wrapped_run(agents, cycles, fine, [
        (merge.Merger, "merge_cycle", "merge loop"),
        (keyed.KeyedMerge, "merge", "keyed decision"),
        (keyed.KeyedMerge, "_merge_one", "keyed decision"),
        (keyed.KeyedMerge, "merge_single", "keyed decision"),
        (factstore.FactStore, "update_in_place", "store update in place"),
        (keyed.KeyedMerge, "record_one", "conflict record"),
        (keyed.KeyedMerge, "_add", "fact added"),
        (factstore.FactStore, "add", "fact added"),
        (factstore.FactStore, "derive", "fact added"),
        (retraction.Retraction, "replace", "replacement"),
        (merge.Merger, "retire", "replacement"),
        (factstore.FactStore, "remove", "replacement"),
    ], agent_code=False)
    split = _corrected(fine, own, parent)
    split.pop("runner rest")
    merged = max(sum(split.values()), 1e-12)
    total_merge = out.pop("merge")
    for label, t in split.items():
        out["merge: " + label] = total_merge * max(t, 0.0) / merged
    return out, runs, sum(out.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile one run instead")
    args = ap.parse_args(argv)
    if args.profile:
        ruleset, facts, _ = _job(args.agents, args.cycles)
        converge_rules.run(ruleset, facts)
        prof = cProfile.Profile()
        prof.enable()
        converge_rules.run(ruleset, facts)
        prof.disable()
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(30)
        return 0
    cpu, wall = whole_runs(args.agents, args.cycles, args.rounds)
    print(f"{args.agents} agents x {args.cycles} cycles: {cpu * 1e6:.2f} µs CPU, "
          f"{wall * 1e6:.2f} µs wall per agent run (median of {args.rounds})")
    times, runs, total = breakdown(args.agents, args.cycles)
    # the timers' cost is only estimated: the shares are what the wrapped runs say,
    # the µs are those shares of the unwrapped CPU time
    print(f"wrapped runs: {total / runs * 1e6:.2f} µs per agent run, timers removed; "
          "below, each phase's share of it, applied to the unwrapped CPU time")
    print(f"\n{'phase':<30} {'µs/run':>7} {'share':>6}")
    for label, t in sorted(times.items(), key=lambda kv: -kv[1]):
        print(f"{label:<30} {t / total * cpu * 1e6:>7.2f} {t / total:>6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
