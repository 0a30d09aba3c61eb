"""Engine overheads, each against a plain-Python baseline measured in the same run.

    python bench/engine/bench_engine.py [--quick]

1. **Cycles per second.** ``Count(id, n)`` updated in place (``resolve by latest``)
   from 0 to N: one agent run, one conflict and one replacement per cycle. Baseline: a
   hand-written cycle loop with the same semantics (a dict keyed by ``id``, the delta of
   the last cycle, the rule as a Python function, latest-wins merge).
2. **Facts merged per second.** A one-agent ruleset that emits one derived fact per
   input fact, on 100k inputs (validated beforehand; validation is timed apart).
   Baseline: a set comprehension building the same derived tuples.
3. **Bytes per fact.** 1M input facts ``Cost(sku: str, amount: float)`` held by a
   finished job, measured with tracemalloc (target: under 200 B). Baseline: a set of
   the same tuples (strings interned). Both count everything allocated from generating
   the facts on, and keep only what the result (or the set) holds.
4. **Negation under prune** (issue 11, item 4). ``Item(id) and not Block(id)`` over
   20,000 items and 20,000 blocks pruned over 30 cycles (``Block.until``), a ticking
   agent keeping the cycles going. Baseline: the same program run the way the engine
   ran it before, from scratch (``since=0``) after every removal of a negated type
   (``AgentSpec.unblocks`` emptied). Both must give the same facts; the script prints
   both times and how many matches each derived.

5. **Many agents, routed by constants.** 200 agents, each matching
   ``Reading(kind: <its constant>)``, on 10,000 readings (10,200 facts at the end).
   Baseline: a hand loop routing each reading by its kind (a dict) to its agent's rule
   function and merging the derived facts into a set (target: within 3x).
6. **Many agents, each updating its own keyed counter** in place (``resolve by
   latest``) for 100 cycles: time per agent run (target: 5 µs). Baseline: a hand
   cycle loop running each changed counter's rule and merging latest-wins.

Numbers are wall-clock times on this machine; the ratios are what to compare. Rows 5
and 6 alternate engine and baseline runs and report medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import converge_rules
from converge_rules.engine import run, validate_pairs
from converge_rules.engine.trace import EffectMerged

COUNTER = """ruleset counter
root "count to the end" {{ max_cycles = {cycles} }}
fact Count {{ key id: str, n: int }}
agent step {{
  when Count(id, n) where n < {limit}
  emit Count(id: id, n: n + 1)
}}
policy Count {{ resolve by latest }}
"""

ONE_TO_ONE = """ruleset one_to_one
fact Cost  { sku: str, amount: float }
fact Price { sku: str, amount: float }
agent markup {
  when Cost(sku, amount)
  emit Price(sku: sku, amount: amount * 1.2)
}
"""

STORE_ONLY = """ruleset store_only
fact Cost { sku: str, amount: float }
"""

UNBLOCK = """ruleset unblock
root "prune cycles" {{ max_cycles = {cycles} }}
fact Item  {{ id: int }}
fact Block {{ id: int, until: int }}
fact Open  {{ id: int }}
fact Tick  {{ key of: str = "t", n: int }}
policy Tick {{ resolve by latest }}
prune Block when age >= until
agent tick {{
  when Tick(n) where n < {prunes}
  emit Tick(n: n + 1)
}}
agent open {{
  when Item(id) and not Block(id)
  emit Open(id: id)
}}
"""


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall-clock time of ``repeat`` runs, and the last value."""
    best = float("inf")
    value: Any = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def row(name: str, base: float, engine: float, unit: str, higher_is_better: bool) -> None:
    ratio = base / engine if higher_is_better else engine / base
    print(f"  {name:<34} baseline {base:>14,.0f} {unit:<10} engine {engine:>12,.0f} "
          f"{unit:<10} ratio {ratio:>6.1f}x")


# ------------------------------------------------------------------- 1. cycles


def baseline_counter(limit: int) -> tuple[int, int]:
    """A minimal cycle loop: run the rule on last cycle's delta, merge latest-wins."""
    context: dict[str, int] = {"a": 0}
    delta = [("a", 0)]
    cycles = 0
    while delta:
        cycles += 1
        proposed = [(i, n + 1) for i, n in delta if n < limit]   # the agent
        delta = []
        for i, n in proposed:                                      # the merge
            if context.get(i) != n:
                context[i] = n                                     # latest wins
                delta.append((i, n))
    return cycles, context["a"]


def bench_cycles(limit: int) -> None:
    ruleset = converge_rules.loads(COUNTER.format(cycles=limit + 10, limit=limit),
                                   plugins=False)
    facts = validate_pairs(ruleset.program, [("Count", {"id": "a", "n": 0})])
    t_base, (base_cycles, n) = timed(lambda: baseline_counter(limit), repeat=3)
    t_engine, result = timed(lambda: converge_rules.run(ruleset, facts), repeat=3)
    assert result.status == "converged", result
    assert result.facts("Count") == [{"id": "a", "n": limit}] and n == limit
    assert result.cycles == base_cycles, (result.cycles, base_cycles)
    print(f"cycles: counter to {limit:,} ({result.cycles:,} cycles)")
    row("cycles per second", base_cycles / t_base, result.cycles / t_engine, "cycles/s",
        True)
    print(f"  engine: {t_engine / result.cycles * 1e6:.1f} µs per cycle")


# ------------------------------------------------------------------ 2. merges


