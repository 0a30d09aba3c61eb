"""converge_rules against clingo and CLIPS on their own benchmarks, side by side.

    python bench/peers/run.py [--quick] [--rounds N] [--only NAME ...] [--no-install]
                              [--json FILE]

Workloads (``--quick``: the small sizes in brackets, for a smoke run and the test):

* transitive closure, against clingo: a chain of 800 nodes (319,600 paths) [60] and a
  random graph of 2,000 nodes and 4,000 edges, seed 42 (2,608,430 paths) [150/300];
* Waltz line labelling of 50 regions [12], against CLIPS: ``rulesets/waltz/waltz.cvg``
  and ``waltz.clp``, the same classic OPS5 / CLIPS algorithm;
* Miss Manners, 128 guests [16], against CLIPS: ``rulesets/manners/manners.cvg`` and
  ``manners.clp``.

Each side runs as a process of its own (``worker.py``): first once untimed, writing
its answer, which is checked (closure: the same path set; Waltz: the same label on
every edge, each direction; Manners: each side's seating is valid: every guest once,
neighbours of opposite sex with a hobby in common); then ``--rounds`` timed runs of
each side, alternating which
side goes first. A row reports the medians and the ratio converge / peer of **compute**
(the engine's own work, timed inside the process) and of the **whole process** (start
to answer in hand: interpreter start-up, imports, loading the program and the input,
compute), in wall time, and the whole process's CPU time (user + system), which a
machine busy with other work moves less.

The peers come from PyPI. If this interpreter cannot import ``clingo`` and ``clips``,
the script makes a venv of their own (``$CONVERGE_PEERS_VENV``, default
``~/.cache/converge-rules/peers-venv``) and installs them there with pip, unless
``--no-install`` (then it stops, exit status 2). Exit status 1 if any answer check
fails.

The converge side of Waltz and Manners runs ``rulesets/waltz/waltz.cvg`` and
``rulesets/manners/manners.cvg`` (or ``waltz.cvg`` and ``manners.cvg`` from
``$CONVERGE_PEERS_RULESETS``, to try another version); the contract they follow is
:data:`CONVERGE_CONTRACT`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = ROOT / "bench" / "data"
sys.path.insert(0, str(ROOT))

from converge_rules.benchmarks import CLOSURE_RULESET, chain, random_graph  # noqa: E402

PEERS = ("clingo==5.8.3", "clipspy==1.0.6")
"""What the peers' venv installs: the versions these programs were written against."""

NODE_LIMIT = 1_000_003  # as in worker.py: closure answers are src * NODE_LIMIT + dst

CONVERGE_CONTRACT = """\
The converge side of Waltz and Manners is rulesets/waltz/waltz.cvg and
rulesets/manners/manners.cvg (or the waltz.cvg and manners.cvg in
$CONVERGE_PEERS_RULESETS). Their input is the .fct file's facts, each template a fact
type named in CamelCase (guest: Guest, last_seat: LastSeat, count: Count, context:
Context, line: Line, stage: Stage), its slots the fields, converted to each field's
declared type (an enum's value by its name); only the types the ruleset declares are
given. Their answer: Waltz, every Edge(p1: int, p2: int, label) fact, a directed edge
and its label (boundary, plus or minus; unknown if none); Manners, the Seating(id,
seat2) fact whose seat2 is LastSeat's seat, and the Path(id, name, seat) facts of its
id: the final seating."""


@dataclass
class Sample:
    """One timed process: compute and whole-process wall seconds, whole-process CPU."""

    compute: float
    whole: float
    whole_cpu: float


@dataclass
class Side:
    """One side of a workload: how to start its worker, and what its runs measured."""

    system: str                 # converge, clingo or clips
    python: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, what: str) -> float:
        return statistics.median(getattr(s, what) for s in self.samples)


@dataclass
class Workload:
    name: str                   # closure, waltz or manners: the worker's workload
    label: str                  # the row's name in the table
    size: str
    workdir: Path
    ruleset: Path               # converge's ruleset
    converge: Side
    peer: Side
    check: Callable[[Path, Path], tuple[bool, str]]
    agree: bool | None = None
    verdict: str = ""


# --- the peers ---------------------------------------------------------------------

def _imports_peers(python: str) -> bool:
    done = subprocess.run([python, "-c", "import clingo, clips"], capture_output=True,
                          check=False)
    return done.returncode == 0


