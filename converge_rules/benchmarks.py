"""Benchmark workloads shared by ``converge bench`` and the scripts in ``bench/``.

Each workload comes with the baseline it is measured against in the same run: for the
transitive closure, a hand-written pure-Python semi-naive evaluation with dict indexes
(what a careful programmer writes for this one query, with no provenance, trace,
policies or budgets — the ceiling for pure Python); for parsing, a generated ruleset
of realistic shape; for start-up, whole ``converge`` processes against fixed targets
(editors and pre-commit hooks start one on every save).
"""

from __future__ import annotations

import gc
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CLOSURE_RULESET = '''ruleset closure "Transitive closure of a directed graph"

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


def closure_baseline(edges: list[tuple[int, int]]) -> set[tuple[int, int]]:
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
    """The edges of a chain of ``n + 1`` nodes: ``n * (n + 1) / 2`` paths."""
    return [(i, i + 1) for i in range(n)]


def random_graph(nodes: int, edges: int, seed: int = 7) -> list[tuple[int, int]]:
    """``edges`` distinct random edges between ``nodes`` nodes, no self-loops, sorted."""
    rng = random.Random(seed)
    out: set[tuple[int, int]] = set()
    while len(out) < edges:
        a, b = rng.randrange(nodes), rng.randrange(nodes)
        if a != b:
            out.add((a, b))
    return sorted(out)


def generated_ruleset(lines: int) -> str:
    """A valid ruleset of about ``lines`` lines: fact types, agents with joins, guards
    and negation, and policies, in the proportions of a real ruleset."""
    out = ['ruleset generated "A generated ruleset for benchmarks"', ""]
    out.append("enum Level { low, mid, high }")
    out.append("")
    i = 0
    while len(out) < lines:
        out += [
            f"fact Item{i} {{ key id: str, amount: float, level: Level = low }}",
            f"fact Score{i} {{ key id: str, value: float }}",
            f"fact Flag{i} {{ id: str, note: str }}",
            f"fact Hold{i} {{ id: str }}",
            "",
            f"agent score{i} tier 1 {{",
            f"  when Item{i}(id, amount) and Item{i}(id: other, amount: more)",
            "  where more > amount * 1.5 and id != other",
            f"  emit Score{i}(id: id, value: round(more - amount, 2)) confidence 0.7",
            "}",
            "",
            f"agent flag{i} tier 2 {{",
            f"  when s: Score{i}(id, value) and not Hold{i}(id)",
            "  where value > 10 or (value < 0 and len(id) > 3)",
            f"  emit Flag{i}(id: id, note: if value > 100 then \"big\" else \"small\")",
            "  evaluate s score 0.5 reason \"flagged\"",
            "}",
            "",
            f"policy Score{i} {{",
            "  resolve by highest confidence, then highest value",
            "  on tie first",
            "}",
            "",
        ]
        i += 1
    return "\n".join(out) + "\n"


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """The best wall time of ``repeat`` calls of ``fn`` (after a collection), and the
    value of the last call."""
    best = float("inf")
    value: Any = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


STARTUP_COMMANDS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("converge --version", ("--version",), 0.15),
    ("converge check RULESET", ("check", "{ruleset}"), 0.4),
    ("converge check --no-plugins RULESET", ("check", "--no-plugins", "{ruleset}"), 0.4),
)
"""The start-up workloads: a label, the arguments (``{ruleset}`` stands for the
ruleset's path) and the target in seconds for one whole process."""


def startup_times(ruleset: Path, runs: int,
                  commands: Sequence[tuple[str, tuple[str, ...], float]] = STARTUP_COMMANDS,
                  ) -> list[dict[str, Any]]:
    """Wall time of whole ``converge`` processes (``python -m converge_rules.cli``, with
    this interpreter and environment): for each command, ``runs`` timed runs after one
    untimed warm-up (which also fills the parser cache), their best and median, and
    whether the median is within the command's target. Also the median CPU time (user +
    system) of a process where the OS tells it (else None): on a machine shared with
    other work it moves much less than wall time. Measures, never asserts."""
    rows: list[dict[str, Any]] = []
    for label, args, target in commands:
        argv = [sys.executable, "-m", "converge_rules.cli",
                *(a.format(ruleset=ruleset) for a in args)]
        subprocess.run(argv, capture_output=True, check=False)  # warm-up
        times: list[float] = []
        cpu: list[float] = []
        exit_code = 0
        for _ in range(runs):
            cpu_before = _children_cpu()
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, check=False)
            times.append(time.perf_counter() - start)
            cpu_after = _children_cpu()
            if cpu_before is not None and cpu_after is not None:
                cpu.append(cpu_after - cpu_before)
            exit_code = done.returncode
        median = statistics.median(times)
        rows.append({"command": label, "runs": runs, "best_s": round(min(times), 4),
                     "median_s": round(median, 4),
                     "median_cpu_s": round(statistics.median(cpu), 4) if cpu else None,
                     "target_s": target, "met": median <= target, "exit_code": exit_code})
    return rows


def _children_cpu() -> float | None:
    """User + system seconds used by the finished child processes, or None where the
    ``resource`` module is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
