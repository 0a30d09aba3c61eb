"""Benchmark workloads shared by ``converge bench`` and the scripts in ``bench/``.

Each workload comes with the baseline it is measured against in the same run: for the
transitive closure, a hand-written pure-Python semi-naive evaluation with dict indexes
(what a careful programmer writes for this one query, with no provenance, trace,
policies or budgets — the ceiling for pure Python); for parsing, a generated ruleset
of realistic shape; for start-up, whole ``converge`` processes against fixed targets
(editors and pre-commit hooks start one on every save);
for reading input facts, files of N facts in each input format
(JSON Lines, a JSON array, CSV), against the standard library parsing the same file
with no validation;
for checking, two shapes that once made the checker quadratic (many agents emitting
one type; many references to unknown types).
"""

from __future__ import annotations

import csv
import gc
import json
import random
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial
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


INPUT_RULESET = '''ruleset inputs "Input facts to read"

fact Quote { sku: str, vendor: str, amount: float, count: int, tags: list[str] = [] }
'''

INPUT_FORMATS = ("jsonl", "json", "csv")
"""The input formats, as :func:`write_input` names them."""


def input_spec(path: Path, fmt: str) -> str:
    """The ``--facts`` argument that reads ``path`` written by :func:`write_input`."""
    return f"Quote={path}" if fmt == "csv" else str(path)


def write_input(path: Path, fmt: str, facts: int, seed: int = 11) -> None:
    """Write ``facts`` facts of :data:`INPUT_RULESET`'s ``Quote`` to ``path`` as JSON
    Lines (``jsonl``), a pretty-printed JSON array (``json``, one fact over several
    lines, as editors write them) or CSV."""
    rng = random.Random(seed)
    rows = [{"sku": f"SKU-{rng.randrange(100_000):05d}", "vendor": f"vendor {i % 97}",
             "amount": round(rng.uniform(1, 500), 2), "count": rng.randrange(1, 50)}
            for i in range(facts)]
    with path.open("w", encoding="utf-8", newline="") as out:
        if fmt == "jsonl":
            for row in rows:
                out.write(json.dumps({"Quote": row}) + "\n")
        elif fmt == "json":
            out.write("[\n")
            for i, row in enumerate(rows):
                body = json.dumps({"Quote": row}, indent=2).replace("\n", "\n  ")
                out.write("  " + body + (",\n" if i + 1 < facts else "\n"))
            out.write("]\n")
        elif fmt == "csv":
            writer = csv.DictWriter(out, ["sku", "vendor", "amount", "count"])
            writer.writeheader()
            writer.writerows(rows)
        else:
            raise ValueError(f"unknown input format {fmt!r}; one of {INPUT_FORMATS}")


def parse_input_baseline(path: Path, fmt: str) -> int:
    """The standard library parsing ``path`` with no validation: the floor for reading
    it in Python. Returns the number of facts."""
    text = path.read_text(encoding="utf-8")
    if fmt == "jsonl":
        return len([json.loads(line) for line in text.split("\n") if line])
    if fmt == "json":
        return len(json.loads(text))
    return len(list(csv.DictReader(text.split("\n")[:-1])))


def measure_inputs(sizes: Sequence[int], directory: Path) -> list[dict[str, Any]]:
    """Read :data:`INPUT_RULESET` facts in every format at each of ``sizes`` (files
    written in ``directory``): one row per format and size with the seconds and facts
    per second of ``read_facts`` (validation included) and of the standard library's
    parse alone, and ``linearity``: the per-fact cost at this size over the per-fact
    cost at the smallest size (1.0 is linear). Raises ``AssertionError`` when a reader
    returns a different number of facts than were written."""
    import converge_rules
    from converge_rules.engine import read_facts

    program = converge_rules.loads(INPUT_RULESET, plugins=False).program
    rows: list[dict[str, Any]] = []
    for fmt in INPUT_FORMATS:
        first: float | None = None
        for size in sorted(sizes):
            path = directory / f"quotes{size}.{fmt}"
            write_input(path, fmt, size)
            t_base, parsed = timed(partial(parse_input_baseline, path, fmt))
            t_read, facts = timed(partial(read_facts, program, input_spec(path, fmt)))
            assert parsed == len(facts) == size, (fmt, size, parsed, len(facts))
            file_bytes = path.stat().st_size
            path.unlink()
            per_fact = t_read / size
            first = per_fact if first is None else first
            rows.append({
                "format": fmt, "facts": size, "bytes_per_fact": round(file_bytes / size),
                "seconds": round(t_read, 4), "facts_per_s": round(size / t_read),
                "baseline_facts_per_s": round(size / t_base),
                "ratio": round(t_read / t_base, 2) if t_base else None,
                "linearity": round(per_fact / first, 2),
            })
    return rows


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


def cpu_timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """The CPU time of this process during one call of ``fn`` (after a collection),
    and its value."""
    gc.collect()
    start = time.process_time()
    value = fn()
    return time.process_time() - start, value


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


