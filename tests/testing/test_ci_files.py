"""The CI integration files say only what the CLI accepts: the pre-commit hooks and
every `converge` command in the GitHub Actions example of docs/ci.md parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from converge_rules.cli import main

ROOT = Path(__file__).parents[2]


def _parse_command(line: str) -> None:
    """Parse a `converge …` command line with the real CLI (nothing runs)."""
    args = shlex.split(line)
    assert args[0] == "converge", line
    name, rest = args[1], args[2:]
    with main.make_context("converge", [name], resilient_parsing=True) as ctx:
        command = main.get_command(ctx, name)
        assert command is not None, f"no command `converge {name}`"
        command.make_context(name, rest, parent=ctx).close()


def test_pre_commit_hooks() -> None:
    hooks: list[dict[str, Any]] = yaml.safe_load(
        (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert [h["id"] for h in hooks] == ["converge-fmt", "converge-check", "converge-test"]
    for hook in hooks:
        assert hook["language"] == "python"
        assert re.search(hook["files"], "rules/pricing.cvg")
        assert not re.search(hook["files"], "rules/pricing.py")
        files = [] if hook.get("pass_filenames") is False else ["a.cvg"]
        _parse_command(" ".join([hook["entry"], *hook.get("args", []), *files]))


def test_github_workflow_example_uses_real_options() -> None:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(name: rulesets\n.*?)```", text, re.S)
    assert block is not None
    workflow = yaml.safe_load(block.group(1))
    steps = workflow["jobs"]["rulesets"]["steps"]
    commands = [line.strip() for step in steps if "run" in step
                for line in step["run"].splitlines() if line.strip().startswith("converge ")]
    assert any("--format github" in c for c in commands)
    assert any("--format junit" in c and "--coverage-xml" in c for c in commands)
    for line in commands:
        _parse_command(line)


def test_an_unknown_option_would_be_caught() -> None:
    with pytest.raises(click.UsageError):
        _parse_command("converge test rulesets/ --no-such-option")


def _pip_install_args(text: str) -> list[str]:
    """The arguments of the one `pip install` that installs the project for its tests."""
    found = [line for line in text.replace("\\\n", " ").splitlines()
             if re.search(r"pip install( -q)? [\"']?\.\[test\]", line)]
    assert len(found) == 1, found
    args = shlex.split(found[0].split("&&")[0])
    return args[args.index("install") + 1:]


def test_the_readme_test_command_installs_what_ci_installs() -> None:
    readme = _pip_install_args((ROOT / "README.md").read_text(encoding="utf-8"))
    ci = [a for a in _pip_install_args((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
          if a != "-q"]
    assert readme == ci
    # every first-party plugin is installed, so that its tests (testpaths) can import it
    plugins = {p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists()}
    installed = {re.sub(r"\[.*\]$", "", a).removeprefix("./plugins/") for a in ci}
    assert plugins <= installed


def test_ci_stops_postgresql_even_when_it_fails_to_start() -> None:
    """The EXIT trap that stops the server is set before initdb and `pg_ctl start`: a
    start that gives up (`-w -t 120`) while the server is still coming up exits the
    script (set -e), and a trap set after it would leave the server running."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()

    def first(pattern: str) -> int:
        return next(i for i, line in enumerate(lines) if re.search(pattern, line))

    trap = first(r"^trap .*pg_ctl\" stop .* EXIT$")
    assert trap < first(r"^pg \"\$pgbin/initdb\"") < first(r"^pg \"\$pgbin/pg_ctl\" start")
