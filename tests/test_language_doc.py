"""The language reference stays honest: every whole ruleset in ``docs/language.md`` and
``docs/language-contract.md`` checks without errors, and the ``test`` blocks of the
reference's rulesets pass.

A ```` ```cvg ```` block that starts with ``ruleset`` is a whole ruleset; a block marked
```` ```cvg fragment ```` shows a piece of syntax and is not checked.
``docs/language-contract.md`` is a verbatim copy of the design contract, which lives in
``shared/design/LANGUAGE.md`` beside the repository (CI lays ``shared/`` out next to
the clone); the copy is kept in the repository so the tests and readers have it anyway.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from converge_rules.language.builtins import BUILTIN_FUNCTIONS
from converge_rules.language.checks.checker import check_file
from converge_rules.language.checks.root import BUDGETS
from converge_rules.language.checks.testblocks import STATUSES
from converge_rules.language.diagnostics.core import Diagnostic
from converge_rules.testing.runner import run_tests

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
REFERENCE = DOCS / "language.md"
CONTRACT = DOCS / "language-contract.md"
# The design contract itself: ``shared/`` sits beside the repository root.
SHARED_CONTRACT = REPO.parent / "shared" / "design" / "LANGUAGE.md"

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block: its info string, text and the line it starts on."""

    info: str
    text: str
    line: int

    @property
    def is_ruleset(self) -> bool:
        return self.text.lstrip().startswith("ruleset")

    @property
    def label(self) -> str:
        return f"line {self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    return [Block(m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in _FENCE.finditer(text)]


def _errors(block: Block, path: Path) -> list[Diagnostic]:
    checked = check_file(path, source=block.text)
    return [d for d in checked.diagnostics if d.is_error]


def _show(diags: list[Diagnostic]) -> str:
    return "\n".join(f"{d.code} {d.span}: {d.message}" for d in diags)


_REFERENCE_BLOCKS = blocks(REFERENCE)
_CHECKED = [b for b in _REFERENCE_BLOCKS if b.info == "cvg" and b.is_ruleset]


# --------------------------------------------------------------- the reference


def test_every_cvg_block_is_a_ruleset_or_marked_as_a_fragment() -> None:
    unmarked = [b.label for b in _REFERENCE_BLOCKS
                if b.info == "cvg" and not b.is_ruleset]
    assert not unmarked, f"```cvg blocks that are not whole rulesets: {unmarked}; " \
        "start them with `ruleset` or mark them ```cvg fragment"
    infos = {b.info for b in _REFERENCE_BLOCKS}
    assert infos <= {"cvg", "cvg fragment", "text", "sh", "json"}, infos


def test_the_reference_has_many_checked_examples() -> None:
    assert len(_CHECKED) >= 15


@pytest.mark.parametrize("block", _CHECKED, ids=lambda b: b.label)
def test_reference_ruleset_checks_clean(block: Block, tmp_path: Path) -> None:
    errors = _errors(block, tmp_path / "example.cvg")
    assert not errors, f"docs/language.md {block.label}:\n{_show(errors)}"


@pytest.mark.parametrize("block", [b for b in _CHECKED if "\ntest " in b.text],
                         ids=lambda b: b.label)