def peer_python(install: bool) -> str | None:
    """An interpreter that imports clingo and clips: this one, else the peers' venv,
    made and filled with pip when missing and ``install``; None if there is none."""
    if _imports_peers(sys.executable):
        return sys.executable
    home = Path(os.environ.get("CONVERGE_PEERS_VENV")
                or Path.home() / ".cache" / "converge-rules" / "peers-venv")
    python = str(home / "bin" / "python")
    if Path(python).exists() and _imports_peers(python):
        return python
    if not install:
        return None
    print(f"installing {' '.join(PEERS)} into {home} ...", flush=True)
    venv.create(home, with_pip=True, clear=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *PEERS], check=True)
    return python if _imports_peers(python) else None


# --- inputs ------------------------------------------------------------------------

_FACT = re.compile(r"^\((\w+)((?:\s*\(\w+\s+[^()]*\))*)\s*\)$")
_SLOT = re.compile(r"\((\w+)\s+([^()]*?)\s*\)")


def read_fct(path: Path) -> list[tuple[str, dict[str, str]]]:
    """The facts of a CLIPS fact file of one-line template facts, ``(t (slot v) ...)``,
    as (template, {slot: value text}) in file order."""
    facts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        match = _FACT.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: not a one-line template fact: {line!r}")
        facts.append((match[1], dict(_SLOT.findall(match[2]))))
    return facts


def camel(template: str) -> str:
    """``last_seat`` -> ``LastSeat``: a CLIPS template's name as a converge fact type."""
    return "".join(part[:1].upper() + part[1:] for part in template.split("_"))


def converge_facts(ruleset: Any, facts: Iterable[tuple[str, dict[str, str]]]
                   ) -> list[dict[str, dict[str, Any]]]:
    """The .fct facts as converge input facts, by :data:`CONVERGE_CONTRACT`: the types
    the ruleset declares, each slot it declares converted to the field's type."""
    types = {t.name: t for t in ruleset.program.types if not t.intent}
    convert = {"int": int, "float": float, "bool": lambda v: v == "TRUE"}
    out = []
    for template, slots in facts:
        spec = types.get(camel(template))
        if spec is None:
            continue
        fields = {f.name: f.type.base for f in spec.fields}
        out.append({spec.name: {name: convert.get(fields[name], str)(value)
                                for name, value in slots.items() if name in fields}})
    return out


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")


def closure_workload(label: str, nodes: int, edges: list[tuple[int, int]], workdir: Path,
                     converge: Side, peer: Side) -> Workload:
    """Write the closure inputs (converge: the ruleset and Edge facts as JSON Lines;
    clingo: edge/2 facts) and the workload that checks both find the same paths."""
    workdir.mkdir(parents=True)
    assert all(a < NODE_LIMIT and b < NODE_LIMIT for a, b in edges)
    (workdir / "closure.cvg").write_text(CLOSURE_RULESET, encoding="utf-8")
    write_jsonl(workdir / "closure.jsonl", ({"Edge": {"src": a, "dst": b}} for a, b in edges))
    (workdir / "edges.lp").write_text("".join(f"edge({a},{b}).\n" for a, b in edges),
                                      encoding="utf-8")
    return Workload("closure", label, f"{nodes} nodes, {len(edges)} edges", workdir,
                    workdir / "closure.cvg", converge, peer, check=same_paths)


def converge_ruleset(name: str) -> Path:
    """The converge ruleset of Waltz or Manners: ``NAME.cvg`` in
    ``$CONVERGE_PEERS_RULESETS`` when it is set, else ``rulesets/NAME/NAME.cvg``."""
    chosen = os.environ.get("CONVERGE_PEERS_RULESETS")
    return Path(chosen) / f"{name}.cvg" if chosen else ROOT / "rulesets" / name / f"{name}.cvg"


def clips_workload(name: str, label: str, fct: Path, workdir: Path, converge: Side,
                   peer: Side) -> Workload:
    """Write a Waltz or Manners input (the .fct for CLIPS; for converge, its facts as
    JSON Lines) and its workload."""
    import converge_rules

    workdir.mkdir(parents=True)
    shutil.copyfile(fct, workdir / f"{name}.fct")
    facts = read_fct(fct)
    cvg = converge_ruleset(name)
    ruleset = converge_rules.load(cvg, plugins=False)
    write_jsonl(workdir / f"{name}.jsonl", converge_facts(ruleset, facts))
    if name == "waltz":
        size = f"{sum(1 for t, _ in facts if t == 'line')} lines"
        return Workload(name, label, size, workdir, cvg, converge, peer, check=same_labels)
    size = f"{len({s['name'] for t, s in facts if t == 'guest'})} guests"
    return Workload(name, label, size, workdir, cvg, converge, peer,
                    check=lambda a, b: both_valid(facts, a, b))


# --- answer checks -----------------------------------------------------------------

