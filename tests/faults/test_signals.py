"""Signals at any point of ``run``, ``fmt`` and ``test``: no user file is lost or
half-written, and every interrupted command says so.

Found: SIGINT made ``converge run`` exit 1 — the code of ``budget_exceeded`` — with no
partial result. Now the first SIGINT (or SIGTERM) ends the job after its current cycle
with status ``interrupted``, the partial result printed and exit code 130 (143)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CONSOLE = Path(sys.executable).with_name("converge")

LONG = """ruleset long
uses tool mark
root "count for ever" {
  max_cycles = 100_000_000
}
fact Tick { key n: int }
fact Started { key n: int }
agent next {
  when Tick(n)
  emit Tick(n: n + 1)
}
agent started {
  when Tick(n) where n == 3
  call mark(n: n) as m
  emit Started(n: m.n)
}
"""

# A tool that says, by creating a file, that the job is running its cycles: signals
# are sent only then, whatever the machine's load. A test block mocks the tool: there
# the function ``running`` says it (a test run calls functions as they are).
MARKER_PLUGIN = """
from pathlib import Path
from pydantic import BaseModel
from converge_rules.plugins.api import Function, Tool, hookimpl

class N(BaseModel):
    n: int

def mark(args):
    Path("started").write_text("yes")
    return {"n": args.n}

def running(n):
    if n == 3:
        Path("started").write_text("yes")
    return True

@hookimpl
def converge_register_tools(register):
    register(Tool("mark", mark, N, N))

@hookimpl
def converge_register_functions(register):
    register(Function("running", running, ("int",), "bool"))
"""


def start(tmp: Path, *args: str, ruleset: str = LONG) -> subprocess.Popen[str]:
    (tmp / "long.cvg").write_text(ruleset)
    (tmp / "in.jsonl").write_text('{"Tick": {"n": 0}}\n')
    (tmp / "marker_plugin.py").write_text(MARKER_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), *sys.path]),
           "CONVERGE_DISABLE_PLUGINS": "converge-http,converge-llm,converge-example,converge-ray"}
    return subprocess.Popen([str(CONSOLE), "--plugin", "marker_plugin", *args], cwd=tmp,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    # a command started in the background of a shell inherits SIGINT ignored (and
    # `converge test` then never hears it): the signals sent here must be heard
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.02)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_prints_its_partial_result_and_a_complete_trace(
    tmp_path: Path, signum: int, code: int,
) -> None:
    (tmp_path / "trace.jsonl").write_text('{"event": "an earlier trace"}\n')
    proc = start(tmp_path, "run", "long.cvg", "-f", "in.jsonl", "--format", "json",
                 "--trace", "trace.jsonl")
    wait_for(tmp_path / "started", proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "interrupted; stopping after the current cycle" in err
    result = json.loads(out)
    assert result["status"] == "interrupted"
    assert result["facts"]["Started"] == [{"n": 3}]  # the partial result is there
    lines = (tmp_path / "trace.jsonl").read_text(encoding="utf-8").split("\n")[:-1]
    events = [json.loads(line) for line in lines]  # complete: every line is JSON
    assert events[-1]["event"] == "status" and events[-1]["status"] == "interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in.jsonl", "long.cvg", "marker_plugin.py", "started", "trace.jsonl"]


def test_a_second_interrupt_stops_at_once_and_keeps_the_previous_trace(
    tmp_path: Path,
) -> None:
    previous = '{"event": "an earlier trace"}\n'
    (tmp_path / "trace.jsonl").write_text(previous)
    proc = start(tmp_path, "run", "long.cvg", "-f", "in.jsonl", "--trace", "trace.jsonl")
    wait_for(tmp_path / "started", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    if "was left as it was" in err:  # the second signal came before the first cycle ended
        assert (tmp_path / "trace.jsonl").read_text() == previous
    else:  # the job had already stopped, and its trace was committed
        assert json.loads((tmp_path / "trace.jsonl").read_text().split("\n")[-2])[
            "status"] == "interrupted"
    assert "Traceback" not in err
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_interrupted_test_run_says_so_and_writes_no_report(tmp_path: Path) -> None:
    (tmp_path / "report.xml").write_text("<previous/>\n")
    ruleset = LONG.replace("when Tick(n)\n", "when Tick(n) where running(n)\n", 1)
    assert ruleset != LONG
    proc = start(tmp_path, "test", "long.cvg", "--format", "junit", "-o", "report.xml",
                 ruleset=ruleset + """