def test_reference_ruleset_tests_pass(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "example.cvg"
    path.write_text(block.text, encoding="utf-8")
    report, _ = run_tests([path])
    assert report.outcomes, f"docs/language.md {block.label}: no test ran"
    failed = [o for o in report.outcomes if o.status != "passed"]
    assert not failed, f"docs/language.md {block.label}:\n" + "\n".join(
        f"{o.id}: {o.text() or o.reason}" for o in failed)


def test_a_broken_example_would_be_caught(tmp_path: Path) -> None:
    """The checks above can fail: a wrong block gives errors, a wrong expectation fails."""
    wrong = Block("cvg", "ruleset r\nfact A { key id: str }\nagent a {\n  when A(id)\n"
                  "  emit B(id: id)\n}\n", 1)
    assert _errors(wrong, tmp_path / "wrong.cvg")
    path = tmp_path / "failing.cvg"
    path.write_text("ruleset r\nfact A { key id: str }\n"
                    'test "t" {\n  given A(id: "x")\n  expect A(id: "y")\n}\n',
                    encoding="utf-8")
    report, _ = run_tests([path])
    assert [o.status for o in report.outcomes] == ["failed"]


def test_reference_links_the_diagnostics_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    assert "(diagnostics.md)" in text
    assert (DOCS / "diagnostics.md").is_file()


def test_reference_names_every_builtin_budget_and_status() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    for name in BUILTIN_FUNCTIONS:
        assert f"`{name}(" in text, f"built-in {name} is not documented"
    for name in BUDGETS:
        assert f"`{name}`" in text, f"budget {name} is not documented"
    for status in STATUSES:
        assert f"`{status}`" in text, f"status {status} is not documented"


# ----------------------------------------------------------------- the contract


def test_contract_copy_is_verbatim() -> None:
    if not SHARED_CONTRACT.is_file():
        pytest.skip(f"no design contract at {SHARED_CONTRACT} (shared/ is not laid out "
                    "beside the repository)")
    assert CONTRACT.read_bytes() == SHARED_CONTRACT.read_bytes(), (
        "docs/language-contract.md differs from ../shared/design/LANGUAGE.md; copy the "
        "contract over verbatim")


def test_no_two_paths_differ_only_in_case() -> None:
    """The repository checks out on case-insensitive file systems (macOS, Windows)."""
    seen: dict[str, str] = {}
    clashes = []
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in [*dirs, *sorted(files)]:
            path = (Path(folder) / name).relative_to(REPO).as_posix()
            other = seen.setdefault(path.casefold(), path)
            if other != path:
                clashes.append((other, path))
    assert not clashes, f"paths that are one file on macOS and Windows: {clashes}"


_CONTRACT_RULESETS = [b for b in blocks(CONTRACT) if b.is_ruleset]


def test_contract_has_a_whole_ruleset() -> None:
    assert _CONTRACT_RULESETS


@pytest.mark.parametrize("block", _CONTRACT_RULESETS, ids=lambda b: b.label)
def test_contract_ruleset_checks_clean(block: Block, tmp_path: Path) -> None:
    errors = _errors(block, tmp_path / "contract.cvg")
    assert not errors, f"docs/language-contract.md {block.label}:\n{_show(errors)}"


# -------------------------------------------------------------------- the README

README = DOCS.parent / "README.md"
PRICING = DOCS.parent / "rulesets" / "pricing" / "pricing.cvg"
CLI = DOCS.parent / "converge_rules" / "cli"

def _quickstart_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    first_section = text.index("\n## ") + 1
    assert text.startswith("## Quickstart\n", first_section), \
        "README.md: the first section must be the Quickstart"
    body = text[first_section:].split("\n## ", 1)[0]
    fence = re.search(r"^```[^\n]*\n(.*?)^```", body, re.S | re.M)
    assert fence, "README.md: the Quickstart starts with one code block"
    return [ln for ln in fence.group(1).splitlines() if ln.strip()]


def test_readme_quickstart_is_two_commands_install_and_run_then_install_and_test() -> None:
    install_and_run, install_and_test = _quickstart_commands()
    assert install_and_run.startswith("pip install . ")
    assert " && converge run " in install_and_run
    assert install_and_test.startswith('pip install ".[test]"')
    assert install_and_test.endswith("&& pytest")


def test_readme_quickstart_run_converges_on_the_shipped_example(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shlex

    from click.testing import CliRunner

    from converge_rules.cli import main

    install_and_run = _quickstart_commands()[0]
    install, run = install_and_run.split("&& converge ", 1)
    args = shlex.split(run)
    # what the command writes (its --store file) goes to a temporary directory
    args = [str(tmp_path / a) if a.endswith(".db") else a for a in args]
    # On a fresh machine only the plugins the command installs are there; this checkout's
    # environment may hold more, so load only those (a plugin-less install: none).
    plugins = _installed_plugins(shlex.split(install)[2:])
    monkeypatch.setenv("CONVERGE_PLUGINS", ",".join(plugins))
    if not plugins:
        args.append("--no-plugins")
    monkeypatch.chdir(README.parent)  # the README's paths are relative to the repository
    result = CliRunner().invoke(main, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert '"status": "converged"' in result.output


def _installed_plugins(targets: list[str]) -> list[str]:
    """The converge plugins (entry-point names) that `pip install TARGETS` installs from
    this repository's plugins/ folder."""
    import tomllib

    names = []
    for target in targets:
        folder = README.parent / target.split("[", 1)[0]
        if target == "." or not (folder / "pyproject.toml").is_file():
            continue
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
        names.extend(project["project"].get("entry-points", {}).get("converge_rules", {}))
    return names


def test_readme_quickstart_installs_the_plugin_whose_tool_the_example_calls() -> None:
    """Found on a fresh venv: `pip install . && converge run rulesets/pricing/...` refused
    to run (no plugin provides tool 'fx_rate') — the plugin was only in the dev venv."""
    import shlex

    install = _quickstart_commands()[0].split("&& converge ", 1)[0]
    assert _installed_plugins(shlex.split(install)[2:]) == ["converge-example"]
    assert _installed_plugins(["."]) == []


def test_readme_taste_is_an_excerpt_of_the_pricing_ruleset() -> None:
    taste = [b for b in blocks(README) if b.info == "cvg"]
    assert len(taste) == 1
    lines = [ln for ln in taste[0].text.splitlines() if ln.strip()]
    assert 15 <= len(lines) <= 25
    source = PRICING.read_text(encoding="utf-8").splitlines()
    position = 0
    for ln in lines:
        assert ln in source[position:], f"not in rulesets/pricing/pricing.cvg (in order): {ln}"
        position = source.index(ln, position) + 1


def test_readme_lists_every_command() -> None:
    text = README.read_text(encoding="utf-8")
    from converge_rules.cli import COMMANDS, MODULES

    # every command module, and every command of a module that holds several
    commands = sorted({p.stem for p in CLI.glob("*.py") if not p.stem.startswith("_")}
                      - set(MODULES.values()) | set(COMMANDS))
    assert commands
    missing = [c for c in commands if f"`converge {c}" not in text]
    assert not missing, f"commands missing from README.md: {missing}"


@pytest.mark.parametrize("page", ["README.md", "docs/index.md", "docs/language.md"])
def test_relative_links_resolve(page: str) -> None:
    path = DOCS.parent / page
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{page}: broken link {target}"