def same_paths(converge: Path, peer: Path) -> tuple[bool, str]:
    """Closure: both sides' sorted path codes are the same."""
    ours, theirs = array("q"), array("q")
    ours.frombytes(converge.read_bytes())
    theirs.frombytes(peer.read_bytes())
    if ours == theirs:
        return True, f"same {len(ours):,} paths"
    missing, extra = set(theirs) - set(ours), set(ours) - set(theirs)
    return False, (f"different paths: converge {len(ours):,}, clingo {len(theirs):,} "
                   f"({len(missing):,} only in clingo, {len(extra):,} only in converge)")


def same_labels(converge: Path, peer: Path) -> tuple[bool, str]:
    """Waltz: the same edges, each direction, with the same label on each."""
    ours = {(a, b): lab for a, b, lab in json.loads(converge.read_text(encoding="utf-8"))}
    theirs = {(a, b): lab for a, b, lab in json.loads(peer.read_text(encoding="utf-8"))}
    if ours and ours == theirs:
        counts = ", ".join(f"{n:,} {lab}" for lab, n in
                           sorted(Counter(ours.values()).items()))
        return True, f"same labels on {len(ours):,} edges ({counts})"
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    first = ", ".join(f"{a}-{b}: {ours.get((a, b))} vs {theirs.get((a, b))}"
                      for a, b in differ[:3])
    return False, f"{len(differ):,} edges labelled differently (converge vs CLIPS: {first})"


def valid_seating(facts: Sequence[tuple[str, dict[str, str]]],
                  seating: Sequence[Sequence[Any]]) -> str | None:
    """What is wrong with a Manners seating (``[seat, name]`` pairs), or None when it
    is valid: seats 1 to ``last_seat`` each taken once, by every guest once, and each
    two neighbours of opposite sex with a hobby in common (the table is a row: the
    last seat is not next to the first)."""
    sex: dict[str, str] = {}
    hobbies: dict[str, set[str]] = {}
    last = 0
    for template, slots in facts:
        if template == "guest":
            sex[slots["name"]] = slots["sex"]
            hobbies.setdefault(slots["name"], set()).add(slots["hobby"])
        elif template == "last_seat":
            last = int(slots["seat"])
    seats = [int(seat) for seat, _ in seating]
    names = [str(name) for _, name in seating]
    if sorted(seats) != list(range(1, last + 1)):
        return f"seats {sorted(seats)[:5]}... are not 1 to {last}, each once"
    if sorted(names) != sorted(sex):
        return "not every guest is seated exactly once"
    order = [name for _, name in sorted(zip(seats, names, strict=True))]
    for seat, (left, right) in enumerate(itertools.pairwise(order), 1):
        if sex[left] == sex[right]:
            return f"seats {seat} and {seat + 1} ({left}, {right}) are of the same sex"
        if not hobbies[left] & hobbies[right]:
            return f"seats {seat} and {seat + 1} ({left}, {right}) share no hobby"
    return None


def seating_check(facts: Sequence[tuple[str, dict[str, str]]], answer: Path,
                  who: str) -> tuple[bool, str]:
    problem = valid_seating(facts, json.loads(answer.read_text(encoding="utf-8")))
    return problem is None, f"{who} seating valid" if problem is None else \
        f"{who} seating invalid: {problem}"


def both_valid(facts: Sequence[tuple[str, dict[str, str]]], converge: Path,
               peer: Path) -> tuple[bool, str]:
    """Manners: each side's seating is valid (there are many valid seatings)."""
    ok_c, says_c = seating_check(facts, converge, "converge")
    ok_p, says_p = seating_check(facts, peer, "CLIPS")
    return ok_c and ok_p, f"{says_c}; {says_p}"


# --- running -----------------------------------------------------------------------

