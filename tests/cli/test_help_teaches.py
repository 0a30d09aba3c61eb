"""Every command's --help teaches: what it does, an example, and its exit codes (found
missing on `store info`, `store gc`, `trace export`, `report` and `lsp`)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from converge_rules.cli import main


def _leaves(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _leaves(sub, (*path, name))
    else:
        yield path


COMMANDS = list(_leaves(main))


def test_the_commands_are_found() -> None:
    assert ("store", "gc") in COMMANDS and ("trace", "export") in COMMANDS
    assert len(COMMANDS) >= 19


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_has_an_example_and_the_exit_codes(path: tuple[str, ...]) -> None:
    done = CliRunner().invoke(main, [*path, "--help"])
    assert done.exit_code == 0, done.output
    text = done.output
    assert "Examples:" in text, f"converge {' '.join(path)} --help shows no example"
    assert f"converge {' '.join(path)}" in text.split("Examples:", 1)[1]
    assert "Exit codes" in text, f"converge {' '.join(path)} --help has no exit codes"
    assert "0 " in text.split("Exit codes", 1)[1]
