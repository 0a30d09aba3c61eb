"""Resuming a job whose program uses invariants, knowledge and blobs (issue 13, item 2):
from its checkpoints against re-executing it (its checkpoints deleted, the fallback).

    python bench/store/bench_checkpoint_features.py [--cycles N] [--rounds R]

Two keyed counters run ``--cycles`` cycles; each cycle also emits a note holding a blob
(moved into knowledge two cycles later) and a fact a ``never`` invariant screens. The
job is stopped five cycles before its end and resumed, on copies of the store, from its
checkpoints and by re-executing, alternating, ``--rounds`` each; CPU time of this
process (``time.process_time``), medians. Each resume is checked to have taken the
path it measures; both give the uninterrupted run's result (the tests check that).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import converge_rules
from converge_rules import api

RULESET = """\
ruleset features
root "r" {{ max_cycles = {limit} }}
fact Count {{ key id: str, n: int }}
fact Note {{ key id: str, key n: int, body: blob }}
fact Wild {{ id: str, n: int }}
agent step {{
  when Count(id, n) where n < {cycles}
  emit Count(id: id, n: n + 1)
  emit lasting Note(id: id, n: n, body: blob("note " + id + " " + str(n)))
}}
agent wild {{ when Count(id, n) emit Wild(id: id, n: n * 10) }}
policy Count {{ resolve by latest }}
prune Note when age >= 2 into knowledge
invariant tame never Wild(n) where n > {top}
"""


def measure(cycles: int, rounds: int) -> tuple[list[float], list[float], int]:
    """CPU seconds of each resume from checkpoints and re-executing; the cycle the
    job was stopped after."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "features.cvg").write_text(RULESET.format(
            cycles=cycles, limit=cycles + 50, top=cycles * 10 - 50))
        ruleset = converge_rules.load(tmp / "features.cvg")
        facts = [("Count", {"id": "a", "n": 0}), ("Count", {"id": "b", "n": 0})]
        asked = iter([False] * (cycles - 5))
        base = tmp / "base.db"
        stopped = api.run(ruleset, facts, store=base, now=None,
                          stop=lambda: next(asked, True))
        assert stopped.status == "interrupted", stopped.status
        times: dict[str, list[float]] = {"checkpoint": [], "re-executing": []}
        for i in range(rounds):
            order = ("checkpoint", "re-executing")
            for kind in order if i % 2 == 0 else order[::-1]:
                db = tmp / f"{kind}{i}.db"
                shutil.copy(base, db)
                if kind == "re-executing":
                    with sqlite3.connect(db) as conn:
                        conn.execute("DELETE FROM checkpoints")
                began = time.process_time()
                result = api.resume(db, ruleset=ruleset)
                times[kind].append(time.process_time() - began)
                assert (result.resumed_from is None) == (kind == "re-executing"), kind
        return times["checkpoint"], times["re-executing"], stopped.cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, nargs="+", default=[300, 2000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("| cycles | stopped after | from checkpoints | re-executing | ratio |")
    print("|---|---|---|---|---|")
    for cycles in args.cycles:
        ck, re_, stopped = measure(cycles, args.rounds)
        a, b = statistics.median(ck), statistics.median(re_)
        print(f"| {cycles:,} | {stopped:,} | {a * 1000:.0f} ms | {b * 1000:.0f} ms | "
              f"{b / a:.1f}x |")


if __name__ == "__main__":
    main()
