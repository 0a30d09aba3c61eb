"""One side of one peer benchmark, in a process of its own (started by ``run.py``).

    python worker.py SYSTEM WORKLOAD WORKDIR [--ruleset FILE] [--answer FILE]

SYSTEM is ``converge``, ``clingo`` or ``clips``; WORKLOAD is ``closure``, ``waltz`` or
``manners``; WORKDIR holds the inputs ``run.py`` wrote for this workload; ``--ruleset`` is
converge's ruleset (default: WORKLOAD.cvg in WORKDIR, else ``rulesets/WORKLOAD/``). The worker
loads the program and the input, computes, and prints one JSON line:
``{"compute": wall s, "compute_cpu": CPU s, "done": time.time(), "size": n}``.
``compute`` is the engine's own work (converge: ``run``; clingo: ground and solve to
the model; CLIPS: ``load-facts`` and ``run``, since asserting is where CLIPS matches);
``done`` is the wall clock when the answer is in the host's hands, before it is
converted for the check, so ``run.py`` can time the whole process (start-up, imports,
loading the program and the input, compute) against its own start stamp. With
``--answer`` it then writes the answer in the check's format (closure: the sorted
``src * NODE_LIMIT + dst`` codes as int64; Waltz and Manners: JSON).

Only the side's own engine is imported: the peers may run from a venv of their own
without converge_rules, and converge runs without clingo or CLIPS loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from array import array
from pathlib import Path
from typing import Any

NODE_LIMIT = 1_000_003
"""Closure paths are checked as ``src * NODE_LIMIT + dst``: node ids must be below it.
A prime, not a power of two: clingo hashes numbers by their low bits, and with
``2**20`` every path to one node collided (grounding chain 800's codes took 400 s)."""

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# Waltz labels as the check writes them: converge's Mark values and CLIPS's symbols.
# CLIPS leaves an edge no rule could label nil and plots it as a boundary, where the
# converge ruleset writes `boundary` into it: both are B. An edge never labelled nor
# plotted (the run stopped short) is ?.
CONVERGE_LABELS = {"plus": "+", "minus": "-", "boundary": "B", "unknown": "?"}
CLIPS_LABELS = {"+": "+", "-": "-", "B": "B"}


def converge_side(workload: str, workdir: Path, path: Path | None
                  ) -> tuple[float, float, Any, Any]:
    """Run converge_rules on the workload: (compute s, compute CPU s, result, ruleset)."""
    import converge_rules

    if path is None:
        path = workdir / f"{workload}.cvg"
        path = path if path.exists() else ROOT / "rulesets" / workload / path.name
    ruleset = converge_rules.load(path, plugins=False)
    facts = converge_rules.read_facts(ruleset, workdir / f"{workload}.jsonl")
    # The engine's modules are imported on the first run: an empty run first, so that
    # compute is the engine's work (the whole process pays for the imports either way).
    converge_rules.run(ruleset, ())
    start, cpu = time.perf_counter(), time.process_time()
    result = converge_rules.run(ruleset, facts)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if result.status != "converged":
        raise SystemExit(f"converge: the run ended {result.status}, not converged")
    return elapsed, cpu, result, ruleset


def converge_answer(workload: str, result: Any) -> Any:
    """The converge run's answer in the check's format (see ``CONVERGE_CONTRACT`` in
    ``run.py`` for what the Waltz and Manners rulesets give): Waltz, ``[p1, p2,
    label]`` for every directed edge; Manners, the ``[seat, name]`` of the seating
    that fills the last seat (empty if none does)."""
    if workload == "closure":
        return sorted(p["src"] * NODE_LIMIT + p["dst"] for p in result.facts("Path"))
    if workload == "waltz":
        return sorted([f["p1"], f["p2"], CONVERGE_LABELS[f["label"]]]
                      for f in result.facts("Edge"))
    last = [f["seat"] for f in result.facts("LastSeat")]
    done = [f["id"] for f in result.facts("Seating") if [f["seat2"]] == last]
    if not done:
        return []
    return sorted([f["seat"], str(f["name"])] for f in result.facts("Path")
                  if f["id"] == done[0])


def clingo_closure(workdir: Path, answer: bool) -> tuple[float, float, Any]:
    """Closure with clingo: (compute s, compute CPU s, a function giving the answer)."""
    import clingo

    control = clingo.Control(["--warn=none"])
    control.load(str(HERE / "closure.lp"))
    control.load(str(workdir / "edges.lp"))
    if answer:
        # One number per path: reading 2.6M paths out of clingo symbol by symbol as
        # path(X, Y) takes about a minute through the bindings; as numbers a few seconds.
        control.add("check", [], f"#show. #show X * {NODE_LIMIT} + Y : path(X, Y).")
    start, cpu = time.perf_counter(), time.process_time()
    control.ground([("base", [])] + ([("check", [])] if answer else []))
    with control.solve(yield_=True) as handle:
        model = next(iter(handle))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        codes = sorted(s.number for s in model.symbols(shown=True)) if answer else None
    return elapsed, cpu, codes


def clips_side(workload: str, workdir: Path) -> tuple[float, float, Any]:
    """Waltz or Manners with CLIPS: (compute s, compute CPU s, the environment)."""
    import clips

    env = clips.Environment()
    env.load(str(HERE / f"{workload}.clp"))
    env.strategy = clips.Strategy.DEPTH
    env.reset()
    start, cpu = time.perf_counter(), time.process_time()
    env.load_facts(str(workdir / f"{workload}.fct"))
    env.run()
    return time.perf_counter() - start, time.process_time() - cpu, env


def _plotted(label: str, plotted: str) -> str:
    """A CLIPS Waltz edge's label as plotted: nil plotted is a boundary, nil not
    plotted (the run stopped short) is ?."""
    if label in CLIPS_LABELS:
        return CLIPS_LABELS[label]
    return "B" if plotted == "t" else "?"


def clips_answer(workload: str, env: Any) -> Any:
    """The CLIPS run's answer: Waltz, ``[p1, p2, label]`` for every directed edge, as
    plotted (unlabelled: B); Manners, the ``[seat, name]`` of the seating that fills
    the last seat (empty if none does)."""
    facts = list(env.facts())
    if workload == "waltz":
        return sorted([f["p1"], f["p2"], _plotted(str(f["label"]), str(f["plotted"]))]
                      for f in facts if f.template.name == "edge")
    last = next(f["seat"] for f in facts if f.template.name == "last_seat")
    done = [f["id"] for f in facts if f.template.name == "seating" and f["seat2"] == last]
    if not done:
        return []
    return sorted([f["seat"], str(f["name"])] for f in facts
                  if f.template.name == "path" and f["id"] == done[0])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("system", choices=("converge", "clingo", "clips"))
    parser.add_argument("workload", choices=("closure", "waltz", "manners"))
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--ruleset", type=Path)
    parser.add_argument("--answer", type=Path)
    args = parser.parse_args(argv)
    system, workload, workdir, answer_file = (args.system, args.workload, args.workdir,
                                              args.answer)
    answer: Any
    if system == "converge":
        elapsed, cpu, result, _ = converge_side(workload, workdir, args.ruleset)
        done = time.time()
        answer = converge_answer(workload, result) if answer_file else None
        size = None
    elif system == "clingo" and workload == "closure":
        elapsed, cpu, answer = clingo_closure(workdir, answer_file is not None)
        done = time.time()
        size = len(answer) if answer is not None else None
    elif system == "clips" and workload in ("waltz", "manners"):
        elapsed, cpu, env = clips_side(workload, workdir)
        done = time.time()
        answer = clips_answer(workload, env) if answer_file else None
        size = None
    else:
        raise SystemExit(f"worker: no {system} side for {workload}")
    if answer_file is not None:
        if workload == "closure":
            with answer_file.open("wb") as out:
                array("q", answer).tofile(out)
        else:
            answer_file.write_text(json.dumps(answer), encoding="utf-8")
        size = len(answer)
    print(json.dumps({"compute": elapsed, "compute_cpu": cpu, "done": done, "size": size}),
          flush=True)
    # The benchmark is over: skip freeing millions of objects one by one at exit.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
