"""Run time with the SQLite job store against the same run without it (issue 13,
item 10, third row: target within 1.3x).

    python bench/store/bench_store.py [--quick] [--rounds N]

Two workloads, each run three ways in the same process, alternating, for ``--rounds``
rounds (median of each):

* ``counter``: one keyed counter updated in place for 5,000 cycles (``--quick``: 500)
  — the worst case for a store that commits once per cycle: every cycle is a few
  trace lines and one transaction;
* ``closure``: the transitive closure of a chain of 300 nodes (``--quick``: 100),
  ~45,000 paths in ~300 cycles — many lines per transaction.

Ways: ``none`` (no trace), ``jsonl`` (``--trace FILE``, the trace serialised and written
when the job ends) and ``sqlite`` (``--store run.db``, each cycle's lines serialised and
committed as the cycle ends; a new file per run). The ratios are ``sqlite / none`` (the
issue's target) and ``sqlite / jsonl`` (what the store costs over the trace file, whose
serialisation both pay). A second table times the serialisation alone, on the last
run's trace: through the pydantic models (the old way), straight from the event tuples,
and with the integrity chain's SHA-256 per line (what is written).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import converge_rules
from converge_rules import api
from converge_rules.store.sqlite import SqliteStore

COUNTER = """\
ruleset counter
root "count" {
  max_cycles = 1000000
}
fact Count { key id: str, n: int }
agent step { when Count(id, n) where n < LIMIT emit Count(id: id, n: n + 1) }
policy Count { resolve by latest }
"""

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


def workloads(quick: bool) -> dict[str, tuple[Any, list[tuple[str, dict[str, Any]]]]]:
    steps = 500 if quick else 5_000
    nodes = 100 if quick else 300
    counter = converge_rules.loads(COUNTER.replace("LIMIT", str(steps)), plugins=False)
    closure = converge_rules.loads(CLOSURE, plugins=False)
    return {
        f"counter ({steps:,} cycles)": (counter, [("Count", {"id": "a", "n": 0})]),
        f"closure (chain of {nodes})": (
            closure, [("Edge", {"a": i, "b": i + 1}) for i in range(nodes - 1)]),
    }


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10x smaller workloads")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args()
    print(f"{'workload':<26}{'cycles':>8}{'lines':>9}{'none s':>9}{'jsonl s':>9}"
          f"{'sqlite s':>10}{'sqlite/none':>12}{'sqlite/jsonl':>13}{'db bytes':>11}",
          flush=True)
    serialised: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ruleset, facts) in workloads(args.quick).items():
            pairs = facts
            times: dict[str, list[float]] = {"none": [], "jsonl": [], "sqlite": []}
            size = 0
            expected = None
            for i in range(args.rounds):
                db = Path(tmp) / f"run{i}.db"
                trace = Path(tmp) / f"trace{i}.jsonl"
                ways: dict[str, Callable[[], Any]] = {
                    "none": lambda r=ruleset, p=pairs: api.run(r, p, now=None),
                    "jsonl": lambda r=ruleset, p=pairs, t=trace: api.run(r, p, trace=t,
                                                                         now=None),
                    "sqlite": lambda r=ruleset, p=pairs, d=db: api.run(r, p, store=d,
                                                                       now=None),
                }
                order = list(ways) if i % 2 == 0 else list(reversed(ways))
                for way in order:
                    seconds, result = timed(ways[way])
                    times[way].append(seconds)
                    if way == "sqlite":
                        size = db.stat().st_size + (Path(f"{db}-wal").stat().st_size
                                                    if Path(f"{db}-wal").exists() else 0)
                        with SqliteStore(db) as store:
                            exported = "".join(f"{line}\n" for line in
                                               store.trace_lines(store.job(None).id))
                        expected = result.trace.to_jsonl()
                        assert exported == expected, "the store's trace differs"
                        cycles, lines = result.cycles, expected.count("\n")
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"{name:<26}{cycles:>8,}{lines:>9,}{med['none']:>9.3f}{med['jsonl']:>9.3f}"
                  f"{med['sqlite']:>10.3f}{med['sqlite'] / med['none']:>12.2f}"
                  f"{med['sqlite'] / med['jsonl']:>13.2f}{size:>11,}", flush=True)
            serialised[name] = serialisation(result, args.rounds)
    print(f"\n{'serialising the trace':<26}{'models s':>10}{'bare s':>9}{'chained s':>11}"
          f"{'models/bare':>12}{'chained/bare':>13}")
    for name, med in serialised.items():
        print(f"{name:<26}{med['models']:>10.3f}{med['bare']:>9.3f}{med['chained']:>11.3f}"
              f"{med['models'] / med['bare']:>12.2f}{med['chained'] / med['bare']:>13.2f}")


def serialisation(result: Any, rounds: int) -> dict[str, float]:
    """Medians of writing ``result``'s trace lines three ways, alternating: through a
    pydantic model per event (``model_lines``, the old way), straight from the tuples
    (``bare_lines``), and with the integrity chain's hash appended (``lines``, what
    ``--trace`` and ``--store`` write)."""
    trace = result.trace
    ways: dict[str, Callable[[], Any]] = {
        "models": lambda: sum(1 for _ in trace.model_lines()),
        "bare": lambda: sum(1 for _ in trace.bare_lines()),
        "chained": lambda: sum(1 for _ in trace.lines()),
    }
    times: dict[str, list[float]] = {way: [] for way in ways}
    for i in range(rounds):
        for way in (list(ways) if i % 2 == 0 else list(reversed(ways))):
            times[way].append(timed(ways[way])[0])
    return {way: statistics.median(v) for way, v in times.items()}


if __name__ == "__main__":
    main()