# ------------------------------------------------------------ executors (issue 12)

IO_LATENCY = 0.05
"""Seconds each tool call of the I/O-bound workloads waits."""
IO_TARGET = 1.3
"""64 agents calling a tool per cycle, threads and asyncio: elapsed / ideal, at most."""
IO_WIDE_TARGET = 1.5
"""1,000 agents calling a tool per cycle, asyncio: elapsed / ideal, at most."""
CPU_TARGET = 1.6
"""A join-heavy ruleset: serial time / processes (2 workers) time, at least."""


def io_ruleset(agents: int, cycles: int) -> str:
    """``agents`` agents that each call the tool ``wait`` once per cycle, for
    ``cycles`` cycles: agent *i* calls ``wait(agent: i, n: n)`` for every ``Tick(n)``,
    and ``tick`` emits the next tick in the same cycle. Given ``Tick(n: 0)``, each
    cycle waits on ``agents`` calls at once; the ideal is ``cycles`` latencies."""
    out = ['ruleset io "Agents waiting on a tool"', "uses tool wait", "",
           f'root "every call" {{ max_cycles = {cycles + 5} }}', "",
           "fact Tick { n: int }", "fact Done { agent: int, n: int, v: int }", "",
           "agent tick {", f"  when Tick(n) where n < {cycles - 1}",
           "  emit Tick(n: n + 1)", "}"]
    for i in range(agents):
        out += [f"agent call{i} {{", "  when Tick(n)", f"  call wait(agent: {i}, n: n) as r",
                f"  emit Done(agent: {i}, n: n, v: r.v)", "}"]
    return "\n".join(out) + "\n"


def io_tools(latency: float = IO_LATENCY) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The tool ``wait`` of :func:`io_ruleset` twice: a sync one (sleeps ``latency``),
    as a thread-pool user writes it, and an async one (awaits ``asyncio.sleep``)."""
    import asyncio

    def wait(args: dict[str, Any]) -> dict[str, Any]:
        time.sleep(latency)
        return {"v": args["agent"]}

    async def await_(args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(latency)
        return {"v": args["agent"]}

    return wait, await_


def measure_io(agents: int = 64, wide: int = 1_000, cycles: int = 10,
               rounds: int = 3, latency: float = IO_LATENCY) -> list[dict[str, Any]]:
    """The I/O-bound workloads (:func:`io_ruleset`) against the ideal ``cycles *
    latency``: ``agents`` agents per cycle on ``threads`` (a sync tool) and on
    ``asyncio`` (an async tool), ``wide`` agents per cycle on ``asyncio``, executors
    alternating ``rounds`` times (medians). ``agree``: every run converged in
    ``cycles`` cycles with every call answered, and its result equals the first's."""
    import converge_rules

    ideal = cycles * latency
    wait, await_ = io_tools(latency)
    narrow = converge_rules.loads(io_ruleset(agents, cycles), plugins=False)
    broad = converge_rules.loads(io_ruleset(wide, cycles), plugins=False)
    tick = [("Tick", {"n": 0})]
    runs: list[tuple[str, Any, dict[str, Any], str, int, float]] = [
        (f"{agents} agents x {cycles} cycles, threads", narrow, {"wait": wait}, "threads",
         agents, IO_TARGET),
        (f"{agents} agents x {cycles} cycles, asyncio", narrow, {"wait": await_}, "asyncio",
         agents, IO_TARGET),
        (f"{wide:,} agents x {cycles} cycles, asyncio", broad, {"wait": await_}, "asyncio",
         wide, IO_WIDE_TARGET),
    ]
    for _, ruleset, tools, executor, width, _ in runs:  # untimed: imports, first loop
        converge_rules.run(ruleset, tick, tools=tools, executor=executor,
                           workers=max(width, 64))
    times: list[list[float]] = [[] for _ in runs]
    agree = [True] * len(runs)
    first: list[str | None] = [None] * len(runs)
    for _ in range(rounds):
        for k, (_, ruleset, tools, executor, width, _) in enumerate(runs):
            t, result = timed(partial(converge_rules.run, ruleset, tick, tools=tools,
                                      executor=executor, workers=max(width, 64)))
            times[k].append(t)
            answer = result.to_json()
            first[k] = first[k] or answer
            agree[k] = (agree[k] and result.status == "converged"
                        and result.cycles == cycles and answer == first[k]
                        and len(result.facts("Done")) == width * cycles)
    rows: list[dict[str, Any]] = []
    for k, (label, _, _, _, _, target) in enumerate(runs):
        median = statistics.median(times[k])
        rows.append({"workload": label, "ideal_s": round(ideal, 3),
                     "engine_s": round(median, 4), "ratio": round(median / ideal, 3),
                     "target": target, "met": median / ideal <= target, "agree": agree[k]})
    return rows


