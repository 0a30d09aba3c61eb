"""Reading input facts: throughput per format and how linear it is.

    python bench/inputs/bench_inputs.py [--quick]

Writes N ``Quote`` facts as JSON Lines, as a pretty-printed JSON array (one fact over
seven lines, as editors write them) and as CSV, at 100k and 1M facts (``--quick``: 10k
and 100k), and reads each with ``read_facts`` (parse, validation, conversion). The
baseline, measured in the same run, is the standard library parsing the same file with
no validation (``json.loads`` per line, ``json.loads`` of the array, ``csv.DictReader``).

Prints facts per second for each, the ratio read/baseline, and **linearity**: the
per-fact cost at the larger size over the per-fact cost at the smaller (1.0 is linear;
a reader that scans from the start of the file for each fact shows ~10 here).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from converge_rules.benchmarks import measure_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes")
    args = parser.parse_args()
    sizes = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure_inputs(sizes, Path(tmp))
    print(f"{'format':<7} {'facts':>10} {'B/fact':>7} {'read s':>8} {'facts/s':>10} "
          f"{'baseline/s':>11} {'ratio':>6} {'linearity':>9}")
    for r in rows:
        print(f"{r['format']:<7} {r['facts']:>10,} {r['bytes_per_fact']:>7} "
              f"{r['seconds']:>8.2f} {r['facts_per_s']:>10,} "
              f"{r['baseline_facts_per_s']:>11,} {r['ratio']:>6.2f} {r['linearity']:>9.2f}")
    print(f"linearity: per-fact cost at {sizes[1]:,} facts / at {sizes[0]:,} facts "
          "(1.0 is linear)")


if __name__ == "__main__":
    main()
