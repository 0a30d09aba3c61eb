"""Parse-and-check throughput on generated rulesets, and a linearity check.

    python bench/parse/bench_parse.py [--lines 20000] [--agents 20000] [--unknown 10000]
                                      [--quick]

Three workloads, each at four sizes (1/8, 1/4, 1/2 and all of the size given):

* a generated ruleset of realistic shape (``--lines`` lines): parse alone and
  parse + check;
* ``--agents`` agents emitting one type (the shape that took 275 s to check 20k agents
  when the checker compared whole agents to list each type's producers);
* ``--unknown`` references to misspelt fact types among as many declared ones (every
  one a CVG101 error with a "did you mean", and the report that ``converge check``
  prints).

For each it prints lines per second, and the ratio of per-line cost at the largest size
against the smallest (1.0 = perfectly linear; a quadratic step doubles it with each
doubling of the size, 8 over these sizes).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from converge_rules.benchmarks import agents_ruleset, generated_ruleset, unknown_types_ruleset
from converge_rules.language.checks.checker import check, check_file
from converge_rules.language.diagnostics.render import render
from converge_rules.language.loader import load_file
from converge_rules.language.syntax.parser import parse

generate = generated_ruleset


def measure(fn: Callable[[], object], repeat: int = 3) -> float:
    """The best wall time of ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def linearity(per_line: list[float], sizes: list[int], what: str) -> None:
    ratio = per_line[-1] / per_line[0]
    print(f"linearity ({what}): per-line cost at {sizes[-1]:,} / at {sizes[0]:,} = "
          f"{ratio:.2f} (1.0 is linear; above 2 would mean super-linear growth)")


def realistic(lines: int, tmp: Path) -> None:
    sizes = [lines // 8, lines // 4, lines // 2, lines]
    print(f"\n== generated ruleset of realistic shape, {sizes[0]:,} to {sizes[-1]:,} lines")
    print(f"{'lines':>8} {'parse s':>9} {'parse l/s':>11} {'check s':>9} {'check l/s':>11}")
    per_line: list[float] = []
    for size in sizes:
        text = generate(size)
        n = text.count("\n")
        path = tmp / f"gen{size}.cvg"
        path.write_text(text)
        result = parse(text, str(path))
        assert not result.diagnostics, result.diagnostics[:3]
        checked = check_file(path)
        errors = [d for d in checked.diagnostics if d.is_error]
        assert not errors, errors[:3]
        t_parse = measure(lambda text=text, path=path: parse(text, str(path)))
        t_check = measure(lambda path=path: check_file(path), repeat=2)
        per_line.append(t_check / n)
        print(f"{n:>8} {t_parse:>9.3f} {n / t_parse:>11,.0f} "
              f"{t_check:>9.3f} {n / t_check:>11,.0f}")
    linearity(per_line, sizes, "parse + check")


def shaped(title: str, build: Callable[[int], str], count: int, tmp: Path,
           *, errors: int) -> None:
    """Load (parse), check alone, and render the text report, at four sizes of a
    generated shape; ``errors`` is how many error diagnostics each item brings."""
    sizes = [count // 8, count // 4, count // 2, count]
    print(f"\n== {title}, {sizes[0]:,} to {sizes[-1]:,}")
    print(f"{'items':>7} {'lines':>8} {'load s':>8} {'check s':>8} {'check l/s':>10} "
          f"{'report s':>9} {'total l/s':>10}")
    check_cost: list[float] = []
    total_cost: list[float] = []
    for size in sizes:
        text = build(size)
        n = text.count("\n")
        path = tmp / f"shape{size}.cvg"
        path.write_text(text)
        loaded = load_file(path)
        assert not loaded.diagnostics, loaded.diagnostics[:3]
        checked = check(loaded)
        found = [d for d in checked.diagnostics if d.is_error]
        assert len(found) == errors * size, (len(found), found[:3])
        t_load = measure(lambda path=path: load_file(path), repeat=2)
        t_check = measure(lambda loaded=loaded: check(loaded), repeat=2)
        t_report = measure(lambda checked=checked: render(
            "text", checked.diagnostics, checked.sources), repeat=2)
        total = t_load + t_check + t_report
        check_cost.append(t_check / n)
        total_cost.append(total / n)
        print(f"{size:>7,} {n:>8,} {t_load:>8.2f} {t_check:>8.2f} {n / t_check:>10,.0f} "
              f"{t_report:>9.2f} {n / total:>10,.0f}")
    linearity(check_cost, sizes, "check")
    linearity(total_cost, sizes, "load + check + report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--agents", type=int, default=20_000)
    parser.add_argument("--unknown", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true",
                        help="a tenth of each size (a smoke run)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory() as tmp:
        realistic(args.lines // scale, Path(tmp))
        shaped("agents emitting one type", agents_ruleset, args.agents // scale, Path(tmp),
               errors=0)
        shaped("references to unknown types among as many declared", unknown_types_ruleset,
               args.unknown // scale, Path(tmp), errors=1)


if __name__ == "__main__":
    main()