def join_ruleset(agents: int) -> str:
    """``agents`` agents, each joining every ``A(x, y)`` with every ``B(y, z)`` on
    ``y`` and keeping 1 match in 64 (its share of ``(x * 7 + z) % 64``): the same
    join work per agent, few outputs, so the compute phase dominates."""
    out = ['ruleset joins "A join-heavy ruleset"', "",
           'root "joined" { max_facts = 10_000_000 }', "",
           "fact A { x: int, y: int }", "fact B { y: int, z: int }",
           "fact C { agent: int, x: int, z: int }", ""]
    for i in range(agents):
        out += [f"agent join{i} {{", "  when A(x, y) and B(y, z)",
                f"  where (x * 7 + z) % 64 == {i % 64}",
                f"  emit C(agent: {i}, x: x, z: z)", "}"]
    return "\n".join(out) + "\n"


def join_facts(rows: int, keys: int, seed: int = 5) -> list[tuple[str, dict[str, Any]]]:
    """``rows`` facts of each of ``A`` and ``B`` over ``keys`` join keys: about
    ``rows * rows / keys`` join results per agent."""
    rng = random.Random(seed)
    return ([("A", {"x": i, "y": rng.randrange(keys)}) for i in range(rows)]
            + [("B", {"y": rng.randrange(keys), "z": i}) for i in range(rows)])


def measure_cpu(agents: int = 8, rows: int = 4_000, keys: int = 40, rounds: int = 3,
                workers: int = 2) -> dict[str, Any]:
    """The CPU-bound workload (:func:`join_ruleset` on :func:`join_facts`): ``serial``
    against ``processes`` with ``workers`` workers, alternating ``rounds`` times
    (medians; the processes' fork and replica included). ``speedup`` is serial /
    processes in wall time; ``agree``: both converged with the same result every time.
    The cores this process may use and the load average are in the row: on a machine
    shared with other work, the wall-time speedup is what was left of them.

    CPU time says what the load cannot take away (medians too): ``serial_cpu_s`` (the
    serial job), ``parent_cpu_s`` (the processes job's own process: the run, the
    fork, the merge, and the share of the agents it runs itself, ``parent_agents_cpu_s``:
    with ``workers`` 2 it forks one worker and runs agents too, see
    :mod:`~converge_rules.engine.processes`), ``worker_cpu_max_s`` and
    ``worker_cpu_sum_s`` (its forked workers). ``critical_speedup`` = serial CPU /
    (the parent's CPU outside its agents + the longer of its agents' and the busiest
    worker's CPU): the speedup with a core for each process; ``work_ratio`` = (parent
    + all workers) / serial CPU: what running on processes costs in all (1.0 is no
    overhead)."""
    import os

    import converge_rules
    from converge_rules.engine import validate_pairs
    from converge_rules.engine.processes import ProcessExecutor

    ruleset = converge_rules.loads(join_ruleset(agents), plugins=False)
    facts = validate_pairs(ruleset.program, join_facts(rows, keys))
    serial_t: list[float] = []
    forked_t: list[float] = []
    cpu: dict[str, list[float]] = {"serial": [], "parent": [], "local": [], "max": [],
                                   "sum": [], "critical": [], "work": []}
    agree = True

    def clocked(job: Callable[[], Any]) -> tuple[float, float, Any]:
        gc.collect()  # (not on either side's clock)
        cpu_began, began = time.process_time(), time.perf_counter()
        value = job()
        return time.perf_counter() - began, time.process_time() - cpu_began, value

    for _ in range(rounds):
        t, serial_cpu, serial = clocked(partial(converge_rules.run, ruleset, facts))
        serial_t.append(t)
        executor = ProcessExecutor(workers)
        t, parent_cpu, forked = clocked(partial(converge_rules.run, ruleset, facts,
                                                executor=executor))
        forked_t.append(t)
        agree = (agree and serial.status == forked.status == "converged"
                 and serial.to_json() == forked.to_json())
        busiest, total = max(executor.worker_cpu, default=0.0), sum(executor.worker_cpu)
        local = executor.local_cpu
        for name, value in (("serial", serial_cpu), ("parent", parent_cpu),
                            ("local", local), ("max", busiest), ("sum", total),
                            ("critical", serial_cpu / (parent_cpu - local
                                                       + max(local, busiest))),
                            ("work", (parent_cpu + total) / serial_cpu)):
            cpu[name].append(value)
    s, p = statistics.median(serial_t), statistics.median(forked_t)
    med = {name: round(statistics.median(values), 4) for name, values in cpu.items()}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"workload": f"{agents} join agents, {rows:,} x {rows:,} facts on {keys} keys, "
            f"processes ({workers} workers) / serial", "serial_s": round(s, 4),
            "processes_s": round(p, 4), "speedup": round(s / p, 3), "target": CPU_TARGET,
            "met": s / p >= CPU_TARGET, "agree": agree, "cores": cores,
            "load": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "serial_cpu_s": med["serial"], "parent_cpu_s": med["parent"],
            "parent_agents_cpu_s": med["local"],
            "worker_cpu_max_s": med["max"], "worker_cpu_sum_s": med["sum"],
            "critical_speedup": round(med["critical"], 3), "work_ratio": round(med["work"], 3)}


