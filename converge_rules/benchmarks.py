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
    times (medians): ``routing`` (``agents`` agents each matching a constant kind of
    ``readings`` readings) and ``counters`` (``agents`` agents each updating its own
    keyed counter for ``cycles`` cycles), with the time per agent run. ``agree`` in a
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
    for _ in range(rounds):
        t, seen = timed(partial(routing_baseline, agents, pairs))
        base_t.append(t)
        t, result = timed(partial(converge_rules.run, ruleset, facts))
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
        t, (b_cycles, runs, counts) = timed(partial(counters_baseline, agents, cycles))
        base_t.append(t)
        t, result = timed(partial(converge_rules.run, ruleset, facts))
        eng_t.append(t)
        agree = agree and result.status == "converged" and result.cycles == b_cycles and {
            f["id"]: f["n"] for f in result.facts("Count")} == counts
    b, e = statistics.median(base_t) / runs, statistics.median(eng_t) / runs
    rows.append({"workload": f"{agents} agents each updating its own keyed counter, "
                 f"{cycles} cycles", "baseline_s": round(b, 9), "engine_s": round(e, 9),
                 "per": "agent run", "ratio": round(e / b, 1), "target_engine_s": 5e-6,
                 "met": e <= 5e-6, "agree": agree})
    return rows
