"""``--executor-option KEY=VALUE``: how an executor plugin takes options. They reach
the factory as its second argument; an executor whose factory takes none, a pair
without ``=`` or a key given twice is a usage error before anything runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main
from converge_rules.errors import ConvergeError
from converge_rules.plugins import load_registries

PLUGIN = """
from converge_rules.plugins.api import SerialExecutor, hookimpl

SEEN = []

class Noting(SerialExecutor):
    def __init__(self, workers, options):
        super().__init__(workers)
        SEEN.append((workers, dict(options)))

def with_options(workers=None, options=None):
    if options and set(options) - {"colour"}:
        from converge_rules.errors import ConvergeError
        raise ConvergeError(f"noting has no option {sorted(set(options) - {'colour'})[0]!r}")
    return Noting(workers, options or {})

@hookimpl
def converge_register_executors(register):
    register("noting", with_options)
"""


@pytest.fixture
def ruleset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"A": {"x": 1}}\n')
    path = tmp_path / "r.cvg"
    path.write_text("ruleset r\nfact A { x: int }\nfact B { x: int }\n"
                    "agent a { when A(x) emit B(x: x) }\n")
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--plugin", "noting_plugin", "run", "r.cvg", "-f",
                                       "in.jsonl", "--format", "json", *args])
    return result.exit_code, result.output


def test_options_reach_the_factory(
    ruleset: Path, write_module: Callable[[str, str], str]
) -> None:
    write_module("noting_plugin", PLUGIN)
    code, output = _run("--executor", "noting", "--workers", "3",
                        "--executor-option", "colour = blue")
    assert code == 0, output
    import noting_plugin  # type: ignore[import-not-found]

    assert noting_plugin.SEEN == [(3, {"colour": "blue"})]


def test_an_option_the_factory_refuses_is_its_message(
    ruleset: Path, write_module: Callable[[str, str], str]
) -> None:
    write_module("noting_plugin", PLUGIN)
    code, output = _run("--executor", "noting", "--executor-option", "size=2")
    assert code == 2
    assert "noting has no option 'size'" in output and "Traceback" not in output


def test_an_executor_without_options_refuses_them(ruleset: Path) -> None:
    result = CliRunner().invoke(main, ["run", "r.cvg", "-f", "in.jsonl", "--executor",
                                       "threads", "--executor-option", "address=auto"])
    assert result.exit_code == 2
    assert "the executor 'threads' takes no options (--executor-option address=…)" in (
        result.output)
    with pytest.raises(ConvergeError, match="takes no options"):
        load_registries(entry_points=False).executor("serial", None, {"x": "1"})


@pytest.mark.parametrize("pair, said", [
    ("address", "give KEY=VALUE"),
    ("=auto", "give KEY=VALUE"),
])
def test_a_malformed_pair_is_a_usage_error(ruleset: Path, pair: str, said: str) -> None:
    result = CliRunner().invoke(main, ["run", "r.cvg", "-f", "in.jsonl", "--executor",
                                       "serial", "--executor-option", pair])
    assert result.exit_code == 2 and said in result.output


def test_a_key_given_twice_is_a_usage_error(ruleset: Path) -> None:
    result = CliRunner().invoke(main, ["run", "r.cvg", "-f", "in.jsonl", "--executor-option",
                                       "a=1", "--executor-option", "a=2"])
    assert result.exit_code == 2 and "--executor-option a is given twice" in result.output
