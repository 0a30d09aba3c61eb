"""Where the job store's time goes (issue 13, item 10): the same job run with no trace
and with ``--store``, the second instrumented.

    python bench/store/breakdown.py [--quick] [--rounds N]

For each workload of ``bench_store.py`` (and the larger rows), medians over ``--rounds``
alternating runs of:

* ``none``: the run without a trace;
* ``store``: the run with ``--store`` (a new file each run), split into
  ``open`` (creating the file, PRAGMAs, migrations, the job's row: the fixed cost),
  ``engine`` (the engine's side of each cycle's commit: handing the cycle's raw
  events over, encoding them into rows, staging the checkpoints; no trace line is built
  while the job runs), ``writer`` (the sink's Python at each commit: the rows' hash
  chain, sizes, statements) and ``sqlite`` (the transactions themselves: BEGIN, the
  INSERTs, COMMIT); ``other``: the rest of the difference from ``none`` (the sink's
  set-up in the engine, the last events, noise).

The instrumentation wraps the store's methods with a clock; it adds about a
microsecond per call, which the ``store`` total includes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_store import timed, workloads

from converge_rules import api
from converge_rules.engine import runner
from converge_rules.store import sqlite


@contextmanager
def clocked(owner: Any, name: str, acc: dict[str, float], key: str) -> Iterator[None]:
    """``owner.name`` wrapped so that its time adds to ``acc[key]``."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            acc[key] += time.perf_counter() - start

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def instrumented(run: Callable[[], Any]) -> tuple[float, dict[str, float], Any]:
    acc = {k: 0.0 for k in ("open", "job", "commit_cycle", "sink", "sqlite", "close")}
    S, J = sqlite.SqliteStore, sqlite.SqliteJob
    with clocked(S, "__init__", acc, "open"), clocked(S, "_insert_job", acc, "job"), \
            clocked(S, "close", acc, "close"), clocked(S, "_write", acc, "sqlite"), \
            clocked(J, "_commit", acc, "sink"), \
            clocked(runner._Job, "_commit_cycle", acc, "commit_cycle"):
        seconds, result = timed(run)
    return seconds, acc, result


def measure(name: str, ruleset: Any, facts: Any, tmp: Path, rounds: int) -> None:
    none: list[float] = []
    store: list[float] = []
    parts: dict[str, list[float]] = {}
    result = None
    for i in range(rounds):
        db = tmp / f"b{abs(hash(name))}{i}.db"
        for way in (["none", "store"] if i % 2 == 0 else ["store", "none"]):
            if way == "none":
                none.append(timed(lambda: api.run(ruleset, facts, now=None))[0])
                continue
            seconds, acc, result = instrumented(
                lambda d=db: api.run(ruleset, facts, store=d, now=None))
            store.append(seconds)
            split = {
                "open": acc["open"] + acc["job"] + acc["close"],
                "engine": acc["commit_cycle"] - acc["sink"],
                "writer": acc["sink"] - acc["sqlite"],
                "sqlite": acc["sqlite"],
            }
            for k, v in split.items():
                parts.setdefault(k, []).append(v)
    assert result is not None
    med = {k: statistics.median(v) for k, v in parts.items()}
    n, s = statistics.median(none), statistics.median(store)
    other = s - n - sum(med.values())
    print(f"{name:<28}{n:>8.3f}{s:>8.3f}{med['open']:>8.3f}{med['engine']:>8.3f}"
          f"{med['writer']:>8.3f}{med['sqlite']:>8.3f}{other:>8.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'workload':<28}{'none':>8}{'store':>8}{'open':>8}{'engine':>8}"
          f"{'writer':>8}{'sqlite':>8}{'other':>8}   seconds, medians", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ruleset, facts) in workloads(args.quick, args.large).items():
            measure(name, ruleset, facts, Path(tmp), args.rounds)


if __name__ == "__main__":
    main()
