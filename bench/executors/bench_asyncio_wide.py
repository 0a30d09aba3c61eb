"""1,000 asyncio agents per cycle (issue 12 item 6), in CPU time, paired with a baseline.

    python bench/executors/bench_asyncio_wide.py [--baseline DIR] [--rounds N] [--runs N]
                                                 [--agents N] [--json FILE]

The workload is ``measure_io``'s wide row: ``io_ruleset(agents, 10)``, each agent
calling an async tool that awaits ``asyncio.sleep(0.05)`` once a cycle, on ``asyncio``
with ``workers = agents``; the ideal is 10 x 50 ms. On a loaded machine the wall clock
says little (a bare ``asyncio.gather`` of the same sleeps takes 2-4x the ideal at load
20), so each job's **CPU time** is measured beside it: the whole process's
(``process_time``), the engine's thread (``thread_time`` of the caller) and the job's
event loop thread (its ``thread_time`` read on the loop when the job ends).

Each round runs one subprocess per side, in alternating order: this checkout, and
with ``--baseline DIR`` (another checkout, e.g. ``/work/main``) the same script under
``PYTHONPATH=DIR``; each subprocess runs one untimed job, then ``--runs`` timed jobs
(each checked: converged in 10 cycles, every ``Done`` fact). The floor is the same
sleeps under a bare ``asyncio.gather`` per cycle, no engine. Medians are printed, and
the ratio of this checkout's CPU to the baseline's (measured in the same minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CYCLES = 10
LATENCY = 0.05


def _jobs(agents: int, runs: int) -> list[dict[str, float]]:
    """``runs`` timed jobs in this process (after an untimed one)."""
    import converge_rules
    from converge_rules.benchmarks import io_ruleset, io_tools
    from converge_rules.engine import tools as tools_module

    loop_cpu: list[float] = []
    close = tools_module.ToolBox.close

    def closing(box: Any) -> None:  # the loop thread's CPU, read on that thread
        loop = box._loop
        if loop is not None:
            async def cpu() -> float:
                return time.thread_time()
            loop_cpu.append(asyncio.run_coroutine_threadsafe(cpu(), loop).result())
        close(box)

    tools_module.ToolBox.close = closing  # type: ignore[method-assign]
    _, await_ = io_tools(LATENCY)
    ruleset = converge_rules.loads(io_ruleset(agents, CYCLES), plugins=False)
    tick = [("Tick", {"n": 0})]
    out: list[dict[str, float]] = []
    for k in range(runs + 1):
        loop_cpu.clear()
        cpu, engine, wall = time.process_time(), time.thread_time(), time.perf_counter()
        result = converge_rules.run(ruleset, tick, tools={"wait": await_},
                                    executor="asyncio", workers=agents)
        row = {"cpu": time.process_time() - cpu, "engine": time.thread_time() - engine,
               "loop": loop_cpu[0] if loop_cpu else float("nan"),
               "wall": time.perf_counter() - wall}
        assert result.status == "converged" and result.cycles == CYCLES, result.status
        assert len(result.facts("Done")) == agents * CYCLES
        if k:
            out.append(row)
    return out


def _floor(agents: int, runs: int) -> list[dict[str, float]]:
    async def cycles() -> None:
        for _ in range(CYCLES):
            await asyncio.gather(*(asyncio.sleep(LATENCY) for _ in range(agents)))

    asyncio.run(cycles())
    out = []
    for _ in range(runs):
        cpu, wall = time.process_time(), time.perf_counter()
        asyncio.run(cycles())
        out.append({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall})
    return out


def _side(path: str | None, what: str, agents: int, runs: int) -> list[dict[str, float]]:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = path
    done = subprocess.run(
        [sys.executable, __file__, "--worker", what, "--agents", str(agents),
         "--runs", str(runs)], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{what} under {path or 'this checkout'} failed:\n{done.stderr}")
    rows: list[dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="another checkout to pair with (PYTHONPATH)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="timed jobs per subprocess")
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--json", help="write the rows here too")
    parser.add_argument("--worker", choices=["jobs", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        rows = (_jobs if args.worker == "jobs" else _floor)(args.agents, args.runs)
        print(json.dumps(rows))
        return
    here = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    sides: dict[str, str | None] = {"this checkout": here}
    if args.baseline:
        sides["baseline"] = args.baseline
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    rows["gather floor"] = []
    loads = [_load()]
    for r in range(args.rounds):
        order = list(sides.items())
        for name, path in order if r % 2 == 0 else order[::-1]:
            rows[name] += _side(path, "jobs", args.agents, args.runs)
        rows["gather floor"] += _side(here, "floor", args.agents, args.runs)
        loads.append(_load())
    ideal = CYCLES * LATENCY
    print(f"{args.agents:,} agents x {CYCLES} cycles, asyncio; ideal {ideal:.3f} s; "
          f"load average {' '.join(loads)}; medians of {args.rounds} x {args.runs} jobs")
    print(f"{'':15} {'CPU s':>7} {'engine':>7} {'loop':>7} {'wall s':>7} {'wall/ideal':>10}")
    for name, got in rows.items():
        engine = _median(got, "engine") if "engine" in got[0] else float("nan")
        loop = _median(got, "loop") if "loop" in got[0] else float("nan")
        wall = _median(got, "wall")
        print(f"{name:15} {_median(got, 'cpu'):7.3f} {engine:7.3f} {loop:7.3f} "
              f"{wall:7.3f} {wall / ideal:9.2f}x")
    if args.baseline:
        ratio = _median(rows["this checkout"], "cpu") / _median(rows["baseline"], "cpu")
        print(f"CPU, this checkout / baseline: {ratio:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"loads": loads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
