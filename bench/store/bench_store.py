"""The SQLite job store's cost (issue 13, item 10): run time against the same run
without it (target within 1.3x), peak memory of a long job with pruning and the store
(RSS at 10,000 cycles / at 1,000 under 1.2), and the store's size per cycle against
what each cycle changes.

    python bench/store/bench_store.py [--quick] [--large] [--rounds N]
        [--only time|memory|size]

Two workloads, each run three ways in the same process, alternating, for ``--rounds``
rounds (median of each):

* ``counter``: one keyed counter updated in place for 5,000 cycles (``--quick``: 500)
  — the worst case for a store that commits once per cycle: every cycle is a few
  trace lines and one transaction;
* ``closure``: the transitive closure of a chain of 300 nodes (``--quick``: 100),
  ~45,000 paths in ~300 cycles — many lines per transaction; a run of a few
  hundredths of a second, where opening a store (a fixed ~10 ms) weighs;
* with ``--large``: the counter for 50,000 cycles and the closure of a chain of 800
  (319,600 paths), where the fixed cost is amortised;
* ``tools``: four agents each calling a 1 ms tool every cycle, 200 cycles — an agent
  job's shape, where every cycle is committed as it ends (it called a tool).

Ways: ``none`` (no trace), ``jsonl`` (``--trace FILE``, the trace serialised and written
when the job ends), ``sqlite`` (``--store run.db``, each cycle's lines serialised as the
cycle ends and committed with group commit; a new file per run) and ``group=1`` (the
same with ``sqlite:///run.db?group=1``: one transaction per cycle, as before group
commit). The ratios are ``sqlite / none`` (the
issue's target) and ``sqlite / jsonl`` (what the store costs over the trace file, whose
serialisation both pay). A second table times the serialisation alone, on the last
run's trace: through the pydantic models (the old way), straight from the event tuples,
and with the integrity chain's SHA-256 per line (what is written).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import converge_rules
from converge_rules import api
from converge_rules.benchmarks import (
    _converge_run,
    io_ruleset,
    io_tools,
    peak_rss,
    pruned_ruleset,
)
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


def workloads(quick: bool, large: bool = False
              ) -> dict[str, tuple[Any, list[tuple[str, dict[str, Any]]]]]:
    sizes = [(500, 100)] if quick else [(5_000, 300)]
    if large:
        sizes.append((50_000, 800))
    closure = converge_rules.loads(CLOSURE, plugins=False)
    out = {}
    for steps, nodes in sizes:
        counter = converge_rules.loads(COUNTER.replace("LIMIT", str(steps)), plugins=False)
        out[f"counter ({steps:,} cycles)"] = (counter, [("Count", {"id": "a", "n": 0})])
        out[f"closure (chain of {nodes})"] = (
            closure, [("Edge", {"a": i, "b": i + 1}) for i in range(nodes - 1)])
    return out


TOOL_CYCLES = 200
TOOL_AGENTS = 4
TOOL_LATENCY = 0.001


def tool_workload(quick: bool) -> tuple[str, Any, list[tuple[str, dict[str, Any]]],
                                        dict[str, Any]]:
    """An agent job's shape: ``TOOL_AGENTS`` agents each calling a tool of
    ``TOOL_LATENCY`` seconds once a cycle (:func:`converge_rules.benchmarks.io_ruleset`,
    the sync tool, the serial executor), for ``TOOL_CYCLES`` cycles (``--quick``: 20).
    Every cycle calls a tool, so every cycle is committed as it ends: the store's
    per-cycle cost against cycles that do real work."""
    cycles = 20 if quick else TOOL_CYCLES
    wait, _ = io_tools(TOOL_LATENCY)
    ruleset = converge_rules.loads(io_ruleset(TOOL_AGENTS, cycles), plugins=False)
    return (f"tools ({TOOL_AGENTS} x {TOOL_LATENCY * 1e3:g} ms, {cycles} cycles)", ruleset,
            [("Tick", {"n": 0})], {"wait": wait})


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10x smaller workloads")
    parser.add_argument("--large", action="store_true",
                        help="also the 50,000-cycle counter and the chain of 800")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--only", choices=["time", "memory", "size"],
                        help="one of the three tables")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "time"):
            time_rows(Path(tmp), args.quick, args.large, args.rounds)
        if args.only in (None, "memory"):
            print()
            memory_row(Path(tmp), 100 if args.quick else 1_000)
        if args.only in (None, "size"):
            print()
            size_rows(Path(tmp), 100 if args.quick else 1_000)


def fixed_cost(tmp: Path, rounds: int) -> tuple[float, float]:
    """Medians of a one-fact, no-agent job without a store and with a new store file
    each time: what opening a store costs a job whatever its length (creating the file,
    PRAGMAs, the migrations, the job's rows, closing)."""
    ruleset = converge_rules.loads("ruleset one\nfact A { n: int }\n", plugins=False)
    facts = [("A", {"n": 1})]
    none: list[float] = []
    store: list[float] = []
    for i in range(max(rounds, 5) * 4):
        db = tmp / f"fixed{i}.db"
        pair = [(none, lambda: api.run(ruleset, facts, now=None)),
                (store, lambda d=db: api.run(ruleset, facts, store=d, now=None))]
        for times, run in (pair if i % 2 == 0 else pair[::-1]):
            times.append(timed(run)[0])
    return statistics.median(none), statistics.median(store)


def time_rows(tmp: Path, quick: bool, large: bool, rounds: int) -> None:
    """The run-time table: each workload with no trace, ``--trace`` and ``--store``,
    alternating, medians; then the serialisation alone."""
    none, store = fixed_cost(tmp, rounds)
    print(f"fixed cost of a store: a one-fact job {none * 1e3:.1f} ms without, "
          f"{store * 1e3:.1f} ms with a new store file (+{(store - none) * 1e3:.1f} ms)\n")
    print(f"{'workload':<32}{'cycles':>8}{'lines':>9}{'none s':>9}{'jsonl s':>9}"
          f"{'sqlite s':>10}{'sqlite/none':>12}{'sqlite/jsonl':>13}{'db bytes':>11}"
          f"{'group=1 s':>11}{'group=1/none':>13}", flush=True)
    serialised: dict[str, dict[str, float]] = {}
    rows: list[tuple[str, Any, Any, dict[str, Any] | None]] = [
        (name, ruleset, facts, None) for name, (ruleset, facts) in workloads(quick, large).items()]
    rows.append(tool_workload(quick))
    for name, ruleset, facts, tools in rows:
        pairs = facts
        times: dict[str, list[float]] = {"none": [], "jsonl": [], "sqlite": [],
                                         "group=1": []}
        size = 0
        expected = None
        for i in range(rounds):
            db = tmp / f"run{i}.db"
            db.unlink(missing_ok=True)
            trace = tmp / f"trace{i}.jsonl"
            ways: dict[str, Callable[[], Any]] = {
                "none": lambda r=ruleset, p=pairs, x=tools: api.run(r, p, tools=x,
                                                                    now=None),
                "jsonl": lambda r=ruleset, p=pairs, x=tools, t=trace: api.run(
                    r, p, tools=x, trace=t, now=None),
                "sqlite": lambda r=ruleset, p=pairs, x=tools, d=db: api.run(
                    r, p, tools=x, store=d, now=None),
                # one transaction per cycle, as before group commit (a file of its own)
                "group=1": lambda r=ruleset, p=pairs, x=tools, d=db: api.run(
                    r, p, tools=x, store=f"sqlite:///{d}1?group=1", now=None),
            }
            order = list(ways) if i % 2 == 0 else list(reversed(ways))
            for way in order:
                seconds, result = timed(ways[way])
                times[way].append(seconds)
                if way == "sqlite":
                    size = db.stat().st_size + (Path(f"{db}-wal").stat().st_size
                                                if Path(f"{db}-wal").exists() else 0)
                    with SqliteStore(db) as opened:
                        exported = "".join(f"{line}\n" for line in
                                           opened.trace_lines(opened.job(None).id))
                    expected = result.trace.to_jsonl()
                    assert exported == expected, "the store's trace differs"
                    cycles, lines = result.cycles, expected.count("\n")
            for suffix in ("", "-wal", "-shm", "1", "1-wal", "1-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{name:<32}{cycles:>8,}{lines:>9,}{med['none']:>9.3f}{med['jsonl']:>9.3f}"
              f"{med['sqlite']:>10.3f}{med['sqlite'] / med['none']:>12.2f}"
              f"{med['sqlite'] / med['jsonl']:>13.2f}{size:>11,}{med['group=1']:>11.3f}"
              f"{med['group=1'] / med['none']:>13.2f}", flush=True)
        serialised[name] = serialisation(result, rounds)
    print(f"\n{'serialising the trace':<32}{'models s':>10}{'bare s':>9}{'chained s':>11}"
          f"{'models/bare':>12}{'chained/bare':>13}")
    for name, med in serialised.items():
        print(f"{name:<32}{med['models']:>10.3f}{med['bare']:>9.3f}{med['chained']:>11.3f}"
              f"{med['models'] / med['bare']:>12.2f}{med['chained'] / med['bare']:>13.2f}")


# ----------------------------------------------------- memory and size (item 10, rows 1-2)

def _run_stored(tmp: Path, cycles: int, per_cycle: int) -> tuple[int | None, Path, str]:
    """``converge run`` of :func:`pruned_ruleset` with ``--store``, a process of its
    own: its peak RSS (bytes), the store file, and its output."""
    ruleset = tmp / f"pruned{cycles}x{per_cycle}.cvg"
    ruleset.write_text(pruned_ruleset(cycles, per_cycle))
    facts = tmp / "tick.jsonl"
    facts.write_text(json.dumps({"Tick": {"id": "t", "n": 0}}) + "\n")
    db = tmp / f"pruned{cycles}x{per_cycle}.db"
    for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink(missing_ok=True)
    out = tmp / "pruned.out"
    rss, code = peak_rss([*_converge_run(ruleset, facts), "--store", str(db)], out)
    text = out.read_text()
    if code != 0 or f"converged in {cycles + 1} cycles" not in text.replace(",", ""):
        raise SystemExit(f"the pruned job of {cycles} cycles failed (exit {code}):\n{text}")
    _check_pruned(db, cycles, per_cycle)
    return rss, db, text


def _check_pruned(db: Path, cycles: int, per_cycle: int) -> None:
    """That the stored job did what its rows claim: ``per_cycle`` readings added each
    cycle, none skipped, and all but the last two cycles' pruned."""
    counts = {"fact_added": 0, "pruned": 0, "output_skipped": 0}
    with SqliteStore(db) as store:
        for line in store.trace_lines(store.job(None).id):
            for kind in counts:
                if f'"event":"{kind}"' in line:
                    counts[kind] += 1
    expected = {"fact_added": (per_cycle + 1) * (cycles + 1),
                "pruned": per_cycle * (cycles - 2), "output_skipped": 0}
    if counts != expected:
        raise SystemExit(f"the pruned job of {cycles} cycles is not the workload: "
                         f"{counts}, expected {expected}")


def memory_row(tmp: Path, cycles: int) -> float | None:
    """Peak RSS of the pruned job with the store at ``10 * cycles`` cycles over the
    same at ``cycles`` (target < 1.2), each a process of its own (``wait4``'s
    ``ru_maxrss``, read by a small launcher: :func:`converge_rules.benchmarks.
    peak_rss`)."""
    peaks = [_run_stored(tmp, n, 1)[0] for n in (cycles, 10 * cycles)]
    mib = 1024 * 1024
    if peaks[0] is None or peaks[1] is None:
        print("peak RSS: not reported by this OS")
        return None
    ratio = peaks[1] / peaks[0]
    print(f"{'pruned job with --store':<34}{'peak RSS MiB':>14}")
    print(f"{f'{cycles:,} cycles':<34}{peaks[0] / mib:>14.1f}")
    print(f"{f'{10 * cycles:,} cycles':<34}{peaks[1] / mib:>14.1f}")
    print(f"ratio {ratio:.3f} (target < 1.2: {'met' if ratio < 1.2 else 'NOT met'})")
    return ratio


def size_rows(tmp: Path, cycles: int) -> None:
    """The store's size per cycle: the pruned job (a replaced ``Tick``, ``k`` new
    ``Reading`` facts and ``k`` pruned each cycle) at ``cycles`` and ``10 * cycles``
    cycles with k = 1 (flat: bytes per cycle should not grow with the job's length),
    and at ``cycles`` with k = 1, 4, 16 (proportional: bytes per cycle should grow
    with k, about a fixed part plus k times a part per changed fact). The file's size
    (with its WAL, after the job closed it) and the trace's bytes per cycle from the
    ``cycles`` table."""
    print(f"{'store size per cycle':<34}{'cycles':>8}{'facts/cycle':>12}{'file bytes':>12}"
          f"{'file B/cycle':>14}{'trace B/cycle':>15}")
    for n, k in ((cycles, 1), (10 * cycles, 1), (cycles, 4), (cycles, 16)):
        _, db, _ = _run_stored(tmp, n, k)
        size = sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())
        with SqliteStore(db) as store:
            job = store.job(None)
            trace = job.trace_bytes
        changed = 1 + 2 * k  # the Tick replaced, k Readings added, k pruned
        print(f"{'pruned job':<34}{n + 1:>8,}{changed:>12}{size:>12,}"
              f"{size / (n + 1):>14,.0f}{trace / (n + 1):>15,.0f}", flush=True)


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
