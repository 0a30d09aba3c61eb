"""``converge run --stream``: the live events on stdout as JSON Lines, each as the
trace writes it, the result on stderr; a reader that goes away ends the stream, not
the job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from converge_rules.cli import main
from converge_rules.integrity import strip_hash

REPO = Path(__file__).resolve().parents[2]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"
PRICING_INPUT = REPO / "rulesets" / "pricing" / "input.jsonl"


def test_stream_writes_the_live_events_of_the_trace_to_stdout(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    res = CliRunner().invoke(main, ["run", str(PRICING), "-f", str(PRICING_INPUT),
                                    "--stream", "--trace", str(trace), "--format", "json"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert events[0]["event"] == "cycle_start"
    assert events[-1]["event"] == "status" and events[-1]["status"] == "converged"
    assert {"effect_merged", "conflict", "cycle_end"} <= {e["event"] for e in events}
    trace_lines = iter(map(strip_hash, trace.read_text().splitlines()))
    assert all(line in trace_lines for line in lines)  # trace lines, in trace order
    assert json.loads(res.stderr)["status"] == "converged"  # the result on stderr


COUNTER = """\
ruleset counter
root "count" {
  max_cycles = 3000
}
fact Count { key id: str, n: int }
agent step {
  when Count(id, n)
  where n < 2000
  emit Count(id: id, n: n + 1)
}
policy Count {
  resolve by latest
}
"""


def test_stream_to_a_reader_that_leaves_early_still_finishes_the_job(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rules = tmp_path / "counter.cvg"
    rules.write_text(COUNTER)
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Count": {"id": "a", "n": 0}}\n')
    # 2,000 cycles stream far more than a pipe holds: writes fail once it is closed
    proc = subprocess.Popen(
        [sys.executable, "-m", "converge_rules.cli", "run", str(rules), "-f", str(facts),
         "--stream"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0, err
    assert json.loads(first)["event"] == "cycle_start"
    assert "Traceback" not in err
    assert "converged in 2001 cycles" in err
