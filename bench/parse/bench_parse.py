"""Parse-and-check throughput on generated rulesets, and a linearity check.

    python bench/parse/bench_parse.py [--lines 20000]

Prints lines per second for parse alone and for parse + check at several sizes, and the
ratio of per-line cost at the largest size against the smallest (1.0 = perfectly linear).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from converge_rules.benchmarks import generated_ruleset
from converge_rules.language.checks.checker import check_file
from converge_rules.language.syntax.parser import parse

generate = generated_ruleset


def measure(fn: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=20_000)
    args = parser.parse_args()
    sizes = [args.lines // 8, args.lines // 4, args.lines // 2, args.lines]
    print(f"{'lines':>8} {'parse s':>9} {'parse l/s':>11} {'check s':>9} {'check l/s':>11}")
    per_line: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            text = generate(size)
            n = text.count("\n")
            path = Path(tmp) / f"gen{size}.cvg"
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
    ratio = per_line[-1] / per_line[0]
    print(f"linearity: per-line cost at {sizes[-1]} lines / at {sizes[0]} lines = {ratio:.2f} "
          "(1.0 is linear; above 2 would mean super-linear growth)")


if __name__ == "__main__":
    main()
