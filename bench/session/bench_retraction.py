"""The cost of retraction in a Session: delete-and-rederive (DRed, what the engine does)
against counting derivations only (what it did before; wrong when facts support each
other through a cycle), and against one run from scratch over what remains (issue 13
item 4).

    python bench/session/bench_retraction.py [--quick] [--rounds N]

A session holds the transitive closure of a graph, then retracts its edges one by one,
running after each retraction (the retraction-heavy case). Three graphs:

* ``ladder``: a DAG where every path has many derivations (node i links to i+1 and
  i+2): each retraction touches many paths that keep a derivation, so DRed checks them
  all, and finds none to drop;
* ``ring``: a cycle of nodes, each with a self-loop, so every path also supports itself
  (``Path(a, b) + Edge(b, b)``): each retraction must drop many paths, which counting
  keeps (the wrong answer: ``facts equal`` False);
* ``chain``: a path graph, one derivation per path: counting alone is exact, and DRed
  adds nothing to check (its overhead is a dict of touched facts, left empty).

Ways, alternating in the same process, medians over ``--rounds``: ``dred`` (the
engine), ``dred-all`` (the engine without its proof search: every fact downstream of a
touched one is a suspect), ``count`` (the re-derivation step switched off: the old
behaviour), ``scratch``
(a new ``run`` over the remaining edges after each retraction). The times are of the
retraction runs only (the first closure is built outside the clock; the garbage of the
previous way is collected before each). ``facts equal``
says whether the way ends with the facts one run over the remaining edges gives.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import converge_rules
from converge_rules import Session
from converge_rules.engine import retraction
from converge_rules.engine.retraction import Retraction

NOW = datetime(2026, 1, 1, tzinfo=UTC)

CLOSURE = """\
ruleset closure
root "closure" {
  max_cycles = 100000
  max_facts = 10000000
}
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
agent base { when Edge(a, b) emit Path(a: a, b: b) }
agent step { when Path(a, b) and Edge(a: b, b: c) emit Path(a: a, b: c) }
"""

Edge = tuple[int, int]


def graphs(quick: bool) -> dict[str, tuple[list[Edge], list[Edge]]]:
    """name → (edges, the edges retracted one by one, in order)."""
    n = 40 if quick else 90
    ladder = [(i, i + 1) for i in range(n)] + [(i, i + 2) for i in range(n - 1)]
    ring_n = 30 if quick else 60
    ring = [(i, (i + 1) % ring_n) for i in range(ring_n)] + [(i, i) for i in range(ring_n)]
    chain = [(i, i + 1) for i in range(n)]
    k = 5 if quick else 10
    return {
        "ladder": (ladder, [(i, i + 2) for i in range(0, 2 * k, 2)]),
        "ring": (ring, [(i, i + 1) for i in range(0, 3 * k, 3)]),
        "chain": (chain, chain[-k:][::-1]),
    }


@contextmanager
def counting_only() -> Iterator[None]:
    """The engine's retraction before DRed: the re-derivation step does nothing."""
    settle = Retraction._settle

    def skip(self: Retraction, cycle: int, protect: int | None) -> None:
        self._touched = {}

    Retraction._settle = skip  # type: ignore[method-assign]
    try:
        yield
    finally:
        Retraction._settle = settle  # type: ignore[method-assign]


@contextmanager
def no_proof_search() -> Iterator[None]:
    """DRed as first written: every fact downstream of a touched one is a suspect."""
    holds = retraction._Proofs.holds

    def never(self: Any, fid: int) -> bool:
        return False

    retraction._Proofs.holds = never  # type: ignore[method-assign]
    try:
        yield
    finally:
        retraction._Proofs.holds = holds  # type: ignore[method-assign]


def facts(edges: list[Edge]) -> list[tuple[str, dict[str, Any]]]:
    return [("Edge", {"a": a, "b": b}) for a, b in edges]


def paths(result: converge_rules.RunResult) -> list[dict[str, Any]]:
    return result.facts("Path")


def session_way(rules: converge_rules.Ruleset, edges: list[Edge],
                gone: list[Edge]) -> tuple[float, list[dict[str, Any]]]:
    with Session(rules, facts(edges), now=NOW) as session:
        assert session.run().status == "converged"
        start = time.perf_counter()
        for a, b in gone:
            session.retract(("Edge", {"a": a, "b": b}))
            result = session.run()
        took = time.perf_counter() - start
        return took, paths(result)


def scratch_way(rules: converge_rules.Ruleset, edges: list[Edge],
                gone: list[Edge]) -> tuple[float, list[dict[str, Any]]]:
    left = list(edges)
    start = time.perf_counter()
    for edge in gone:
        left.remove(edge)
        result = converge_rules.run(rules, facts(left), now=NOW)
    return time.perf_counter() - start, paths(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rules = converge_rules.loads(CLOSURE, plugins=False)
    print(f"{'graph':8} {'paths':>6} {'way':8} {'median s':>9} {'per retraction ms':>18} "
          f"{'/ count':>8} {'facts equal':>12}")
    for name, (edges, gone) in graphs(args.quick).items():
        left = [e for e in edges if e not in gone]
        truth = paths(converge_rules.run(rules, facts(left), now=NOW))
        total = len(paths(converge_rules.run(rules, facts(edges), now=NOW)))
        times: dict[str, list[float]] = {"dred": [], "dred-all": [], "count": [],
                                         "scratch": []}
        ends: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.rounds):
            for way in times:  # alternating, so load drifts hit every way alike
                gc.collect()  # the last way's garbage is not this one's to collect
                if way == "dred":
                    took, end = session_way(rules, edges, gone)
                elif way == "dred-all":
                    with no_proof_search():
                        took, end = session_way(rules, edges, gone)
                elif way == "count":
                    with counting_only():
                        took, end = session_way(rules, edges, gone)
                else:
                    took, end = scratch_way(rules, edges, gone)
                times[way].append(took)
                ends[way] = end
        med = {way: statistics.median(v) for way, v in times.items()}
        for way, m in med.items():
            print(f"{name:8} {total:>6} {way:8} {m:>9.4f} {1000 * m / len(gone):>18.2f} "
                  f"{m / med['count']:>8.2f} {ends[way] == truth!s:>12}")


if __name__ == "__main__":
    main()
