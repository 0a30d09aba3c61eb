"""What a test run produces: one :class:`Outcome` per test (or per case of a table
test), gathered in a :class:`TestReport` with the ruleset diagnostics found on the way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from converge_rules.language.diagnostics.core import Diagnostic
from converge_rules.language.syntax.span import Span

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Failure:
    """One unmet expectation (or a problem running the test): ``message`` says what was
    expected, ``details`` show what was found instead and how it was derived."""

    message: str
    span: Span | None = None
    details: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The message (after its location) and each detail (indented), one item a
        line: what :meth:`text` joins."""
        where = f"{self.span}: " if self.span else ""
        return [where + self.message, *("  " + d for d in self.details)]

    def text(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one test or table case. ``id`` is ``file.cvg::test name`` (plus
    ``[case N]``, or ``[NAME]`` for a named one, for a table case), stable
    across runs."""

    id: str
    file: str
    name: str
    span: Span | None
    status: Status
    failures: tuple[Failure, ...] = ()
    reason: str = ""            # why it was skipped

    @property
    def message(self) -> str:
        """The first failure's message, for one-line summaries."""
        return self.failures[0].message if self.failures else self.reason

    def text(self) -> str:
        """Every failure, with details, as plain text."""
        return "\n".join(f.text() for f in self.failures)


@dataclass(frozen=True, slots=True)
class TestReport:
    """Every outcome, in file then declaration order, and the diagnostics of rulesets
    that could not be run (errors stop a ruleset's tests from running)."""

    __test__ = False  # not a pytest class

    outcomes: tuple[Outcome, ...]
    diagnostics: tuple[Diagnostic, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ruleset_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)

    def summary(self) -> str:
        """``N passed, N failed`` (``, N skipped`` when any were skipped)."""
        text = f"{self.count('passed')} passed, {self.count('failed')} failed"
        skipped = self.count("skipped")
        return text + (f", {skipped} skipped" if skipped else "")


def summary_line(outcomes: Sequence[Outcome]) -> str:
    return TestReport(tuple(outcomes)).summary()
