"""``converge bench``: how fast converge_rules is on this machine, as ratios against
baselines measured in the same run."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from converge_rules.cli._common import EXIT_FINDINGS, EXIT_OK
from converge_rules.files import write_text_atomic


@click.command("bench")
@click.option("--quick", is_flag=True, help="Small workloads only (a few seconds).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="A table, or one JSON document.")
def command(quick: bool, fmt: str) -> None:
    """Measure the engine and the parser on built-in workloads.

    \b
    closure  transitive closure of a chain of 800 nodes (319,600 paths) and of a
             random graph of 2000 nodes / 4000 edges (seed 42), against a
             hand-written pure-Python semi-naive evaluation with dict indexes
             (the ceiling for pure Python); the ratio is engine time /
             baseline time, both measured in this run, alternating, medians
             (target: 1.5x); both must find the same paths
    parse    parse and check a generated ruleset, in lines per second
    startup  whole `converge` processes (--version, and check of a generated
             ruleset of about 100 lines), median of several runs against the
             targets (0.15 s and 0.4 s)
    inputs   read input facts as JSON Lines, a JSON array and CSV, in facts
             per second, against the standard library's parse alone (no
             validation), at two sizes (10x apart): linearity is the per-fact
             cost at the larger over the smaller (1.0 is linear)
    agents   200 agents each matching Reading(kind: <constant>) on 10,000
             readings, against a hand loop routing readings to rule functions
             (target: 3x); 200 agents each updating its own keyed counter for
             100 cycles, CPU time per agent run (target: 5 µs) beside a
             hand cycle loop; engine and hand loop alternate, medians
    memory   peak RSS of `converge run` holding 1M input facts read from
             JSON Lines, against a process reading the same file into a set
             of the same tuples (target: 1.5x); peak RSS of `converge run` of
             a keyed counter at 10,000 cycles over at 1,000 (target: 1.05);
             each a process of its own
    executors  I/O-bound: 64 agents per cycle each calling a tool that
             waits 50 ms, 10 cycles, on threads and on asyncio, against the
             ideal 10 x 50 ms (target: 1.3x); 1,000 agents per cycle on
             asyncio (target: 1.5x); CPU-bound: a join-heavy ruleset,
             processes with 2 workers against serial (target: 1.6x faster;
             the cores and load average are reported: on a shared machine
             the speedup is what the others left); executors alternate,
             medians
    store    issue 13's job store: a job of 10,000 cycles each replacing a
             keyed fact, adding one and pruning one, without and with the
             SQLite store (a new file each run), alternating, medians of the
             wall time (target: 1.3x), the CPU time beside it; the same for a
             keyed counter of 5,000 cycles and the closure of a chain of 800,
             the hardest cases (a few µs a cycle, a µs a fact); the stored
             trace must equal the job's; the pruned job with the store as
             processes of their own at 1,000 and 10,000 cycles: peak RSS
             (target: under 1.2x) and store bytes per cycle (target: 1.2x)
    summary  every target above: measured, target, met or NOT met

    \b
    Examples:
      converge bench --quick
      converge bench --format json > bench.json

    --quick runs every workload at a small size: its ratios do not say whether
    a target is met. The full benchmarks against peers, with profiles, are the
    scripts in bench/ of the source repository.

    Exit codes: 0 measured (met or not), 1 the engine and a baseline disagreed
    (a bug: please report it), 2 usage error.
    """
    rows = _closure(quick)
    parse = _parse(quick)
    startup = _startup(quick)
    inputs = _inputs(quick)
    agents = _agents(quick)
    memory = _memory(quick)
    executors = _executors(quick)
    store = _store(quick)
    summary = (_summary(rows, agents, memory) + _executor_summary(executors)
               + _store_summary(store))
    agreed = all(r["agree"] for r in [*rows, *agents, *memory, *executors, *store])
    if fmt == "json":
        click.echo(json.dumps({"closure": rows, "parse": parse, "startup": startup,
                               "inputs": inputs, "agents": agents, "memory": memory,
                               "executors": executors, "store": store,
                               "summary": summary, "quick": quick}, indent=2))
    else:
        _print_text(rows, parse, startup, inputs, agents, memory, executors, store,
                    summary, quick)
    if not agreed:
        click.echo("converge: error: the engine and a baseline found different answers; "
                   "this is a bug, please report it", err=True)
    sys.exit(EXIT_OK if agreed else EXIT_FINDINGS)


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def _print_text(rows: list[dict[str, Any]], parse: dict[str, Any],
                startup: list[dict[str, Any]], inputs: list[dict[str, Any]],
                agents: list[dict[str, Any]], memory: list[dict[str, Any]],
                executors: list[dict[str, Any]], store: list[dict[str, Any]],
                summary: list[dict[str, Any]], quick: bool) -> None:
    click.echo(f"{'closure':<18} {'paths':>9} {'baseline s':>11} {'engine s':>9} "
               f"{'ratio':>6} {'target':>7}")
    for r in rows:
        click.echo(f"{r['graph']:<18} {r['paths']:>9,} {r['baseline_s']:>11.3f} "
                   f"{r['engine_s']:>9.3f} {r['ratio']:>6.2f} {r['target']:>6g}x  "
                   f"{_verdict(r['met'])}")
    click.echo(f"parse: {parse['lines']:,} lines, {parse['parse_lines_per_s']:,.0f} "
               f"lines/s parsed, {parse['check_lines_per_s']:,.0f} lines/s parsed "
               "and checked")
    click.echo(f"{'startup':<38} {'runs':>4} {'best s':>7} {'median s':>8} "
               f"{'cpu s':>6} {'target s':>8}")
    for r in startup:
        cpu = "-" if r["median_cpu_s"] is None else f"{r['median_cpu_s']:.3f}"
        click.echo(f"{r['command']:<38} {r['runs']:>4} {r['best_s']:>7.3f} "
                   f"{r['median_s']:>8.3f} {cpu:>6} {r['target_s']:>8.2f}  "
                   f"{_verdict(r['met'])}")
    click.echo(f"{'inputs':<18} {'facts':>9} {'facts/s':>11} {'baseline/s':>11} "
               f"{'ratio':>6} {'linearity':>9}")
    for r in inputs:
        click.echo(f"{r['format']:<18} {r['facts']:>9,} {r['facts_per_s']:>11,} "
                   f"{r['baseline_facts_per_s']:>11,} {r['ratio']:>6.2f} "
                   f"{r['linearity']:>9.2f}")
    labels = [r["workload"] + (f" (per {r['per']})" if r.get("per") else "")
              for r in agents]
    width = max(map(len, labels), default=6)
    click.echo(f"{'agents':<{width}} {'baseline':>10} {'engine':>10} {'ratio':>6} "
               f"{'target':>8}")
    for label, r in zip(labels, agents, strict=True):
        unit, scale, digits = (" µs", 1e6, 2) if r.get("per") else (" s", 1.0, 4)
        target = (f"{r['target']:g}x" if "target" in r
                  else f"{r['target_engine_s'] * scale:g}{unit}")
        click.echo(f"{label:<{width}} "
                   f"{r['baseline_s'] * scale:>{10 - len(unit)}.{digits}f}{unit} "
                   f"{r['engine_s'] * scale:>{10 - len(unit)}.{digits}f}{unit} "
                   f"{r['ratio']:>5.1f}x {target:>8}  {_verdict(r['met'])}")
    width = max((len(r["workload"]) for r in memory), default=6)
    click.echo(f"{'memory':<{width}} {'baseline':>12} {'engine':>12} {'ratio':>6} "
               f"{'target':>7}")
    for r in memory:
        base = "-" if r["baseline_mib"] is None else f"{r['baseline_mib']:,.1f} MiB"
        eng = "-" if r["engine_mib"] is None else f"{r['engine_mib']:,.1f} MiB"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        click.echo(f"{r['workload']:<{width}} {base:>12} {eng:>12} {ratio:>6} "
                   f"{r['target']:>6g}x  {_verdict(r['met'])}")
    width = max((len(r["workload"]) for r in executors), default=9)
    click.echo(f"{'executors':<{width}} {'ideal/serial':>12} {'engine':>9} {'ratio':>6} "
               f"{'target':>7}")
    for r in executors:
        if "speedup" in r:
            click.echo(f"{r['workload']:<{width}} {r['serial_s']:>10.3f} s "
                       f"{r['processes_s']:>7.3f} s {r['speedup']:>5.2f}x "
                       f">={r['target']:g}x  {_verdict(r['met'])} (cores {r['cores']}, "
                       f"load {r['load']})")
        else:
            click.echo(f"{r['workload']:<{width}} {r['ideal_s']:>10.3f} s "
                       f"{r['engine_s']:>7.3f} s {r['ratio']:>5.2f}x "
                       f"{r['target']:>6g}x  {_verdict(r['met'])}")
    _print_store(store)
    click.echo("")
    width = max((len(r["row"]) for r in summary), default=6)
    click.echo(f"{'target (issues 11, 12, 13)':<{width}} {'measured':>12} {'target':>10}  met")
    for r in summary:
        click.echo(f"{r['row']:<{width}} {r['measured']:>12} {r['target']:>10}  "
                   f"{_verdict(r['met'])}")
    met = sum(r["met"] for r in summary)
    note = " (--quick: small sizes, not the targets' workloads)" if quick else ""
    click.echo(f"{met} of {len(summary)} targets met{note}")


def _print_store(store: list[dict[str, Any]]) -> None:
    timed = [r for r in store if "store_s" in r]
    width = max((len(r["workload"]) for r in store), default=6)
    click.echo(f"{'store':<{width}} {'none s':>8} {'store s':>8} {'ratio':>6} "
               f"{'cpu ratio':>9} {'target':>7}")
    for r in timed:
        click.echo(f"{r['workload']:<{width}} {r['none_s']:>8.3f} {r['store_s']:>8.3f} "
                   f"{r['ratio']:>5.2f}x {r['cpu_ratio']:>8.2f}x {r['target']:>6g}x  "
                   f"{_verdict(r['met'])}")
    for r in store:
        if "baseline_mib" in r:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            base = "-" if r["baseline_mib"] is None else f"{r['baseline_mib']:,.1f}"
            eng = "-" if r["engine_mib"] is None else f"{r['engine_mib']:,.1f}"
            click.echo(f"{r['workload']:<{width}} {base:>8} {eng:>8} {ratio:>6} "
                       f"{'MiB':>9} <{r['target']:>5g}x  {_verdict(r['met'])}")
        elif "bytes_per_cycle" in r:
            click.echo(f"{r['workload']:<{width}} {r['bytes_per_cycle']:>8,} "
                       f"{r['bytes_per_cycle_10x']:>8,} {r['ratio']:>5.2f}x "
                       f"{'B/cycle':>9} {r['target']:>6g}x  {_verdict(r['met'])}")
            by = ", ".join(f"{n} facts {b:,} B" for n, b in r["by_changed_facts"])
            click.echo(f"{'':<{width}} bytes per cycle by facts changed a cycle: {by}")


def _closure(quick: bool) -> list[dict[str, Any]]:
    from converge_rules.benchmarks import chain, measure_closure, random_graph

    # A chain of n nodes, as issue 11 and bench/peers count it: chain(n - 1) edges.
    if quick:
        return measure_closure([("chain 60", chain(59)),
                                ("random 150/300", random_graph(150, 300, seed=42))],
                               rounds=1)
    return measure_closure([("chain 800", chain(799)),
                            ("random 2000/4000", random_graph(2000, 4000, seed=42))])


def _parse(quick: bool) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from converge_rules.benchmarks import generated_ruleset, timed
    from converge_rules.language.checks.checker import check_file
    from converge_rules.language.syntax.parser import parse

    text = generated_ruleset(500 if quick else 5_000)
    lines = text.count("\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.cvg"
        write_text_atomic(path, text)
        t_parse, _ = timed(lambda: parse(text, str(path)), repeat=2)
        t_check, _ = timed(lambda: check_file(path), repeat=2)
    return {"lines": lines, "parse_lines_per_s": round(lines / t_parse),
            "check_lines_per_s": round(lines / t_check)}


def _startup(quick: bool) -> list[dict[str, Any]]:
    import tempfile
    from pathlib import Path

    from converge_rules.benchmarks import generated_ruleset, startup_times

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "startup.cvg"
        path.write_text(generated_ruleset(100), encoding="utf-8")
        return startup_times(path, runs=3 if quick else 10)


def _inputs(quick: bool) -> list[dict[str, Any]]:
    import tempfile
    from pathlib import Path

    from converge_rules.benchmarks import measure_inputs

    sizes = (2_000, 20_000) if quick else (100_000, 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        return measure_inputs(sizes, Path(tmp))


def _agents(quick: bool) -> list[dict[str, Any]]:
    from converge_rules.benchmarks import measure_agents

    if quick:
        return measure_agents(agents=20, readings=1_000, cycles=10, rounds=3)
    return measure_agents(rounds=7)


def _memory(quick: bool) -> list[dict[str, Any]]:
    import tempfile
    from pathlib import Path

    from converge_rules.benchmarks import measure_counter_memory, measure_input_memory

    with tempfile.TemporaryDirectory() as tmp:
        return [measure_input_memory(20_000 if quick else 1_000_000, Path(tmp)),
                measure_counter_memory(100 if quick else 1_000, Path(tmp))]


def _executors(quick: bool) -> list[dict[str, Any]]:
    from converge_rules.benchmarks import measure_cpu, measure_io
    from converge_rules.engine.executors import fork_available

    if quick:
        rows = measure_io(agents=16, wide=100, cycles=3, rounds=1, latency=0.02)
        cpu = measure_cpu(agents=4, rows=400, keys=20, rounds=1) if fork_available() else None
    else:
        rows = measure_io(rounds=5)
        cpu = measure_cpu() if fork_available() else None
    return rows + ([cpu] if cpu is not None else [])


def _store(quick: bool) -> list[dict[str, Any]]:
    import tempfile
    from pathlib import Path

    from converge_rules.benchmarks import measure_store_growth, measure_store_time

    with tempfile.TemporaryDirectory() as tmp:
        return (measure_store_time(Path(tmp), quick, rounds=1 if quick else 5)
                + measure_store_growth(Path(tmp), quick))


def _store_summary(store: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 13's target rows (item 10): run time with the store over without, peak
    RSS and store bytes per cycle of the long pruned job at 10x its cycles over 1x."""
    rows: list[dict[str, Any]] = []
    for r in store:
        if "store_s" in r:
            rows.append({"row": f"{r['workload']}, with the store / without",
                         "measured": f"{r['ratio']:.2f}x", "target": f"<= {r['target']:g}x",
                         "met": r["met"]})
        else:
            measured = "not measured" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            sign = "<" if "baseline_mib" in r else "<="
            rows.append({"row": r["workload"], "measured": measured,
                         "target": f"{sign} {r['target']:g}x", "met": r["met"]})
    return rows


