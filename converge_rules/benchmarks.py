"""Benchmark workloads shared by ``converge bench`` and the scripts in ``bench/``.

Each workload comes with the baseline it is measured against in the same run: for the
transitive closure, a hand-written pure-Python semi-naive evaluation with dict indexes
(what a careful programmer writes for this one query, with no provenance, trace,
policies or budgets — the ceiling for pure Python); for parsing and checking, a
generated ruleset of realistic shape, and two shapes that once made the checker
quadratic (many agents emitting one type; many references to unknown types).
"""

from __future__ import annotations

import gc
import random
import time
from collections import defaultdict
from collections.abc import Callable
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


def agents_ruleset(agents: int) -> str:
    """A valid ruleset in which ``agents`` agents (four lines each) all emit one keyed
    type, resolved by one policy: the shape that made the checker quadratic when it
    listed each type's producers with ``agent not in list``."""
    out = ['ruleset agents "Many agents emitting one type"', "",
           "fact Cost { key sku: str, amount: float }",
           "fact Price { key sku: str, amount: float }",
           "policy Price { resolve by highest confidence, then lowest amount }", ""]
    for i in range(agents):
        out += [f"agent price{i} {{", "  when Cost(sku, amount)",
                f"  emit Price(sku: sku, amount: amount * {1 + i % 7}) confidence 0.5", "}"]
    return "\n".join(out) + "\n"


def unknown_types_ruleset(unknown: int) -> str:
    """A ruleset that declares ``unknown`` fact types and emits ``unknown`` misspelt ones
    (``Itme12`` for ``Item12``), one per agent: every emit is a CVG101 error whose "did
    you mean" is looked for among all the declared types."""
    out = ['ruleset unknown "References to unknown types"', "",
           "fact Cost { key sku: str, amount: float }", ""]
    out += [f"fact Item{i} {{ key sku: str, amount: float }}" for i in range(unknown)]
    for i in range(unknown):
        out += ["", f"agent item{i} {{", "  when Cost(sku, amount)",
                f"  emit Itme{i}(sku: sku, amount: amount)", "}"]
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
