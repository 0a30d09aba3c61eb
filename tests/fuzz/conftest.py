"""The fuzzing suite: hostile inputs against every command, with one property — no
internal error, no hang past a deadline, an exit code that means something (0, 1 or 2),
and every file converge wrote either valid or untouched.

In CI the examples are few and derandomized (the same inputs every run, a few minutes
in all). ``pytest tests/fuzz --fuzz`` runs many more, with fresh random inputs each
time: use it locally after touching a parser, a reader or a command."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, settings

from converge_rules.cli import main

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 20.0
"""No single command may take longer than this on any fuzzed input."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz", action="store_true", default=False,
                     help="fuzz for longer, with fresh random inputs (tests/fuzz)")


def pytest_configure(config: pytest.Config) -> None:
    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow,
                                                          HealthCheck.data_too_large,
                                                          HealthCheck.function_scoped_fixture]}
    settings.register_profile("fuzz-ci", max_examples=30, derandomize=True, **common)
    settings.register_profile("fuzz-long", max_examples=2000, **common)


@pytest.fixture
def fuzz_settings(request: pytest.FixtureRequest) -> settings:
    return settings.get_profile("fuzz-long" if request.config.getoption("--fuzz")
                                else "fuzz-ci")


class Hang(Exception):
    """A command ran past the fuzzing deadline."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` inside whatever runs for longer than ``seconds`` (main
    thread only; elsewhere the deadline is not enforced)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise Hang(f"ran past the {seconds} s deadline")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Outcome:
    code: int
    output: str


@pytest.fixture
def converge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outcome]:
    """``converge(*args, input=None)`` runs the command in-process from ``tmp_path`` and
    asserts the fuzzing property on what it printed and its exit code."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVERGE_DEBUG", raising=False)
    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS", "converge-http,converge-llm,converge-ray")

    def run(*args: str, input: bytes | str | None = None) -> Outcome:
        with deadline(DEADLINE_S):
            result = CliRunner().invoke(main, list(args), input=input,
                                        catch_exceptions=True)
        shown = f"converge {' '.join(args)}\n{result.output}"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"raised {result.exception!r}\n{shown}") from \
                result.exception
        assert result.exit_code in (0, 1, 2), shown
        assert "internal error" not in result.output, shown
        assert "Traceback" not in result.output, shown
        return Outcome(result.exit_code, result.output)

    return run
