"""Two source trees on `converge bench`'s routing workload, side by side: CPU time of
the engine's run, the hand loop's in the same process, and the trace, byte for byte
(issue 11).

    python bench/engine/routing_paired.py BEFORE_TREE AFTER_TREE [--pairs 6] [--rounds 30]

Each tree is a checkout of converge_rules (e.g. ``git worktree add --detach /tmp/base
main``). A pair is one process per tree, in alternating order (before first in even
pairs, after first in odd ones), each importing converge_rules from its tree only and
running ``--rounds`` alternating rounds of the routing workload (``--agents`` agents
each matching ``Reading(kind: <constant>)`` on ``--readings`` readings) and of its hand
loop (``routing_baseline``), each sample after a collection (as ``converge bench``),
reporting the median CPU time of each; then once more
writing the trace to a file, whose SHA-256 it reports. The script prints every pair,
the medians over the pairs, the engine / hand-loop ratio of each tree, and fails
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
import gc, hashlib, json, statistics, sys, tempfile, time
from pathlib import Path
import converge_rules
from converge_rules.benchmarks import routing_baseline, routing_readings, routing_ruleset
from converge_rules.engine import validate_pairs

agents, readings, rounds = map(int, sys.argv[1:4])
ruleset = converge_rules.loads(routing_ruleset(agents), plugins=False)
pairs = routing_readings(agents, readings)
facts = validate_pairs(ruleset.program,
                       [("Reading", {"kind": k, "value": v}) for k, v in pairs])
seen = routing_baseline(agents, pairs)
converge_rules.run(ruleset, facts)
eng, base = [], []
for _ in range(rounds):
    # collected before each sample, as converge bench's row: neither side pays for
    # the other's young garbage
    gc.collect()
    start = time.process_time()
    routing_baseline(agents, pairs)
    base.append(time.process_time() - start)
    gc.collect()
    start = time.process_time()
    result = converge_rules.run(ruleset, facts)
    eng.append(time.process_time() - start)
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "trace.jsonl"
    traced = converge_rules.run(ruleset, facts, trace=path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    lines = path.read_bytes().count(b"\n")
print(json.dumps({
    "engine": statistics.median(eng), "base": statistics.median(base),
    "trace_sha256": digest, "trace_lines": lines, "status": traced.status,
    "cycles": traced.cycles,
    "agree": {f["kind"] for f in result.facts("Seen")} == seen,
    "module": converge_rules.__file__,
}))
"""


def child(tree: Path, agents: int, readings: int, rounds: int) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    # run from the tree: ``python -c`` puts the working directory first on sys.path
    out = subprocess.run([sys.executable, "-c", CHILD, str(agents), str(readings),
                          str(rounds)],
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
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--readings", type=int, default=10_000)
    args = ap.parse_args(argv)
    runs: dict[str, dict[str, list[float]]] = {
        "before": {"engine": [], "base": []}, "after": {"engine": [], "base": []}}
    same = True
    for i in range(args.pairs):
        order = [("before", args.before), ("after", args.after)]
        if i % 2:
            order.reverse()
        got = {name: child(tree, args.agents, args.readings, args.rounds)
               for name, tree in order}
        b, a = got["before"], got["after"]
        for name in ("before", "after"):
            for k in ("engine", "base"):
                runs[name][k].append(float(got[name][k]))  # type: ignore[arg-type]
        equal = all(b[k] == a[k] for k in ("trace_sha256", "trace_lines", "status", "cycles"))
        same = same and equal and bool(a["agree"]) and bool(b["agree"])
        print(f"pair {i + 1} ({order[0][0]} first): before {float(b['engine']) * 1e3:.3f} ms"
              f" ({float(b['engine']) / float(b['base']):.2f}x), after "  # type: ignore[arg-type]
              f"{float(a['engine']) * 1e3:.3f} ms ({float(a['engine']) / float(a['base']):.2f}x)"  # type: ignore[arg-type]
              f" CPU; hand loop {float(b['base']) * 1e3:.3f} / {float(a['base']) * 1e3:.3f} ms;"  # type: ignore[arg-type]
              f" trace {'identical' if equal else 'DIFFERENT'} ({a['trace_lines']} lines)",
              flush=True)
    med = {name: {k: statistics.median(v) for k, v in r.items()} for name, r in runs.items()}
    mb, ma = med["before"], med["after"]
    print(f"medians over {args.pairs} pairs: engine before {mb['engine'] * 1e3:.3f} ms, after "
          f"{ma['engine'] * 1e3:.3f} ms ({mb['engine'] / ma['engine']:.2f}x faster); hand "
          f"loop {mb['base'] * 1e3:.3f} / {ma['base'] * 1e3:.3f} ms; engine / hand loop: "
          f"before {mb['engine'] / mb['base']:.2f}x, after {ma['engine'] / ma['base']:.2f}x; "
          f"load average {os.getloadavg()[0]:.1f}")
    if not same:
        print("the two trees' traces or results differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
