"""Miss Manners and Waltz, the OPS5 benchmarks, run from `.cvg` (rulesets/manners,
rulesets/waltz) on the benchmarks' CLIPS fact files: the engine's time beside the
reference time of CLIPS 6.4.2 (through clipspy, depth strategy, `(run)` only) measured
on this kind of machine, and whether each answer is valid.

    python bench/classics/bench_classics.py [--data DIR] [--quick] [--all]

``--data`` is the folder holding ``manners/mannersN.fct`` and ``waltz/waltzN.fct``
(default: ../shared/bench beside the repository, else the small copies in bench/data).
``--quick`` runs the smallest sizes only; ``--all`` adds Manners 256 (about a minute).
The time is ``converge_rules.run`` alone (facts already read; one untimed warm-up run
first, so the engine's lazy imports are not counted).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import converge_rules

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from answers import manners_problems, waltz_problems  # noqa: E402
from clips_facts import read_file  # noqa: E402

#: seconds, from the shared bench README (CLIPS 6.4.2 through clipspy)
CLIPS = {
    ("manners", 16): 0.001, ("manners", 32): 0.008, ("manners", 64): 0.067,
    ("manners", 128): 0.84, ("manners", 256): 14.9,
    ("waltz", 12): 0.05, ("waltz", 25): 0.11, ("waltz", 37): 0.15, ("waltz", 50): 0.28,
}


def _data_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    shared = ROOT.parent / "shared" / "bench"
    return shared if shared.is_dir() else ROOT / "bench" / "data"


def _file(data: Path, name: str, size: int) -> Path | None:
    for path in (data / name / f"{name}{size}.fct", data / f"{name}{size}.fct"):
        if path.is_file():
            return path
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    data = _data_dir(args.data)
    sizes = {
        "manners": [8, 16, 32] if args.quick else [16, 32, 64, 128] + ([256] if args.all else []),
        "waltz": [12] if args.quick else [12, 25, 37, 50],
    }
    rulesets = {name: converge_rules.load(ROOT / "rulesets" / name / f"{name}.cvg",
                                          plugins=False) for name in sizes}
    warm = read_file(ROOT / "bench" / "data" / "manners8.fct", rulesets["manners"].program)
    converge_rules.run(rulesets["manners"], warm)  # untimed warm-up
    print(f"data: {data}")
    print(f"{'benchmark':<14}{'facts':>7}{'cycles':>8}{'converge s':>12}{'CLIPS s':>10}"
          f"{'ratio':>9}  answer")
    failed = False
    for name, ns in sizes.items():
        ruleset = rulesets[name]
        for n in ns:
            path = _file(data, name, n)
            if path is None:
                print(f"{name + str(n):<14}  (no data file in {data})")
                continue
            facts = read_file(path, ruleset.program)
            start = time.perf_counter()
            result = converge_rules.run(ruleset, facts)
            took = time.perf_counter() - start
            wanted = ("Seating", "Path") if name == "manners" else ("Edge", "Junction")
            found = {t: result.facts(t) for t in wanted}
            problems = (manners_problems(facts, found) if name == "manners"
                        else waltz_problems(facts, found))
            if result.status != "converged":
                problems.insert(0, f"status {result.status}: {result.detail}")
            ref = CLIPS.get((name, n))
            ratio = f"{took / ref:8.1f}x" if ref else f"{'':>9}"
            answer = "valid" if not problems else f"INVALID: {problems[0]} (+{len(problems) - 1})"
            failed |= bool(problems)
            print(f"{name + str(n):<14}{len(facts):>7}{result.cycles:>8}{took:>12.3f}"
                  f"{ref if ref else '':>10}{ratio}  {answer}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