def _executor_summary(executors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 12's target rows: each I/O-bound workload's time over the ideal, and the
    CPU-bound speedup of processes over serial."""
    rows: list[dict[str, Any]] = []
    for r in executors:
        if "speedup" in r:
            rows.append({"row": r["workload"], "measured": f"{r['speedup']:.2f}x",
                         "target": f">= {r['target']:g}x", "met": r["met"]})
        else:
            rows.append({"row": f"{r['workload']}, time / ideal",
                         "measured": f"{r['ratio']:.2f}x", "target": f"<= {r['target']:g}x",
                         "met": r["met"]})
    return rows


def _summary(closure: list[dict[str, Any]], agents: list[dict[str, Any]],
             memory: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 11's target rows, in its order: what was measured against what target,
    and whether this run met it."""
    rows: list[dict[str, Any]] = []
    for r in closure:
        rows.append({"row": f"closure, {r['graph']} ({r['paths']:,} paths), engine / "
                            "hand-written semi-naive", "measured": f"{r['ratio']:.2f}x",
                     "target": f"<= {r['target']:g}x", "met": r["met"]})
    for r in agents:
        if "target" in r:
            rows.append({"row": f"{r['workload']}, engine / hand loop",
                         "measured": f"{r['ratio']:.2f}x", "target": f"<= {r['target']:g}x",
                         "met": r["met"]})
        else:
            rows.append({"row": f"{r['workload']}, per {r['per']}",
                         "measured": f"{r['engine_s'] * 1e6:.2f} µs",
                         "target": f"<= {r['target_engine_s'] * 1e6:g} µs", "met": r["met"]})
    for r in memory:
        measured = "not measured" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        rows.append({"row": f"{r['workload']}, vs {r['baseline']}", "measured": measured,
                     "target": f"<= {r['target']:g}x", "met": r["met"]})
    return rows
