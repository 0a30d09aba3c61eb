"""pytest plugin: collect the ``test`` blocks of ``.cvg`` files as pytest items.

Installed with converge-rules (entry point ``pytest11``, name ``converge``), so
``pytest`` runs ruleset tests beside Python tests. Items have the same ids as
``converge test`` (``path/file.cvg::test name``, ``…[case N]`` or ``…[NAME]`` for table
rows, paths relative to the rootdir) and the same failure text. A ruleset with errors is a
collection error that shows the diagnostics.

Only ``.cvg`` files that contain a ``test`` block are collected, so example corpora of
broken rulesets without tests do not break a test run. Turn collection off with
``-p no:converge`` or the ini option ``converge_collect = false``. Rulesets are checked
with the installed converge plugins' functions, resolvers and tool signatures (ini
``converge_plugins = false`` to leave them out); tests never call real tools.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from converge_rules.language.diagnostics.render import render
from converge_rules.testing.cases import TestCase
from converge_rules.testing.outcome import Outcome
from converge_rules.testing.runner import Suite, load_plugins, load_suite, run_case

if TYPE_CHECKING:
    from converge_rules.plugins.registries import Registries

_HAS_TEST = re.compile(r'^\s*test\s*"', re.MULTILINE)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("converge_collect", type="bool", default=True,
                  help="collect the test blocks of .cvg files (converge-rules)")
    parser.addini("converge_plugins", type="bool", default=True,
                  help="check .cvg rulesets with the installed converge plugins' "
                       "functions, resolvers and tool signatures (converge-rules)")


def pytest_configure(config: pytest.Config) -> None:
    """Read the ini flags once, up front: a value that is no truth value is a usage
    error naming its key (pytest's own said "invalid truth value 'maybe'" at the first
    directory collected, naming no key)."""
    for name in ("converge_collect", "converge_plugins"):
        try:
            config.getini(name)
        except (ValueError, pytest.UsageError) as exc:
            raise pytest.UsageError(
                f"{name} in {config.inipath or 'the ini file'}: {exc}; write true or "
                f"false") from None


_REGISTRIES = pytest.StashKey["Registries | None"]()


def _registries(config: pytest.Config) -> Registries | None:
    """The converge plugins' registries, loaded once per session."""
    if _REGISTRIES not in config.stash:
        config.stash[_REGISTRIES] = load_plugins(bool(config.getini("converge_plugins")))
    return config.stash[_REGISTRIES]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A :class:`RulesetFile` for each ``.cvg`` file with a ``test`` block."""
    if file_path.suffix != ".cvg" or not parent.config.getini("converge_collect"):
        return None
    try:
        text = file_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not _HAS_TEST.search(text):
        return None
    collector: pytest.Collector = RulesetFile.from_parent(parent, path=file_path)
    return collector


class RulesetFile(pytest.File):
    """A ruleset file; its items are its test cases."""

    def collect(self) -> Iterator[pytest.Item]:
        suite = load_suite(self.path, _registries(self.config))
        if not suite.runnable and not suite.problem:
            errors = [d for d in suite.diagnostics if d.is_error]
            raise self.CollectError(
                f"{suite.file}: the ruleset has errors, so its tests cannot run\n\n"
                + render("text", errors, suite.sources))
        for outcome in suite.case_errors:
            yield RulesetCaseError.from_parent(self, name=outcome.name, outcome=outcome)
        for case in suite.cases:
            name = case.id.split("::", 1)[1]
            yield RulesetTest.from_parent(self, name=name, suite=suite, case=case)


class RulesetTestFailed(Exception):
    """Raised by a failing ruleset test; carries its outcome for the report."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class _Item(pytest.Item):
    """An item of a ruleset file. It has ``funcargs`` (none) as a test function has:
    other plugins' hooks read it from every item (pytest-lsp's ``pytest_runtest_call``
    wrapper fails an item without it: "did not yield")."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.funcargs: dict[str, Any] = {}


class RulesetTest(_Item):
    """One ``test`` block (or table row) of a ruleset."""

    def __init__(self, *, suite: Suite, case: TestCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.case = case

    def runtest(self) -> None:
        outcome = run_case(self.suite, self.case)
        if outcome.status == "skipped":
            pytest.skip(outcome.reason)
        if outcome.status == "failed":
            raise RulesetTestFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, RulesetTestFailed):
            return excinfo.value.outcome.text()
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.case.span.line - 1 if self.case.span else None
        return self.path, line, f"converge test: {self.name}"


class RulesetCaseError(_Item):
    """A test whose cases cannot be read (a broken table fixture): it fails with the
    reason."""

    def __init__(self, *, outcome: Outcome, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outcome = outcome

    def runtest(self) -> None:
        raise RulesetTestFailed(self.outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        return self.outcome.text()

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.outcome.span.line - 1 if self.outcome.span else None
        return self.path, line, f"converge test: {self.name}"