# ------------------------------------------------------------------ many agents


def routing_ruleset(agents: int) -> str:
    """``agents`` agents, agent *i* matching ``Reading(kind: "k<i>")`` (a constant) and
    emitting ``Seen(kind: "k<i>")``: with routing by constants, each agent looks only
    at the readings of its own kind."""
    out = ['ruleset routing "Many agents, each matching one constant"', "",
           "fact Reading { kind: str, value: int }", "fact Seen { kind: str }", ""]
    for i in range(agents):
        out += [f"agent watch{i} {{", f'  when Reading(kind: "k{i}", value)',
                f'  emit Seen(kind: "k{i}")', "}"]
    return "\n".join(out) + "\n"


def routing_readings(agents: int, readings: int) -> list[tuple[str, int]]:
    """``readings`` (kind, value) pairs whose kinds cycle over the ``agents`` agents'."""
    return [(f"k{j % agents}", j) for j in range(readings)]


def routing_baseline(agents: int, readings: list[tuple[str, int]]) -> set[str]:
    """The hand loop: each reading routed by its kind (a dict) to the rule of the agent
    watching it, a Python function that returns the fact it derives; the derived facts
    are merged into a set."""
    def rule(kind: str) -> Callable[[int], str]:
        def fire(value: int) -> str:
            return kind
        return fire

    rules = {f"k{i}": rule(f"k{i}") for i in range(agents)}
    seen: set[str] = set()
    for kind, value in readings:
        fire = rules.get(kind)
        if fire is not None:
            seen.add(fire(value))
    return seen


def counters_ruleset(agents: int, cycles: int) -> str:
    """``agents`` agents, agent *i* counting its own keyed ``Count(id: "c<i>")`` up to
    ``cycles`` by an update in place (``resolve by latest``): one agent run and one
    replacement per agent per cycle."""
    out = ['ruleset counters "Many agents, each updating its own keyed counter"', "",
           f'root "count" {{ max_cycles = {cycles + 10} }}', "",
           "fact Count { key id: str, n: int }", "policy Count { resolve by latest }", ""]
    for i in range(agents):
        out += [f"agent count{i} {{", f'  when Count(id: "c{i}", n) where n < {cycles}',
                f'  emit Count(id: "c{i}", n: n + 1)', "}"]
    return "\n".join(out) + "\n"


def counters_baseline(agents: int, cycles: int) -> tuple[int, int, dict[str, int]]:
    """The hand loop: per cycle, each agent whose counter changed in the cycle before
    runs its rule on it; the merge keeps the latest value. Returns the cycles, the
    agent runs and the counters."""
    rules = [(f"c{i}", cycles) for i in range(agents)]
    context = {key: 0 for key, _ in rules}
    changed = set(context)
    n_cycles = runs = 0
    while changed:
        n_cycles += 1
        proposed = []
        for key, limit in rules:                  # the agents woken by a change
            if key in changed:
                runs += 1
                n = context[key]
                if n < limit:
                    proposed.append((key, n + 1))
        changed = set()
        for key, n in proposed:                   # the merge: latest wins
            if context[key] != n:
                context[key] = n
                changed.add(key)
    return n_cycles, runs, context


def measure_agents(agents: int = 200, readings: int = 10_000, cycles: int = 100,
                   rounds: int = 5) -> list[dict[str, Any]]:
    """The two many-agent workloads, engine against hand loop, alternating ``rounds``
    times (medians; CPU time): ``routing`` (``agents`` agents each matching a constant
    kind of ``readings`` readings; ``3 * rounds`` alternations, each side a few ms) and
    ``counters`` (``agents`` agents each updating its own keyed counter for ``cycles``
    cycles), with the time per agent run. ``agree`` in a
    row says whether the engine and the hand loop found the same answer (and, for the
    counters, the same number of cycles) every time; ``met`` whether the target is."""
    import converge_rules
    from converge_rules.engine import validate_pairs

    rows: list[dict[str, Any]] = []
    ruleset = converge_rules.loads(routing_ruleset(agents), plugins=False)
    pairs = routing_readings(agents, readings)
    facts = validate_pairs(ruleset.program,
                           [("Reading", {"kind": k, "value": v}) for k, v in pairs])
    base_t: list[float] = []
    eng_t: list[float] = []
    agree = True
    # CPU time, as the counters': on a shared machine a wall-clock sample of the ~1 ms
    # hand loop fits between two preemptions far more often than the engine's ~2.5 ms
    # does, so the wall ratio measured the load (3.4-16x at load 9 for one engine)
    for _ in range(3 * rounds):
        t, seen = cpu_timed(partial(routing_baseline, agents, pairs))
        base_t.append(t)
        t, result = cpu_timed(partial(converge_rules.run, ruleset, facts))
        eng_t.append(t)
        agree = agree and result.status == "converged" and {
            f["kind"] for f in result.facts("Seen")} == seen
    b, e = statistics.median(base_t), statistics.median(eng_t)
    rows.append({"workload": f"{agents} agents matching Reading(kind: <constant>), "
                 f"{len(result.store.values):,} facts", "baseline_s": round(b, 6),
                 "engine_s": round(e, 6), "ratio": round(e / b, 2), "target": 3.0,
                 "met": e / b <= 3.0, "agree": agree})
    ruleset = converge_rules.loads(counters_ruleset(agents, cycles), plugins=False)
    facts = validate_pairs(ruleset.program,
                           [("Count", {"id": f"c{i}", "n": 0}) for i in range(agents)])
    base_t, eng_t = [], []
    agree = True
    runs = 1
    for _ in range(rounds):
        # CPU time: on a machine shared with other work, wall time per agent run
        # measures the wait for a core as much as the run (a few µs either way)
        t, (b_cycles, runs, counts) = cpu_timed(partial(counters_baseline, agents, cycles))
        base_t.append(t)
        t, result = cpu_timed(partial(converge_rules.run, ruleset, facts))
        eng_t.append(t)
        agree = agree and result.status == "converged" and result.cycles == b_cycles and {
            f["id"]: f["n"] for f in result.facts("Count")} == counts
    b, e = statistics.median(base_t) / runs, statistics.median(eng_t) / runs
    rows.append({"workload": f"{agents} agents each updating its own keyed counter, "
                 f"{cycles} cycles", "baseline_s": round(b, 9), "engine_s": round(e, 9),
                 "per": "agent run", "ratio": round(e / b, 1), "target_engine_s": 5e-6,
                 "met": e <= 5e-6, "agree": agree})
    return rows