def run_side(side: Side, work: Workload, answer: Path | None = None) -> Sample:
    """Start one worker process and time it; raise with its error output if it fails."""
    argv = [side.python, str(HERE / "worker.py"), side.system, work.name, str(work.workdir)]
    if side.system == "converge":
        argv += ["--ruleset", str(work.ruleset)]
    if answer is not None:
        argv += ["--answer", str(answer)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    # Each side runs as installed, from compiled bytecode (the untimed first run writes
    # it where the sources allow): with PYTHONDONTWRITEBYTECODE set, every timed run
    # would compile converge's modules from source again, which no installed copy does.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cpu_before = _children_cpu()
    start = time.time()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    cpu = _children_cpu() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"{side.system} on {work.label} failed "
                           f"(exit {done.returncode}):\n{done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Sample(report["compute"], report["done"] - start, cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(work: Workload, rounds: int) -> None:
    """Check the answers (one untimed run of each side), then time ``rounds`` runs of
    each side, alternating which goes first."""
    sides = [work.converge, work.peer]
    answers = {}
    for side in sides:
        answers[side.system] = work.workdir / f"answer-{side.system}"
        run_side(side, work, answers[side.system])
    work.agree, work.verdict = work.check(answers["converge"], answers[work.peer.system])
    for r in range(rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            side.samples.append(run_side(side, work))


def table(works: Sequence[Workload]) -> str:
    head = (f"{'workload':<24} {'size':<22} {'peer':<7} {'compute: converge':>17} "
            f"{'peer':>8} {'ratio':>6} {'whole: converge':>15} {'peer':>8} {'ratio':>6} "
            f"{'CPU ratio':>9}  answers")
    lines = [head, "-" * len(head)]
    for w in works:
        c, p = w.converge, w.peer
        if c.samples and p.samples:
            cells = (f"{c.median('compute'):>17.3f} {p.median('compute'):>8.3f} "
                     f"{c.median('compute') / p.median('compute'):>6.2f} "
                     f"{c.median('whole'):>15.3f} {p.median('whole'):>8.3f} "
                     f"{c.median('whole') / p.median('whole'):>6.2f} "
                     f"{c.median('whole_cpu') / p.median('whole_cpu'):>9.2f}")
        else:  # no timed rounds (--rounds 0): the answers only
            cells = (f"{'-':>17} {'-':>8} {'-':>6} {'-':>15} {'-':>8} {'-':>6} {'-':>9}")
        mark = "ok" if w.agree else "FAILED"
        lines.append(f"{w.label:<24} {w.size:<22} {p.system:<7} {cells}  {mark}: {w.verdict}")
    return "\n".join(lines)


MEASURES = ("compute", "whole", "whole_cpu")


def report(works: Sequence[Workload], rounds: int) -> dict[str, Any]:
    """The results as JSON-ready data (``--json``)."""
    rows = []
    for w in works:
        row: dict[str, Any] = {"workload": w.label, "size": w.size, "peer": w.peer.system,
                               "agree": w.agree, "answers": w.verdict}
        medians = {key: {what: round(side.median(what), 4) for what in MEASURES}
                   for side, key in ((w.converge, "converge"), (w.peer, "peer"))
                   if side.samples}
        row["median_s"] = medians
        if len(medians) == 2:
            row["ratio"] = {what: round(medians["converge"][what] / medians["peer"][what], 3)
                            for what in MEASURES}
        rows.append(row)
    return {"rounds": rounds, "python": sys.version.split()[0], "cpus": os.cpu_count(),
            "load": os.getloadavg(), "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--rounds", type=int, help="timed runs of each side (default 5; "
                        "--quick: 1)")
    parser.add_argument("--only", nargs="+", choices=("closure", "chain", "waltz", "manners"),
                        help="run only these workloads (chain: the closure of the chain "
                             "alone, without the random graph)")
    parser.add_argument("--no-install", action="store_true",
                        help="never install the peers: stop if they are missing")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else 1 if args.quick else 5
    peers = peer_python(install=not args.no_install)
    if peers is None:
        print("run.py: clingo and clipspy are not installed; run without --no-install, or "
              "pip install clingo clipspy", file=sys.stderr)
        return 2
    only = set(args.only or ("closure", "waltz", "manners"))
    with tempfile.TemporaryDirectory(prefix="converge-peers-") as tmp:
        base = Path(tmp)
        works: list[Workload] = []
        if "closure" in only or "chain" in only:
            # chain(n) is n edges between n + 1 nodes.
            graphs = ([("closure chain 60", 60, chain(59)),
                       ("closure random 150/300", 150, random_graph(150, 300, seed=42))]
                      if args.quick else
                      [("closure chain 800", 800, chain(799)),
                       ("closure random 2000/4000", 2000,
                        random_graph(2000, 4000, seed=42))])
            if "closure" not in only:
                graphs = graphs[:1]
            for i, (label, nodes, edges) in enumerate(graphs):
                works.append(closure_workload(label, nodes, edges, base / f"closure{i}",
                                              Side("converge", sys.executable),
                                              Side("clingo", peers)))
        for name, size in (("waltz", 12 if args.quick else 50),
                           ("manners", 16 if args.quick else 128)):
            if name in only:
                works.append(clips_workload(
                    name, f"{name} {size}", DATA / name / f"{name}{size}.fct", base / name,
                    Side("converge", sys.executable), Side("clips", peers)))
        print(f"{rounds} timed round(s) a side; Python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
        for work in works:
            print(f"  {work.label} ...", flush=True)
            measure(work, rounds)
        print()
        print(table(works))
        if args.json:
            args.json.write_text(json.dumps(report(works, rounds), indent=2) + "\n",
                                 encoding="utf-8")
    return 0 if all(w.agree for w in works) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError, OSError, ValueError) as error:
        print(f"run.py: {error}", file=sys.stderr)
        sys.exit(1)
