"""Shared helpers for the bad-input sweep: run ``converge`` and insist that whatever
went wrong is reported in words, never as a Python traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main

CONSOLE_SCRIPT = Path(sys.executable).with_name("converge")


@dataclass(frozen=True)
class Outcome:
    """What one ``converge`` invocation printed, and its exit code."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def _no_traceback(outcome: Outcome) -> Outcome:
    assert "Traceback" not in outcome.text, outcome.text
    assert "internal error" not in outcome.text, outcome.text
    return outcome


@pytest.fixture
def converge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Outcome]:
    """Run ``converge ARGS`` in-process (CliRunner) from ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVERGE_DEBUG", raising=False)

    def run(*args: str, input: str | bytes | None = None) -> Outcome:
        result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"converge {' '.join(args)} raised "
                                 f"{result.exception!r}\n{result.output}")
        return _no_traceback(Outcome(result.exit_code, result.stdout, result.stderr))

    return run


@pytest.fixture
def converge_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Outcome]:
    """Run the real console script in a subprocess from ``tmp_path``."""
    monkeypatch.delenv("CONVERGE_DEBUG", raising=False)

    def run(*args: str, input: bytes | None = None) -> Outcome:
        done = subprocess.run([str(CONSOLE_SCRIPT), *args], cwd=tmp_path, input=input,
                              capture_output=True, timeout=120, check=False)
        return _no_traceback(Outcome(done.returncode, done.stdout.decode("utf-8", "replace"),
                                     done.stderr.decode("utf-8", "replace")))

    return run