# ------------------------------------------------------ issue 11's target rows


CLOSURE_TARGET = 1.5
"""Closure: engine time / hand-written semi-naive time, at most (issue 11)."""

INPUT_RSS_TARGET = 1.5
"""1M input facts: peak RSS of ``converge run`` / of a Python set of the same tuples."""

COUNTER_RSS_TARGET = 1.05
"""Keyed counter: peak RSS of the job at 10x the cycles / at 1x, at most."""


def measure_closure(graphs: Sequence[tuple[str, list[tuple[int, int]]]],
                    rounds: int = 3) -> list[dict[str, Any]]:
    """Transitive closure of each named graph, :data:`CLOSURE_RULESET` against
    :func:`closure_baseline`, alternating ``rounds`` times (medians): one row per graph
    with both times, ``ratio`` (engine / baseline), ``target`` (:data:`CLOSURE_TARGET`),
    ``met``, and ``agree``: the engine converged and found exactly the baseline's paths
    every round. The engine's modules are imported by an untimed run first."""
    import converge_rules
    from converge_rules.engine import validate_pairs

    ruleset = converge_rules.loads(CLOSURE_RULESET, plugins=False)
    converge_rules.run(ruleset, [("Edge", {"src": 0, "dst": 1})])  # imports: start-up
    rows: list[dict[str, Any]] = []
    for name, edges in graphs:
        facts = validate_pairs(ruleset.program,
                               [("Edge", {"src": a, "dst": b}) for a, b in edges])
        base_t: list[float] = []
        eng_t: list[float] = []
        agree = True
        n_paths = 0
        for _ in range(rounds):
            t, paths = timed(partial(closure_baseline, edges))
            base_t.append(t)
            n_paths = len(paths)
            t, result = timed(partial(converge_rules.run, ruleset, facts))
            eng_t.append(t)
            agree = agree and result.status == "converged" and {
                (p["src"], p["dst"]) for p in result.facts("Path")} == paths
            del paths, result  # the random graph's answers are ~1 GB: one at a time
        b, e = statistics.median(base_t), statistics.median(eng_t)
        ratio = e / b
        rows.append({"graph": name, "paths": n_paths, "rounds": rounds,
                     "baseline_s": round(b, 6), "engine_s": round(e, 6),
                     "ratio": round(ratio, 3), "target": CLOSURE_TARGET,
                     "met": ratio <= CLOSURE_TARGET, "agree": agree})
    return rows


_PEAK_RSS_LAUNCHER = """\
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""Runs its arguments after the first as a child and writes the child's peak RSS to
the file named by the first. Why a launcher: the kernel counts in a process's peak
the memory of the process it was forked from, up to its ``exec``; forked from this
(large) process, a small child would report this one's size. Forked from the
launcher, a fresh interpreter of a few MiB, it reports its own."""


