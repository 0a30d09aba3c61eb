"""Two source trees on compute-bound workloads, side by side: CPU time of the run and
the trace, byte for byte (issue 11: what the generated agents cost).

    python bench/compiler/compute_paired.py BEFORE_TREE AFTER_TREE [--pairs 5]
        [--rounds 3] [--only join closure waltz]

Each tree is a checkout of converge_rules (e.g. ``git archive <commit> | tar -x -C
/tmp/base``). A pair is one process per tree, in alternating order (before first in
even pairs, after first in odd ones), each importing converge_rules from its tree only
and running each workload ``--rounds`` times after an untimed warm-up run (the median
CPU time, ``time.process_time``, of the run), then once more writing its trace, whose
SHA-256 it reports. Workloads (the rulesets and inputs are this tree's, the same for
both sides):

* ``join``: ``converge bench``'s join-heavy ruleset (:func:`join_ruleset`, 4 agents)
  on :func:`join_facts` (4,000 rows a side, 40 keys): 400,000 join pairs an agent;
* ``closure``: transitive closure of a chain of 800 nodes (``bench/peers``' size);
* ``waltz``: Waltz line labelling of 50 regions (``bench/peers``' input).

The script prints every pair, the medians over the pairs and their ratio (before /
after: above 1 is faster), and fails (exit 1) when the two trees' traces differ in a
single byte or their results do.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

CHILD = r"""
import hashlib, json, statistics, sys, tempfile, time
from pathlib import Path
import converge_rules
from converge_rules.engine import read_facts

name, rounds, data = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
ruleset = converge_rules.load(data / f"{name}.cvg", plugins=False)
facts = read_facts(ruleset.program, data / f"{name}.jsonl")
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
print(json.dumps({"cpu": statistics.median(cpu), "best": min(cpu), "trace": digest,
                  "status": traced.status, "cycles": result.cycles,
                  "module": converge_rules.__file__}))
"""


def write_inputs(data: Path, only: set[str]) -> None:
    """Each workload's ruleset and input facts as files in ``data``."""
    sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "peers")]
    from run import converge_facts, read_fct

    import converge_rules
    from converge_rules.benchmarks import CLOSURE_RULESET, chain, join_facts, join_ruleset

    def write(name: str, ruleset: str, rows: list[dict[str, object]]) -> None:
        (data / f"{name}.cvg").write_text(ruleset, encoding="utf-8")
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows),
                                            encoding="utf-8")

    if "join" in only:
        write("join", join_ruleset(4), [{t: f} for t, f in join_facts(4_000, 40)])
    if "closure" in only:
        write("closure", CLOSURE_RULESET,
              [{"Edge": {"src": a, "dst": b}} for a, b in chain(799)])
    if "waltz" in only:
        text = (ROOT / "rulesets" / "waltz" / "waltz.cvg").read_text(encoding="utf-8")
        ruleset = converge_rules.loads(text, plugins=False)
        fct = read_fct(ROOT / "bench" / "data" / "waltz" / "waltz50.fct")
        write("waltz", text, converge_facts(ruleset, fct))


def child(tree: Path, name: str, rounds: int, data: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CHILD, name, str(rounds), str(data)],
                          env=env, cwd=data, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{tree} {name}: {done.stderr[-2000:]}")
    out: dict[str, object] = json.loads(done.stdout)
    assert str(out["module"]).startswith(str(tree)), out["module"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=("join", "closure", "waltz"),
                        default=["join", "closure", "waltz"])
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_inputs(data, set(args.only))
        for name in args.only:
            cpu: dict[str, list[float]] = {"before": [], "after": []}
            seen: dict[str, set[tuple[object, ...]]] = {"before": set(), "after": set()}
            print(f"{name}: load {os.getloadavg()[0]:.1f}", flush=True)
            for pair in range(args.pairs):
                order = ["before", "after"] if pair % 2 == 0 else ["after", "before"]
                got = {side: child(trees[side], name, args.rounds, data) for side in order}
                for side, out in got.items():
                    cpu[side].append(float(str(out["cpu"])))
                    seen[side].add((out["trace"], out["status"], out["cycles"]))
                print(f"  pair {pair}: before {got['before']['cpu']:.3f} s, "
                      f"after {got['after']['cpu']:.3f} s CPU "
                      f"({got['before']['status']}, {got['before']['cycles']} cycles)",
                      flush=True)
            before, after = statistics.median(cpu["before"]), statistics.median(cpu["after"])
            same = seen["before"] == seen["after"] and len(seen["before"]) == 1
            ok = ok and same
            (trace, _, _), = seen["before"] if len(seen["before"]) == 1 else [("?", 0, 0)]
            print(f"{name}: median CPU before {before:.3f} s, after {after:.3f} s, "
                  f"ratio {before / after:.2f}x; min {min(cpu['before']):.3f} / "
                  f"{min(cpu['after']):.3f} s; traces "
                  f"{'identical, sha256 ' + str(trace)[:12] if same else 'DIFFER'}; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
