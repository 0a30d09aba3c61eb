"""Executors (issue 12 item 6), each workload against its ideal or baseline in one run.

    python bench/executors/bench_executors.py [--quick] [--rounds N] [--json FILE]

1. **I/O-bound.** ``io_ruleset`` (``converge_rules/benchmarks.py``): 64 agents per
   cycle, each calling a tool that waits 50 ms, 10 cycles; ideal 10 x 50 ms = 0.5 s.
   ``threads`` (a sync tool: ``time.sleep``) and ``asyncio`` (an async tool:
   ``asyncio.sleep``), target within 1.3x of the ideal; then 1,000 agents per cycle
   on ``asyncio``, target within 1.5x. Executors alternate, medians.
2. **LangGraph** (only where ``langgraph`` is installed: ``pip install langgraph``;
   not a dependency of converge): the same workload as a graph whose superstep runs
   64 parallel async nodes, each awaiting 50 ms, joined by a node that loops 10
   times; its time over the same ideal, printed beside converge's (no target).
3. **CPU-bound.** ``join_ruleset``: 8 agents, each joining 4,000 ``A`` with 4,000
   ``B`` facts on 40 keys (400,000 join results per agent, 1 in 64 kept);
   ``processes`` with 2 workers against ``serial`` (target: at least 1.6x faster on 2
   cores). The cores this process may use and the load average are printed: on a
   machine shared with other work the speedup is what the others left. CPU times
   follow (what the load cannot take away): serial's, the processes job's parent's
   (with the agents it runs itself: "2 workers" are the engine's process and one
   forked worker when the agents call no tools and the job has no deadlines), its
   busiest forked worker's and all of them; the critical path's speedup (serial CPU
   over the parent's CPU outside its agents + the longer of its agents' and the
   busiest worker's) and the work ratio (parent + all workers over serial).

Numbers are wall-clock times on this machine; the ratios are what to compare.
"""

import argparse
import asyncio
import json
import operator
import statistics
import sys
import time
from typing import Annotated, Any, TypedDict

from converge_rules.benchmarks import IO_LATENCY, measure_cpu, measure_io


class GraphState(TypedDict):
    n: int
    done: Annotated[list[int], operator.add]


def langgraph_io(agents: int, cycles: int, latency: float) -> float | None:
    """Seconds of one ``ainvoke`` of the LangGraph version of the I/O workload, or None
    when langgraph is not installed."""
    try:
        from langgraph.graph import END, START, StateGraph
    except ImportError:
        return None

    def node(i: int):
        async def call(state: GraphState) -> dict:
            await asyncio.sleep(latency)
            return {"done": [i]}
        return call

    def tick(state: GraphState) -> dict:
        return {"n": state["n"] + 1}

    names = [f"call{i}" for i in range(agents)]

    def again(state: GraphState):
        return names if state["n"] < cycles else END

    graph = StateGraph(GraphState)
    graph.add_node("tick", tick)
    for i, name in enumerate(names):
        graph.add_node(name, node(i))
        graph.add_edge(START, name)
    graph.add_edge(names, "tick")  # tick waits for every node of the superstep
    graph.add_conditional_edges("tick", again, [*names, END])
    app = graph.compile()
    start = time.perf_counter()
    state = asyncio.run(app.ainvoke({"n": 0, "done": []},
                                    {"recursion_limit": 4 * cycles + 10}))
    elapsed = time.perf_counter() - start
    assert len(state["done"]) == agents * cycles, len(state["done"])
    assert state["n"] == cycles
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    agents, wide, cycles = (16, 100, 3) if args.quick else (64, 1_000, 10)
    rounds = 1 if args.quick else args.rounds
    latency = IO_LATENCY
    rows: list[dict[str, Any]] = measure_io(agents, wide, cycles, rounds, latency)
    ideal = cycles * latency
    print(f"{'I/O-bound':<44} {'ideal s':>8} {'median s':>9} {'ratio':>6} {'target':>7}")
    for r in rows:
        print(f"{r['workload']:<44} {r['ideal_s']:>8.3f} {r['engine_s']:>9.3f} "
              f"{r['ratio']:>5.2f}x {r['target']:>6g}x  {'met' if r['met'] else 'NOT met'}"
              f"{'' if r['agree'] else '  (ANSWERS DIFFER)'}")
    graph = [langgraph_io(agents, cycles, latency) for _ in range(rounds)]
    if all(t is not None for t in graph):
        median = statistics.median(t for t in graph if t is not None)
        row = {"workload": f"{agents} agents x {cycles} cycles, LangGraph superstep",
               "ideal_s": ideal, "engine_s": round(median, 4),
               "ratio": round(median / ideal, 3)}
        rows.append(row)
        print(f"{row['workload']:<44} {ideal:>8.3f} {median:>9.3f} "
              f"{median / ideal:>5.2f}x  (no target)")
    else:
        print("LangGraph: not installed (pip install langgraph), not measured")
    cpu = (measure_cpu(agents=4, rows=400, keys=20, rounds=1) if args.quick
           else measure_cpu(rounds=max(3, rounds)))
    rows.append(cpu)
    print(f"\n{cpu['workload']}")
    print(f"  serial {cpu['serial_s']:.3f} s, processes {cpu['processes_s']:.3f} s: "
          f"{cpu['speedup']:.2f}x faster (target >= {cpu['target']:g}x: "
          f"{'met' if cpu['met'] else 'NOT met'}); {cpu['cores']} cores, load average "
          f"{cpu['load']}{'' if cpu['agree'] else '  (ANSWERS DIFFER)'}")
    print(f"  CPU: serial {cpu['serial_cpu_s']:.3f} s; processes: parent {cpu['parent_cpu_s']:.3f} "
          f"s (its agents {cpu['parent_agents_cpu_s']:.3f} s), busiest forked worker "
          f"{cpu['worker_cpu_max_s']:.3f} s, all forked workers "
          f"{cpu['worker_cpu_sum_s']:.3f} s: critical path {cpu['critical_speedup']:.2f}x "
          f"faster than serial (a core per process), work {cpu['work_ratio']:.2f}x serial's")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=2)
    return 0 if all(r.get("agree", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
