"""Where ``processes`` loses time against ``serial`` (issue 12 item 6), in CPU time.

    python bench/executors/profile_processes.py [--rounds N] [--workers N]

Two join workloads, each ``serial`` against ``processes``, alternating, medians:

* **equal**: ``join_ruleset(8)`` on ``join_facts(4000, 40)`` (what ``measure_cpu`` and
  ``converge bench`` run): 8 agents of the same work.
* **uneven**: one agent joining 4,000 ``A`` with 4,000 ``B`` facts, seven joining
  700 ``S`` with the same ``B``: the first is ~45 % of the work. A fixed split gives
  the heavy agent's worker three light ones too; asked-for work leaves it one.

For each: serial's wall and CPU time; the processes job's wall time, its parent's CPU
(run, replica, forks, unpickling, merge, and the agents it runs itself: ``ProcessExecutor.
local_cpu``; with 2 workers the parent and one forked worker run agents when the job
has no deadlines and its agents call no tools) and each forked worker's
(``ProcessExecutor.worker_cpu``); the critical path's speedup (serial CPU / (the
parent's CPU outside its agents + the longer of its agents' and the busiest worker's):
what a core for each process would give) and the work ratio ((parent + all workers) /
serial CPU: 1.0 is no overhead). On a shared machine the wall-clock speedup is what
the others left; the CPU columns are what to compare.
"""

import argparse
import gc
import os
import random
import statistics
import sys
import time
from typing import Any

import converge_rules
from converge_rules.benchmarks import join_facts, join_ruleset
from converge_rules.engine import validate_pairs
from converge_rules.engine.processes import ProcessExecutor


def uneven_ruleset() -> str:
    out = ['ruleset uneven "One heavy join agent, seven light ones"',
           'root "joined" { max_facts = 10_000_000 }',
           "fact A { x: int, y: int }", "fact S { x: int, y: int }",
           "fact B { y: int, z: int }", "fact C { agent: int, x: int, z: int }",
           "agent heavy {", "  when A(x, y) and B(y, z)", "  where (x * 7 + z) % 64 == 0",
           "  emit C(agent: 0, x: x, z: z)", "}"]
    for i in range(1, 8):
        out += [f"agent light{i} {{", "  when S(x, y) and B(y, z)",
                f"  where (x * 7 + z) % 64 == {i}", f"  emit C(agent: {i}, x: x, z: z)", "}"]
    return "\n".join(out) + "\n"


def uneven_facts(seed: int = 5) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    return ([("A", {"x": i, "y": rng.randrange(40)}) for i in range(4_000)]
            + [("S", {"x": i, "y": rng.randrange(40)}) for i in range(700)]
            + [("B", {"y": rng.randrange(40), "z": i}) for i in range(4_000)])


def measure(name: str, source: str, pairs: list[tuple[str, dict[str, Any]]], rounds: int,
            workers: int) -> None:
    ruleset = converge_rules.loads(source, plugins=False)
    facts = validate_pairs(ruleset.program, pairs)
    rows: dict[str, list[tuple[float, ...]]] = {"serial": [], "processes": []}
    for n in range(rounds):
        for arm in ("serial", "processes") if n % 2 == 0 else ("processes", "serial"):
            executor = ProcessExecutor(workers) if arm == "processes" else None
            gc.collect()
            cpu, wall = time.process_time(), time.perf_counter()
            result = converge_rules.run(ruleset, facts, executor=executor)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert result.status == "converged", result.status
            busy = executor.worker_cpu if executor is not None else [0.0]
            local = executor.local_cpu if executor is not None else 0.0
            rows[arm].append((wall, cpu, max(busy, default=0.0), sum(busy), local))

    def med(arm: str, i: int) -> float:
        return statistics.median(r[i] for r in rows[arm])

    pairs_ = list(zip(rows["serial"], rows["processes"], strict=True))
    critical = statistics.median(s[1] / (p[1] - p[4] + max(p[4], p[2])) for s, p in pairs_)
    work = statistics.median((p[1] + p[3]) / s[1] for s, p in pairs_)
    wall = statistics.median(s[0] / p[0] for s, p in pairs_)
    print(f"{name}: serial {med('serial', 0):.3f} s wall, {med('serial', 1):.3f} s CPU | "
          f"processes ({workers}) {med('processes', 0):.3f} s wall, parent "
          f"{med('processes', 1):.3f} s CPU (its agents {med('processes', 4):.3f} s), "
          f"busiest worker {med('processes', 2):.3f} s, "
          f"all workers {med('processes', 3):.3f} s")
    print(f"  speedup: wall {wall:.2f}x, critical path {critical:.2f}x; work ratio "
          f"{work:.2f} (load average {os.getloadavg()[0]:.1f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    measure("equal (8 join agents)", join_ruleset(8), join_facts(4_000, 40), args.rounds,
            args.workers)
    measure("uneven (1 heavy, 7 light)", uneven_ruleset(), uneven_facts(), args.rounds,
            args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