def peak_rss(argv: Sequence[str], stdout: Path) -> tuple[int | None, int]:
    """Run ``argv`` (its first item a path to an executable) as a process of its own
    (its output to the file ``stdout``, stderr discarded) and return its peak resident
    set size in bytes and its exit code. The peak is None where the OS does not report
    one (no ``fork``/``wait4``: Windows); then ``argv`` runs directly."""
    with stdout.open("wb") as out:
        if sys.platform == "win32":
            return None, subprocess.run(list(argv), stdout=out, stderr=subprocess.DEVNULL,
                                        check=False).returncode
        report = stdout.with_name(stdout.name + ".rss")
        code = subprocess.run([sys.executable, "-c", _PEAK_RSS_LAUNCHER, str(report),
                               *argv], stdout=out, stderr=subprocess.DEVNULL,
                              check=False).returncode
    try:
        kib_or_bytes = int(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, code
    finally:
        report.unlink(missing_ok=True)
    # ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
    return kib_or_bytes * (1 if sys.platform == "darwin" else 1024), code


SET_OF_TUPLES_SCRIPT = """\
import json, sys
held = {}
with open(sys.argv[1], encoding="utf-8") as lines:
    for line in lines:
        if line.strip():
            for name, fields in json.loads(line).items():
                held.setdefault(name, set()).add(tuple(fields.values()))
print(sum(map(len, held.values())))
"""
"""The memory baseline: the facts of a JSON Lines file (its path the one argument)
read into a set of value tuples per type, the standard library only; prints how many."""

COST_RULESET = """ruleset costs "Input facts held by a job"

fact Cost { sku: str, amount: float }
"""


def write_costs(path: Path, facts: int) -> None:
    """Write ``facts`` distinct ``Cost`` facts of :data:`COST_RULESET` to ``path`` as
    JSON Lines (``{"Cost": {"sku": "S0000000", "amount": 0.0}}``)."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(facts):
            out.write(json.dumps({"Cost": {"sku": f"S{i:07d}", "amount": i * 0.5}}) + "\n")


def _converge_run(ruleset: Path, facts: Path) -> list[str]:
    """``converge run`` of ``ruleset`` on ``facts`` with this interpreter and environment:
    no plugins (these workloads need none, and what is installed varies), one row per
    table (the tables are still built from the whole result), no colour."""
    return [sys.executable, "-m", "converge_rules.cli", "run", str(ruleset), "-f", str(facts),
            "--no-plugins", "--max-rows", "1", "--color", "never"]


def _status(output: str) -> tuple[str, int] | None:
    """The status and the cycles of ``converge run``'s last line (``converged in 12
    cycles``), or None."""
    found = re.search(r"^(\w+) in ([\d,]+) cycles?\s*$", output, re.MULTILINE)
    return (found[1], int(found[2].replace(",", ""))) if found else None


def measure_input_memory(facts: int, directory: Path) -> dict[str, Any]:
    """Peak RSS of ``converge run`` holding ``facts`` input facts read from a JSON Lines
    file (written in ``directory``), against a process reading the same file into a set
    of the same tuples (:data:`SET_OF_TUPLES_SCRIPT`), each a child process of its own:
    both peaks in MiB, ``ratio``, ``target`` (:data:`INPUT_RSS_TARGET`), ``met`` (False
    where the OS does not report the peaks), and ``agree``: the job converged holding
    as many facts as the set."""
    ruleset, path, out = (directory / "costs.cvg", directory / "costs.jsonl",
                          directory / "costs.out")
    ruleset.write_text(COST_RULESET, encoding="utf-8")
    write_costs(path, facts)
    base_rss, base_code = peak_rss([sys.executable, "-c", SET_OF_TUPLES_SCRIPT, str(path)],
                                   out)
    held = int(out.read_text(encoding="utf-8")) if base_code == 0 else -1
    eng_rss, eng_code = peak_rss(_converge_run(ruleset, path), out)
    output = out.read_text(encoding="utf-8")
    found = re.search(r"^Cost \(([\d,]+)\)", output, re.MULTILINE)
    agree = (eng_code == 0 and _status(output) == ("converged", 0)
             and found is not None and int(found[1].replace(",", "")) == held == facts)
    path.unlink()
    return _rss_row(f"{facts:,} input facts, converge run from JSON Lines, peak RSS",
                    base_rss, eng_rss, INPUT_RSS_TARGET, agree,
                    baseline="a Python set of the same tuples from the same file")


def measure_counter_memory(cycles: int, directory: Path) -> dict[str, Any]:
    """Peak RSS of ``converge run`` of one keyed counter updated in place
    (:func:`counters_ruleset` with one agent) for ``10 * cycles`` cycles, over the same
    for ``cycles`` cycles, each a child process of its own: a job that keeps nothing per
    cycle stays flat (``target`` :data:`COUNTER_RSS_TARGET`). ``agree``: both jobs
    converged after as many cycles as :func:`counters_baseline` and with its count."""
    facts = directory / "count.jsonl"
    facts.write_text(json.dumps({"Count": {"id": "c0", "n": 0}}) + "\n", encoding="utf-8")
    peaks: list[int | None] = []
    agree = True
    for n in (cycles, 10 * cycles):
        ruleset, out = directory / f"count{n}.cvg", directory / f"count{n}.out"
        ruleset.write_text(counters_ruleset(1, n), encoding="utf-8")
        rss, code = peak_rss(_converge_run(ruleset, facts), out)
        peaks.append(rss)
        output = out.read_text(encoding="utf-8")
        b_cycles, _, counts = counters_baseline(1, n)
        shown = re.search(r"^\W*c0\W+([\d,]+)\W*$", output, re.MULTILINE)
        agree = (agree and code == 0 and _status(output) == ("converged", b_cycles)
                 and shown is not None and int(shown[1].replace(",", "")) == counts["c0"])
    return _rss_row(f"keyed counter, peak RSS at {10 * cycles:,} cycles / at {cycles:,}",
                    peaks[0], peaks[1], COUNTER_RSS_TARGET, agree,
                    baseline=f"the same job, {cycles:,} cycles")


def _rss_row(workload: str, base: int | None, engine: int | None, target: float,
             agree: bool, baseline: str) -> dict[str, Any]:
    mib = 1024 * 1024
    ratio = engine / base if base and engine else None
    return {"workload": workload, "baseline": baseline,
            "baseline_mib": None if base is None else round(base / mib, 1),
            "engine_mib": None if engine is None else round(engine / mib, 1),
            "ratio": None if ratio is None else round(ratio, 3), "target": target,
            "met": ratio is not None and ratio <= target, "agree": agree}


# ------------------------------------------------------ issue 13's target rows (item 10)

STORE_TIME_TARGET = 1.3
"""A job with the SQLite store: run time / the same job's without a store, at most."""