def bench_merge(n: int) -> None:
    ruleset = converge_rules.loads(ONE_TO_ONE, plugins=False)
    pairs = [("Cost", {"sku": f"S{i:07d}", "amount": float(i % 997)}) for i in range(n)]
    t_valid, facts = timed(lambda: validate_pairs(ruleset.program, pairs))
    t_engine, result = timed(lambda: converge_rules.run(ruleset, facts), repeat=3)
    assert result.status == "converged"
    derived = len(result.fact_ids("Price"))
    source = [(f"S{i:07d}", float(i % 997)) for i in range(n)]
    t_base, prices = timed(lambda: {(s, a * 1.2) for s, a in source}, repeat=3)
    assert derived == len(prices) == n
    print(f"merge: one derived fact per input fact, {n:,} inputs")
    row("derived facts per second", n / t_base, n / t_engine, "facts/s", True)
    print(f"  engine run {t_engine:.3f} s ({t_engine / n * 1e6:.2f} µs per derived fact, "
          f"agent + merge + trace); input validation {t_valid:.3f} s "
          f"({n / t_valid:,.0f} facts/s)")


# ------------------------------------------------------------------ 3. memory


def _facts(n: int) -> list[tuple[str, dict[str, Any]]]:
    return [("Cost", {"sku": f"S{i:07d}", "amount": i * 0.5}) for i in range(n)]


def engine_memory(n: int) -> tuple[int, int, Any]:
    ruleset = converge_rules.loads(STORE_ONLY, plugins=False)
    gc.collect()
    tracemalloc.start()
    pairs = _facts(n)
    inputs = validate_pairs(ruleset.program, pairs)
    del pairs
    result = converge_rules.run(ruleset, inputs)
    del inputs
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return current, peak, result


def baseline_memory(n: int) -> tuple[int, int, Any]:
    gc.collect()
    tracemalloc.start()
    pairs = _facts(n)
    held = {(sys.intern(f["sku"]), f["amount"]) for _, f in pairs}
    del pairs
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return current, peak, held


def bench_memory(n: int) -> None:
    e_current, e_peak, result = engine_memory(n)
    assert len(result.fact_ids("Cost")) == n
    del result
    b_current, b_peak, held = baseline_memory(n)
    assert len(held) == n
    del held
    print(f"memory: {n:,} input facts Cost(sku: str, amount: float) held by the result")
    row("bytes per fact (retained)", b_current / n, e_current / n, "B", False)
    row("bytes per fact (peak while loading)", b_peak / n, e_peak / n, "B", False)
    verdict = "under" if e_current / n < 200 else "OVER"
    print(f"  engine retains {e_current / n:.0f} B per fact: {verdict} the 200 B target")


# ------------------------------------------------------- 4. negation under prune


def derived(result: Any, agent: str) -> int:
    """How many outputs of ``agent`` the merge took (new facts and derivations again)."""
    return sum(e.outputs for e in result.trace.events_of(EffectMerged) if e.agent == agent)


def bench_unblock(n: int, prunes: int) -> None:
    ruleset = converge_rules.loads(UNBLOCK.format(cycles=prunes + 10, prunes=prunes),
                                   plugins=False)
    program = ruleset.program
    scratch = dataclasses.replace(program, agents=tuple(
        dataclasses.replace(a, unblocks=()) for a in program.agents))
    pairs: list[tuple[str, dict[str, Any]]] = [("Tick", {"n": 0})]
    pairs += [("Item", {"id": i}) for i in range(n)]
    pairs += [("Block", {"id": i, "until": 1 + i % prunes}) for i in range(n)]
    facts = validate_pairs(program, pairs)
    t_new = t_old = float("inf")
    for _ in range(3):  # alternate, so that a busy machine weighs on both alike
        t, new = timed(lambda: run(program, facts, now=None))
        t_new = min(t_new, t)
        t, old = timed(lambda: run(scratch, facts, now=None))
        t_old = min(t_old, t)
    assert new.status == old.status == "converged"
    assert new.facts("Open") == old.facts("Open") and len(new.fact_ids("Open")) == n
    print(f"negation: Item(id) and not Block(id), {n:,} items, {n:,} blocks pruned over "
          f"{prunes} cycles")
    print(f"  from scratch after each removal {t_old:>8.3f} s  ({derived(old, 'open'):,} "
          f"matches derived)")
    print(f"  incremental                     {t_new:>8.3f} s  ({derived(new, 'open'):,} "
          f"matches derived)")
    print(f"  ratio incremental / from scratch {t_new / t_old:.2f}x")


# ------------------------------------------------------------- 5, 6. agents


def bench_agents(quick: bool) -> None:
    from converge_rules.benchmarks import measure_agents

    rows = (measure_agents(agents=20, readings=1_000, cycles=10, rounds=3) if quick
            else measure_agents(rounds=7))
    for r in rows:
        assert r["agree"], f"the engine and the hand loop disagree: {r['workload']}"
        per = r.get("per")
        unit, scale = ("µs/" + per, 1e6) if per else ("ms", 1e3)
        target = (f"target {r['target']}x" if "target" in r
                  else f"target {r['target_engine_s'] * scale:g} {unit}")
        print(f"agents: {r['workload']}")
        print(f"  baseline {r['baseline_s'] * scale:10.3f} {unit:<14} engine "
              f"{r['engine_s'] * scale:10.3f} {unit:<14} ratio {r['ratio']:>6.1f}x  "
              f"{target}: {'met' if r['met'] else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    bench_cycles(10_000 // scale)
    bench_merge(100_000 // scale)
    bench_memory(1_000_000 // scale)
    bench_unblock(20_000 // scale, 30)
    bench_agents(args.quick)


if __name__ == "__main__":
    main()
