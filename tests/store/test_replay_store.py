"""``converge replay`` against a store (issue 13 item 8), on every backend: a stored
job replays identically without calling its tools; a changed ruleset is caught at the
first divergence, named by cycle, agent and fact; a job whose process died replays as
far as it got; bad usage is a clear error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from tests.cli.test_replay import INPUT, PLUGIN, PRICING
from tests.store.conftest import Backend
from tests.store.test_sqlite_store import KILLER, counter


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "fx_plugin_for_store_replay.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS", "converge-example")
    return "fx_plugin_for_store_replay"


def test_a_stored_job_replays_identically_without_calling_its_tools(
    tmp_path: Path, backend: Backend, plugin: str,
) -> None:
    import importlib

    facts = tmp_path / "in.jsonl"
    facts.write_text("".join(json.dumps(f) + "\n" for f in INPUT), encoding="utf-8")
    for _ in range(2):  # job 1 with the tools' answers, job 2 with others
        assert invoke("--plugin", plugin, "run", PRICING, "-f", facts, "--store",
                      backend.location).exit_code == 0
        facts.write_text(json.dumps(INPUT[0]) + "\n")
    module = importlib.import_module(plugin)
    module.CALLS.clear()
    out = tmp_path / "again.jsonl"
    result = invoke("--plugin", plugin, "replay", PRICING, backend.location, "--job", "1",
                    "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("identical:")
    assert module.CALLS == []  # every answer came from the stored trace
    exported = invoke("trace", "export", backend.location, "--job", "1")
    assert out.read_text() == exported.stdout
    assert '"tool_call"' in exported.stdout
    # without --job: the newest job
    assert invoke("replay", PRICING, backend.location).stdout.startswith("identical:")


def test_a_changed_ruleset_is_caught_at_its_first_divergence(
    tmp_path: Path, backend: Backend,
) -> None:
    ruleset, facts = counter(tmp_path, 6)
    assert invoke("run", ruleset, "-f", facts, "--store", backend.location).exit_code == 0
    changed = tmp_path / "changed.cvg"
    changed.write_text(ruleset.read_text().replace("n: n + 1", "n: n + 2"))
    result = invoke("replay", changed, backend.location, "--job", "1")
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("differs at line ")
    # the first event that differs is the merge's conflict on the key: its winner is
    # the agent's output, recorded and replayed
    assert first.endswith(
        f"of {backend.name} job 1: cycle 1, agent step: recorded a conflict on Count "
        '{"id": "a"} (winner {"id": "a", "n": 1}), replayed a conflict on Count '
        '{"id": "a"} (winner {"id": "a", "n": 2})'), first
    recorded, replayed = result.stdout.splitlines()[1:3]
    assert recorded.startswith("  recorded: {") and '"winner":{"id":"a","n":1}' in recorded
    assert replayed.startswith("  replayed: {") and '"winner":{"id":"a","n":2}' in replayed


def test_a_change_in_the_input_facts_read_is_named_as_such(
    tmp_path: Path, backend: Backend,
) -> None:
    ruleset, facts = counter(tmp_path, 3)
    assert invoke("run", ruleset, "-f", facts, "--store", backend.location).exit_code == 0
    # a ruleset that no longer has the agent: the first cycle starts with none
    changed = tmp_path / "changed.cvg"
    changed.write_text(ruleset.read_text().replace("agent step", "agent stride"))
    result = invoke("replay", changed, backend.location)
    assert result.exit_code == 1
    assert ("cycle 1: recorded started cycle 1 with agents step, replayed started cycle 1 "
            "with agents stride") in result.stdout


def test_a_job_whose_process_died_replays_as_far_as_it_got(
    tmp_path: Path, backend: Backend,
) -> None:
    ruleset, facts = counter(tmp_path, 10)
    (tmp_path / "killer.py").write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # one transaction per cycle: the job keeps exactly cycles 0-4
    proc = subprocess.run([sys.executable, "killer.py", str(ruleset), str(facts), "4",
                           backend.grouped(1)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    result = invoke("replay", ruleset, backend.location)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("identical as far as it got: ")
    assert "job 1 did not finish, status running: its trace ends after cycle 4" in (
        result.stdout)
    changed = tmp_path / "changed.cvg"
    # b (from 5) now stops at 8: the first divergence is in cycle 4
    changed.write_text(ruleset.read_text().replace("n < 10", "n < 8"))
    result = invoke("replay", changed, backend.location)
    assert result.exit_code == 1
    assert ": cycle 4, agent step: " in result.stdout.splitlines()[0]


def test_replay_usage_errors_say_what_to_give(tmp_path: Path, backend: Backend) -> None:
    ruleset, facts = counter(tmp_path, 3)
    assert invoke("run", ruleset, "-f", facts, "--store", backend.location).exit_code == 0
    result = invoke("replay", ruleset, backend.location, "--job", "9")
    assert result.exit_code == 2
    assert f"the store {backend.name} has no job 9; its jobs are 1" in result.output
    invoke("run", ruleset, "-f", facts, "--trace", tmp_path / "t.jsonl")
    result = invoke("replay", ruleset, tmp_path / "t.jsonl", "--job", "1")
    assert result.exit_code == 2
    assert "--job is for a store" in result.output
    result = invoke("replay", ruleset, "mysql://host/db")
    assert result.exit_code == 2
    assert "'mysql' is not a registered job store" in result.output
    if backend.path is not None:
        result = invoke("replay", ruleset, f"sqlite:///{backend.path}", "-o", backend.path)
        assert result.exit_code == 2
        assert "writing it would destroy it" in result.output