STORE_RSS_TARGET = 1.2
"""The pruned job with the store: peak RSS at 10x the cycles / at 1x, under this."""

STORE_SIZE_TARGET = 1.2
"""The pruned job's store: bytes per cycle at 10x the cycles / at 1x, at most (the store
grows with what changed, not with the job's length)."""

PRUNED_RULESET = """\
ruleset ticker "A long job with pruning: the same change every cycle"
root "ticks" {
  max_cycles = 1000000
}
fact Tick { key id: str, n: int }
fact Reading { n: int, slot: int, value: int }
agent step { when Tick(id, n) where n < LIMIT emit Tick(id: id, n: n + 1) }
READERS
policy Tick { resolve by latest }
prune Reading when age >= 3
"""
"""A job of ``LIMIT`` cycles (issue 13 item 10's "10,000-cycle job with pruning"): each
cycle replaces its ``Tick``, adds ``READERS`` (agents ``read0``…) new ``Reading`` facts
and prunes as many (those three cycles old): the same change every cycle, a live
context of a few facts whatever the job's length. The readings are ``lasting``: one
resting on its ``Tick`` would be skipped, since the same merge replaces that ``Tick``."""


def pruned_ruleset(cycles: int, per_cycle: int = 1) -> str:
    """:data:`PRUNED_RULESET` for ``cycles`` cycles, adding and pruning ``per_cycle``
    readings each."""
    readers = "\n".join(
        f"agent read{i} {{ when Tick(id, n) emit lasting Reading(n: n, slot: {i}, "
        f"value: (n * 7 + {i}) % 13) }}" for i in range(per_cycle))
    return PRUNED_RULESET.replace("LIMIT", str(cycles)).replace("READERS", readers)


def store_workloads(quick: bool) -> list[tuple[str, str, list[tuple[str, dict[str, Any]]]]]:
    """The jobs timed with and without the store: ``(name, ruleset text, input
    facts)``. The pruned job is issue 13 item 10's own; the keyed counter (~20 µs a
    cycle: the store's cost per cycle laid bare) and the closure (~0.5 µs a fact: its
    cost per fact) are the hardest cases for a store that keeps every cycle's events."""
    cycles, counter, nodes = (1_000, 500, 100) if quick else (10_000, 5_000, 800)
    return [
        (f"pruned job, {cycles:,} cycles", pruned_ruleset(cycles),
         [("Tick", {"id": "t", "n": 0})]),
        (f"keyed counter, {counter:,} cycles", counters_ruleset(1, counter),
         [("Count", {"id": "c0", "n": 0})]),
        (f"closure, chain {nodes}", CLOSURE_RULESET,
         [("Edge", {"src": a, "dst": b}) for a, b in chain(nodes - 1)]),
    ]