test "counts" {
  given Tick(n: 0)
  mock tool mark(n: 3) returns {n: 3}
  expect Tick(n: 1)
}
""")
    # the test's job runs its cycles (was: a sleep of 1.5 s, which a loaded machine
    # could spend before converge handled signals: exit -2 with a traceback)
    wait_for(tmp_path / "started", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    assert (tmp_path / "report.xml").read_text() == "<previous/>\n"


UGLY = "ruleset r\nfact A {key x:int}\n" + "".join(
    f"agent a{i} {{ when A(x)   emit A(x:x+{i}) }}\n" for i in range(30))


@pytest.mark.parametrize("seed", range(4))
def test_fmt_killed_at_a_random_moment_loses_no_file(tmp_path: Path, seed: int) -> None:
    from converge_rules.language.format.formatter import format_source

    names = [f"f{i:02}.cvg" for i in range(40)]
    for name in names:
        (tmp_path / name).write_text(UGLY)
    formatted = format_source(UGLY)
    proc = subprocess.Popen([str(CONSOLE), "fmt", *names], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(random.Random(seed).uniform(0.1, 1.2))
    proc.send_signal(random.Random(seed).choice([signal.SIGINT, signal.SIGTERM,
                                                 signal.SIGKILL]))
    proc.communicate(timeout=60)
    for name in names:
        assert (tmp_path / name).read_text() in (UGLY, formatted), name


def test_a_second_interrupt_after_the_trace_was_committed_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found as a flaky CI run on a loaded machine: the second Ctrl-C landed after the
    trace of the partial run had been renamed into place, and the message said the
    previous trace 'was left as it was' while the file held the new one."""
    from click.testing import CliRunner

    from converge_rules import api
    from converge_rules.cli import main

    (tmp_path / "r.cvg").write_text("ruleset r\nfact A { x: int }\n")
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"event": "an earlier trace"}\n')

    def committed_then_interrupted(*args: object, **kwargs: object) -> None:
        new = tmp_path / "new.tmp"
        new.write_text('{"event": "status", "status": "interrupted"}\n')
        os.replace(new, trace)
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "run", committed_then_interrupted)
    result = CliRunner().invoke(main, ["run", str(tmp_path / "r.cvg"), "--no-plugins",
                                       "--trace", str(trace)])
    assert "holds the trace of the partial run" in result.output
    assert "left as it was" not in result.output


SLOW_OBSERVER_PLUGIN = MARKER_PLUGIN + """
import time

@hookimpl
def converge_on_result(result):
    Path("observing").write_text("yes")
    time.sleep(60)
"""


def test_ctrl_c_while_the_result_is_written_stops_at_once(tmp_path: Path) -> None:
    # Found as a flaky run of the test above on a loaded machine: a signal that came
    # after the job had ended (while observers ran and the result was printed) met the
    # default handler: click's "Aborted!" with exit 1, or a traceback.
    (tmp_path / "short.cvg").write_text("ruleset short\nfact Tick { key n: int }\n")
    (tmp_path / "in.jsonl").write_text('{"Tick": {"n": 0}}\n')
    (tmp_path / "slow_plugin.py").write_text(SLOW_OBSERVER_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
           "CONVERGE_DISABLE_PLUGINS": "converge-http,converge-llm,converge-example,converge-ray"}
    proc = subprocess.Popen([str(CONSOLE), "--plugin", "slow_plugin", "run", "short.cvg",
                             "-f", "in.jsonl", "--trace", "trace.jsonl"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for(tmp_path / "observing", proc)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30  # not after the observer's 60 s
    assert proc.returncode == 130, err
    assert "stopped at once while writing the result; trace.jsonl holds its trace" in err
    assert "Traceback" not in err and "Aborted" not in err
    events = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().split(
        "\n")[:-1]]
    assert events[-1]["status"] == "converged"
