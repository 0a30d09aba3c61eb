"""``--workers`` is bounded: 400 forks on 2 cores used to be accepted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main
from converge_rules.engine.executors import fork_available


@pytest.fixture
def ruleset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"A": {"x": 1}}\n')
    path = tmp_path / "r.cvg"
    path.write_text("ruleset r\nfact A { x: int }\nfact B { x: int }\n"
                    "agent a { when A(x) emit B(x: x) }\n")
    return path


@pytest.mark.skipif(not fork_available(), reason="the processes executor needs fork")
def test_too_many_processes_is_a_usage_error_naming_the_limit(ruleset: Path) -> None:
    too_many = 4 * (os.cpu_count() or 1) + 1
    result = CliRunner().invoke(main, ["run", "r.cvg", "-f", "in.jsonl", "--executor",
                                       "processes", "--workers", str(too_many)])
    assert result.exit_code == 2
    assert f"{too_many} is outside 1..{too_many - 1}" in result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    ok = CliRunner().invoke(main, ["run", "r.cvg", "-f", "in.jsonl", "--executor",
                                   "processes", "--workers", "2"])
    assert ok.exit_code == 0, ok.output


def test_too_many_threads_is_a_usage_error(ruleset: Path) -> None:
    result = CliRunner().invoke(main, ["run", "r.cvg", "-f", "in.jsonl", "--executor",
                                       "threads", "--workers", "100000"])
    assert result.exit_code == 2
    assert "takes 1..1024 --workers, not 100000" in result.output


def test_asyncio_takes_its_max_concurrency_as_workers(ruleset: Path) -> None:
    result = CliRunner().invoke(main, ["run", "r.cvg", "-f", "in.jsonl", "--executor",
                                       "asyncio", "--workers", "100001"])
    assert result.exit_code == 2
    assert "takes 1..100_000 --workers" in result.output
    assert "Traceback" not in result.output
    ok = CliRunner().invoke(main, ["run", "r.cvg", "-f", "in.jsonl", "--executor",
                                   "asyncio", "--workers", "500", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    serial = CliRunner().invoke(main, ["run", "r.cvg", "-f", "in.jsonl", "--format", "json"])
    assert ok.output == serial.output