def measure_store_time(directory: Path, quick: bool, rounds: int = 5
                       ) -> list[dict[str, Any]]:
    """Each of :func:`store_workloads` run without a store and with the SQLite store (a
    new file in ``directory`` each run), alternating, ``rounds`` times: the medians of
    the wall time and of this process's CPU time each way, ``ratio`` (wall with /
    without: run time), ``cpu_ratio``, ``target`` (:data:`STORE_TIME_TARGET`), ``met``,
    and ``agree``: the stored trace, exported, is the job's trace line for line, and
    both jobs ended alike. The engine's and the store's modules are imported by untimed
    runs first."""
    import converge_rules
    from converge_rules.engine import validate_pairs
    from converge_rules.store.sqlite import SqliteStore

    rows: list[dict[str, Any]] = []
    for name, text, pairs in store_workloads(quick):
        ruleset = converge_rules.loads(text, plugins=False)
        facts = validate_pairs(ruleset.program, pairs)
        warm = directory / "warm.db"
        converge_rules.run(ruleset, facts, now=None, store=warm)  # imports: start-up
        _drop_store(warm)
        times: dict[str, list[tuple[float, float]]] = {"none": [], "store": []}
        agree = True
        for i in range(rounds):
            db = directory / f"time{i}.db"
            ways: dict[str, Callable[[], Any]] = {
                "none": partial(converge_rules.run, ruleset, facts, now=None),
                "store": partial(converge_rules.run, ruleset, facts, now=None, store=db)}
            results: dict[str, Any] = {}
            for way in (ways if i % 2 == 0 else list(reversed(ways))):
                gc.collect()
                cpu_start, wall_start = time.process_time(), time.perf_counter()
                results[way] = ways[way]()
                times[way].append((time.perf_counter() - wall_start,
                                   time.process_time() - cpu_start))
            if i == 0:
                with SqliteStore(db) as store:
                    exported = "".join(f"{line}\n" for line in
                                       store.trace_lines(store.job(None).id))
                agree = (exported == results["store"].trace.to_jsonl()
                         and results["store"].status == results["none"].status
                         and results["store"].cycles == results["none"].cycles)
            del results
            _drop_store(db)
        wall = {way: statistics.median(t[0] for t in v) for way, v in times.items()}
        cpu = {way: statistics.median(t[1] for t in v) for way, v in times.items()}
        ratio = wall["store"] / wall["none"]
        rows.append({"workload": name, "rounds": rounds,
                     "none_s": round(wall["none"], 6), "store_s": round(wall["store"], 6),
                     "none_cpu_s": round(cpu["none"], 6), "store_cpu_s": round(cpu["store"], 6),
                     "ratio": round(ratio, 3), "cpu_ratio": round(cpu["store"] / cpu["none"], 3),
                     "target": STORE_TIME_TARGET, "met": ratio <= STORE_TIME_TARGET,
                     "agree": agree})
    return rows


def _drop_store(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _stored_pruned(directory: Path, cycles: int, per_cycle: int
                   ) -> tuple[int | None, int, bool]:
    """``converge run --store`` of :func:`pruned_ruleset` as a process of its own: its
    peak RSS (bytes, None where the OS does not say), the store's bytes (the file and
    its WAL after the job), and whether it converged after ``cycles + 1`` cycles."""
    ruleset = directory / f"pruned{cycles}x{per_cycle}.cvg"
    ruleset.write_text(pruned_ruleset(cycles, per_cycle), encoding="utf-8")
    facts = directory / "tick.jsonl"
    facts.write_text(json.dumps({"Tick": {"id": "t", "n": 0}}) + "\n", encoding="utf-8")
    db, out = directory / f"pruned{cycles}x{per_cycle}.db", directory / "pruned.out"
    _drop_store(db)
    rss, code = peak_rss([*_converge_run(ruleset, facts), "--store", str(db)], out)
    size = sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())
    agree = code == 0 and _status(out.read_text(encoding="utf-8")) == ("converged",
                                                                          cycles + 1)
    _drop_store(db)
    return rss, size, agree


def measure_store_growth(directory: Path, quick: bool) -> list[dict[str, Any]]:
    """The pruned job with the store at ``n`` and ``10 * n`` cycles (``n`` = 1,000;
    100 with ``quick``), each a process of its own: peak RSS at 10x over at 1x
    (:data:`STORE_RSS_TARGET`: memory stays flat however long the job) and the store's
    bytes per cycle at 10x over at 1x (:data:`STORE_SIZE_TARGET`: the store grows with
    what changed); with ``detail``, the bytes per cycle of the job at ``n`` cycles
    changing 3, 9 and 33 facts a cycle (1, 4, 16 readings added and pruned, the tick
    replaced): what proportional to the delta looks like."""
    n = 100 if quick else 1_000
    small, large = _stored_pruned(directory, n, 1), _stored_pruned(directory, 10 * n, 1)
    per_cycle = [(1 + 2 * k, round(_stored_pruned(directory, n, k)[1] / (n + 1)))
                 for k in (4, 16)]
    agree = small[2] and large[2]
    memory = _rss_row(f"pruned job with the store, peak RSS at {10 * n:,} cycles / at {n:,}",
                      small[0], large[0], STORE_RSS_TARGET, agree,
                      baseline=f"the same job, {n:,} cycles")
    memory["met"] = memory["ratio"] is not None and memory["ratio"] < STORE_RSS_TARGET
    b_small, b_large = small[1] / (n + 1), large[1] / (10 * n + 1)
    size_ratio = b_large / b_small
    size = {"workload": f"pruned job, store bytes per cycle at {10 * n:,} cycles / at {n:,}",
            "baseline": f"the same job, {n:,} cycles",
            "bytes_per_cycle": round(b_small), "bytes_per_cycle_10x": round(b_large),
            "by_changed_facts": [[3, round(b_small)], *map(list, per_cycle)],
            "ratio": round(size_ratio, 3), "target": STORE_SIZE_TARGET,
            "met": size_ratio <= STORE_SIZE_TARGET, "agree": agree}
    return [memory, size]
