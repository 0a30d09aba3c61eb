"""docs/cli.md keeps up with the commands: every command has a section, every option of
every command (and of the group) is named in it, and so is every built-in executor."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from converge_rules.cli import main
from converge_rules.plugins import builtin_registries

CLI_DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def documented() -> str:
    return CLI_DOC.read_text(encoding="utf-8")


def option_names(command: click.Command) -> list[str]:
    names = []
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            names.extend(o for o in param.opts if o.startswith("--"))
    return names


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_and_option_is_documented(name: str) -> None:
    text = documented()
    assert f"## `converge {name}`" in text, f"docs/cli.md has no section for {name}"
    section = text.split(f"## `converge {name}`", 1)[1].split("\n## ", 1)[0]
    missing = [o for o in option_names(main.commands[name]) if f"`{o}" not in section]
    assert not missing, f"docs/cli.md does not document {name} {missing}"
    assert "Exit codes" in section


def test_global_options_are_documented() -> None:
    text = documented()
    for option in option_names(main):
        assert f"`{option}" in text


def test_the_cli_docs_list_every_built_in_executor() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
    line = next(ln for ln in docs.read_text().splitlines() if ln.startswith("| `--executor"))
    named = set(re.findall(r"`(\w+)`", line))
    assert set(builtin_registries().executors) <= named
    import converge_rules.engine.executors as executors

    assert "not registered" not in (executors.__doc__ or "")
