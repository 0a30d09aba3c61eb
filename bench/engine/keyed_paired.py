"""Two source trees on the keyed-counter workload, side by side: CPU time per agent
run and the trace, byte for byte (issue 11).

    python bench/engine/keyed_paired.py BEFORE_TREE AFTER_TREE [--pairs 6] [--rounds 5]

Each tree is a checkout of converge_rules (e.g. ``git archive <commit> | tar -x -C
/tmp/base``). A pair is one process per tree, in alternating order (before first in
even pairs, after first in odd ones), each importing converge_rules from its tree only,
running ``converge bench``'s workload (``--agents`` agents each updating its own keyed
counter for ``--cycles`` cycles) ``--rounds`` times and reporting the median CPU time
per agent run (and the fastest round's); then once more writing its trace to a file,
whose SHA-256 it reports. The script prints every pair, the medians over the pairs and
their ratio, the fastest rounds (on a loaded machine the least disturbed), and fails
(exit 1) when the two trees' traces differ in a single byte or their results do.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import hashlib, json, statistics, sys, tempfile, time
from pathlib import Path
import converge_rules
from converge_rules.benchmarks import counters_baseline, counters_ruleset
from converge_rules.engine import validate_pairs

agents, cycles, rounds = map(int, sys.argv[1:4])
ruleset = converge_rules.loads(counters_ruleset(agents, cycles), plugins=False)
facts = validate_pairs(ruleset.program,
                       [("Count", {"id": f"c{i}", "n": 0}) for i in range(agents)])
_, runs, counts = counters_baseline(agents, cycles)
converge_rules.run(ruleset, facts)
cpu = []
for _ in range(rounds):
    start = time.process_time()
    result = converge_rules.run(ruleset, facts)
    cpu.append(time.process_time() - start)
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "trace.jsonl"
    traced = converge_rules.run(ruleset, facts, trace=path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    lines = path.read_bytes().count(b"\n")
print(json.dumps({
    "cpu_per_run": statistics.median(cpu) / runs, "best_per_run": min(cpu) / runs,
    "trace_sha256": digest,
    "trace_lines": lines, "status": traced.status, "cycles": traced.cycles,
    "agree": {f["id"]: f["n"] for f in result.facts("Count")} == counts,
    "module": converge_rules.__file__,
}))
"""


def child(tree: Path, agents: int, cycles: int, rounds: int) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    # run from the tree: ``python -c`` puts the working directory first on sys.path
    out = subprocess.run([sys.executable, "-c", CHILD, str(agents), str(cycles), str(rounds)],
                         env=env, cwd=tree, check=True, capture_output=True, text=True)
    data: dict[str, object] = json.loads(out.stdout)
    if not str(data["module"]).startswith(str(tree.resolve())):
        raise SystemExit(f"{tree}: converge_rules was imported from {data['module']}")
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--cycles", type=int, default=100)
    args = ap.parse_args(argv)
    before: list[float] = []
    after: list[float] = []
    best_before: list[float] = []
    best_after: list[float] = []
    same = True
    for i in range(args.pairs):
        order = [("before", args.before), ("after", args.after)]
        if i % 2:
            order.reverse()
        got = {name: child(tree, args.agents, args.cycles, args.rounds) for name, tree in order}
        b, a = got["before"], got["after"]
        before.append(float(b["cpu_per_run"]))  # type: ignore[arg-type]
        after.append(float(a["cpu_per_run"]))  # type: ignore[arg-type]
        best_before.append(float(b["best_per_run"]))  # type: ignore[arg-type]
        best_after.append(float(a["best_per_run"]))  # type: ignore[arg-type]
        equal = all(b[k] == a[k] for k in ("trace_sha256", "trace_lines", "status", "cycles"))
        same = same and equal and bool(a["agree"]) and bool(b["agree"])
        print(f"pair {i + 1} ({order[0][0]} first): before {before[-1] * 1e6:.2f} µs, "
              f"after {after[-1] * 1e6:.2f} µs CPU per agent run; trace "
              f"{'identical' if equal else 'DIFFERENT'} ({a['trace_lines']} lines, "
              f"sha256 {str(a['trace_sha256'])[:16]}…)", flush=True)
    mb, ma = statistics.median(before), statistics.median(after)
    print(f"medians over {args.pairs} pairs: before {mb * 1e6:.2f} µs, after {ma * 1e6:.2f} "
          f"µs CPU per agent run ({mb / ma:.2f}x faster); fastest round: before "
          f"{min(best_before) * 1e6:.2f} µs, after {min(best_after) * 1e6:.2f} µs "
          f"({min(best_before) / min(best_after):.2f}x); load average "
          f"{os.getloadavg()[0]:.1f}")
    if not same:
        print("the two trees' traces or results differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
