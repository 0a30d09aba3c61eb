"""Run the ``test`` blocks of rulesets.

Each test runs the whole ruleset it is written in (that file and everything it
imports) on its ``given`` facts, with every tool replaced by the test's ``mock tool``
answers, and checks its ``expect`` steps (see :mod:`.expectations`). A ruleset with
errors runs no tests: its diagnostics are reported instead.

A test belongs to the file it is written in: a test in an imported file runs when that
file is itself among the paths (directories are searched recursively), against that
file's own ruleset.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converge_rules.analysis.explain import Explainer
from converge_rules.analysis.interpret import (
    EvalError,
    Fact,
    Interpreter,
    interpreter_for,
    read_times,
)
from converge_rules.analysis.runview import RunView, view_from_result
from converge_rules.errors import ConvergeError
from converge_rules.jsontext import value_problem
from converge_rules.language.builtins import parse_datetime
from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.diagnostics.core import Diagnostic
from converge_rules.language.format.formatter import format_pattern, format_value
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import Span
from converge_rules.testing.case_types import (
    row_problems,
    texts_where_text,
    timed_row,
    variable_uses,
)
from converge_rules.testing.cases import CaseError, TestCase, expand
from converge_rules.testing.expectations import check_expectations
from converge_rules.testing.mocks import MockAnswer, MockTools, unmocked_help
from converge_rules.testing.outcome import Failure, Outcome, Status, TestReport
from converge_rules.testing.selection import compile_keyword

if TYPE_CHECKING:
    from converge_rules.plugins.registries import Registries


@dataclass(slots=True)
class Suite:
    """One ruleset file: its checked ruleset, compiled program and test cases."""

    path: Path
    file: str
    checked: CheckedRuleset | None
    program: Any = None
    cases: list[TestCase] = field(default_factory=list)
    diagnostics: tuple[Diagnostic, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)
    problem: str = ""           # why the suite cannot run although it checks (compile)
    case_errors: list[Outcome] = field(default_factory=list)
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)  # plugins
    files: tuple[Path, ...] = ()  # every file the ruleset names (resolved): its inputs

    @property
    def runnable(self) -> bool:
        return (self.checked is not None and not self.problem
                and not any(d.is_error for d in self.diagnostics))


def load_plugins(enabled: bool = True, modules: Sequence[str] = ()) -> Registries:
    """The registries tests check and compile against: the built-ins, plus the
    installed plugins and ``modules`` when ``enabled``. Tests never call a plugin's
    tools: they only tell the checker what a tool takes and returns."""
    from converge_rules.plugins.manager import builtin_registries, load_registries

    return load_registries(modules) if enabled else builtin_registries()


def load_suite(path: str | Path, registries: Registries | None = None, *,
               allow_paths: Iterable[str | os.PathLike[str]] = ()) -> Suite:
    """Check and compile one ruleset file and list its test cases (table tests expanded
    into one case per row), knowing the functions, resolvers and tool signatures of
    ``registries`` (see :func:`load_plugins`; the built-ins alone when None). Imports
    and ``cases`` files are read from the ruleset's folder and ``allow_paths`` only.
    Never raises for a bad ruleset: errors are diagnostics."""
    from converge_rules.language.checks.checker import check
    from converge_rules.language.loader import display_path, load_file

    path = Path(path)
    if registries is None:
        registries = load_plugins(False)
    functions = registries.function_callables()
    loaded = load_file(path, allow_paths=allow_paths)
    checked = check(loaded, **registries.checker_kwargs())
    file = display_path(path)
    diagnostics = checked.diagnostics
    suite = Suite(path=path, file=file, checked=checked, diagnostics=diagnostics,
                  sources=_sources(checked, path, file), functions=functions,
                  files=loaded.files)
    if any(d.is_error for d in diagnostics) or not checked.modules:
        return suite
    try:
        from converge_rules.compiler.compile import compile_ruleset

        suite.program = compile_ruleset(checked, **registries.compiler_kwargs())
    except ConvergeError as exc:
        suite.problem = f"the ruleset does not compile: {exc}"
    interp = interpreter_for(checked, functions=functions)
    tests = [item for item in checked.modules[-1].items if isinstance(item, n.Test)]
    for test in tests:
        try:
            suite.cases.extend(expand(test, file, path.parent, interp, loaded.access))
        except CaseError as exc:
            suite.case_errors.append(Outcome(
                id=f"{file}::{test.name}", file=file, name=test.name, span=test.span,
                status="failed", failures=(Failure(exc.message, exc.span or test.span,
                                                   exc.details),)))
    return suite


def _sources(checked: CheckedRuleset, path: Path, file: str) -> dict[str, str]:
    from converge_rules.language.access import snippet_source

    names = {file}
    names.update(d.span.file for d in checked.diagnostics if d.span is not None)
    out = {}
    for name in sorted(names):
        # The loaded text first; a file that was refused (a device, not a ruleset) is
        # not read again for its snippet.
        text = checked.sources[name] if name in checked.sources else snippet_source(name)
        if text is not None:
            out[name] = text
    return out


RunObserver = Callable[[Suite, TestCase, RunView], None]


def run_case(suite: Suite, case: TestCase, *, observe: RunObserver | None = None) -> Outcome:
    """Run one test case of a runnable suite."""
    checked = suite.checked
    assert checked is not None
    if suite.problem:
        return _outcome(case, "failed", failures=(Failure(suite.problem),))
    if not any(isinstance(s, n.ExpectFact | n.ExpectConflict | n.ExpectStatus
                          | n.ExpectPending) for s in case.test.steps):
        return _outcome(case, "skipped", reason="the test has no `expect` step")
    interp = interpreter_for(checked, functions=suite.functions)
    missing = sorted(case.variables - case.bindings.keys())
    if case.case is not None and missing:
        # A name the row leaves out would match anything in its expectations: the
        # case must fail, never pass without checking (the checker reports this too).
        return _outcome(case, "failed", failures=(Failure(
            f"{case.row} does not bind " + ", ".join(f"`{m}`" for m in missing)
            + ", which the test uses", case.span,
            ("every row binds every name the test uses; fix the row"
             + (f" ({case.where})" if case.where else ""),)),))
    bindings = case.bindings
    if bindings:
        # Fixture values are typed only now: one that does not fit its use (a string
        # multiplied, say) fails its row instead of reaching the interpreter.
        uses = variable_uses(case.test, checked)
        bindings = texts_where_text(bindings, uses, case.texts)
        problems = row_problems(bindings, uses, interp.enums)
        if problems:
            return _outcome(case, "failed", failures=(Failure(
                f"{case.row}: {problems[0]}", case.span,
                (*problems[1:], f"fix this row of the cases file: {case.where}" if case.where
                 else "fix the row in the cases file (rows count from 1)")),))
        bindings = timed_row(bindings, uses)
    try:
        now = given_now(case.test, interp, bindings)
        interp.now = now  # `given A(due: today() - 1d)` is at the test's time
        facts = given_facts(case.test, interp, bindings)
        mocks = MockTools(mock_answers(case.test, interp, bindings),
                          tuple(checked.tools))
    except EvalError as exc:
        return _outcome(case, "failed", failures=(
            Failure(f"cannot evaluate: {exc.message}",
                    exc.span if isinstance(exc.span, Span) else case.span),))

    from converge_rules.engine import run

    used: set[int] = set()
    try:
        result = run(suite.program, facts, tools=mocks.table(), now=now,
                     decisions=decider_of(case.test, interp, bindings, now, used))
    except ConvergeError as exc:  # bad given facts (InputError) and the like
        return _outcome(case, "failed", failures=(
            Failure(f"the test's facts were rejected: {exc}", case.span),))
    view = view_from_result(result)
    read_times(view.facts, checked)
    if observe is not None:
        observe(suite, case, view)
    interp = interpreter_for(checked, view.context(), suite.functions, now=now)
    explainer = Explainer(view, checked, interp)
    failures = check_expectations(case.test.steps, explainer, bindings)
    failures[:0] = _idle_decisions(case.test, used)
    if failures and case.case is not None:
        row = ", ".join(f"{k} = {format_value(v)}" for k, v in case.bindings.items())
        failures = [dataclasses.replace(f, details=(f"in {case.row}: {row}", *f.details))
                    for f in failures]
    if mocks.unmocked:
        failures.insert(0, Failure("the test called a tool it does not mock", case.span,
                                   tuple(unmocked_help(mocks.unmocked))))
    return _outcome(case, "failed" if failures else "passed",
                   failures=tuple(failures))


def _outcome(case: TestCase, status: Status, failures: tuple[Failure, ...] = (),
             reason: str = "") -> Outcome:
    return Outcome(case.id, case.file, case.name, case.span, status, failures, reason)


def given_facts(test: n.Test, interp: Interpreter, env: dict[str, Any]
                ) -> list[tuple[str, dict[str, Any]]]:
    """The test's ``given`` facts as ``(type, fields)``, values evaluated; a value no
    fact can hold (``1e300 * 1e300`` is infinity) is an :class:`EvalError` at it."""
    return [(step.type.name, {a.name.name: _holdable(interp, a.value, env, f"`{a.name.name}`")
                              for a in step.args})
            for step in test.steps if isinstance(step, n.Given)]


def _idle_decisions(test: n.Test, used: set[int]) -> list[Failure]:
    """A failure for each ``approve``/``reject`` step that decided no pending fact (a
    pattern that matches none, or only facts an earlier step decided): otherwise a
    mistyped ``reject`` followed by ``expect no …`` passes, the fact being held."""
    out: list[Failure] = []
    for i, step in enumerate(s for s in test.steps if isinstance(s, n.Decide)):
        if i not in used:
            verb = "approve" if step.approve else "reject"
            out.append(Failure(
                f"`{verb} {format_pattern(step.pattern)}` decided no pending fact",
                step.pattern.span,
                ("no fact its gate held matched it, an earlier `approve`/`reject` "
                 "step decided each that did, or the fact it matched was dropped before "
                 "the point of decision (its support went: the trace's `pending_dropped`)",
                 )))
    return out


def decider_of(test: n.Test, interp: Interpreter, env: dict[str, Any],
               now: datetime | None, used: set[int] | None = None
               ) -> Callable[[dict[str, Any]], Any] | None:
    """The test's ``approve``/``reject`` steps as the engine's decider: a pending fact
    is decided by the first step whose pattern matches it (``by`` "test", ``at`` the
    test's time or ""), and stays pending when none does. None without such steps.
    ``used`` collects the positions (among those steps) of the steps that decided."""
    steps = [step for step in test.steps if isinstance(step, n.Decide)]
    if not steps:
        return None
    from converge_rules.engine.gates import Decision

    at = now.isoformat() if now is not None else ""

    def decide(pending: dict[str, Any]) -> Decision | None:
        fact = Fact(pending["type"], pending["fields"])
        for i, step in enumerate(steps):
            try:
                matched = interp.match_fact(step.pattern, fact, env, tolerant=True)
            except EvalError:
                matched = None
            if matched is not None:
                if used is not None:
                    used.add(i)
                return Decision(pending["id"], step.approve, by="test", at=at)
        return None

    return decide


def given_now(test: n.Test, interp: Interpreter, env: dict[str, Any]) -> datetime | None:
    """The test's time (its last ``given now``), or None when it gives none: then
    ``now()`` and ``today()`` fail the agent that calls them, so no test depends on
    the clock."""
    steps = [step for step in test.steps if isinstance(step, n.GivenNow)]
    if not steps:
        return None
    value = interp.eval(steps[-1].value, env)
    if isinstance(value, str):  # a cases file holds text
        try:
            value = parse_datetime(value)
        except ValueError as exc:
            raise EvalError(str(exc), steps[-1].value.span) from None
    if not isinstance(value, datetime):
        raise EvalError(f"`given now` needs a datetime, got {format_value(value)}",
                        steps[-1].value.span)
    return value


def mock_answers(test: n.Test, interp: Interpreter, env: dict[str, Any]
                 ) -> list[MockAnswer]:
    """The test's ``mock tool`` answers, values evaluated (a value no fact can hold is
    an :class:`EvalError` at it, as in ``given``). A mock that returns a plain value
    (not a record) answers ``{"value": …}``; a ``fails`` mock answers nothing and
    carries its reason. Tools speak JSON, so dates, datetimes and durations in the
    arguments and the answer are their ISO 8601 text, as a real call's are."""
    from converge_rules.engine.trace import jsonable

    answers = []
    for step in test.steps:
        if isinstance(step, n.Mock):
            returns = {} if step.returns is None else \
                _holdable(interp, step.returns, env, "the mocked result")
            if not isinstance(returns, dict):
                returns = {"value": returns}
            returns = {k: jsonable(v) for k, v in returns.items()}
            answers.append(MockAnswer(step.tool.name,
                                      {a.name.name: jsonable(_holdable(
                                          interp, a.value, env, f"`{a.name.name}`"))
                                       for a in step.args}, returns, step.span, step.fails))
    return answers


def _holdable(interp: Interpreter, expr: n.Expr, env: dict[str, Any], what: str) -> Any:
    """``expr``'s value when a fact could hold it (finite numbers, valid text); else an
    :class:`EvalError` at ``expr`` naming ``what``."""
    value = interp.eval(expr, env)
    problem = value_problem(_as_json(value), what)
    if problem is not None:
        raise EvalError(f"{problem}: a fact holds finite numbers and valid text only",
                        expr.span)
    return value


def _as_json(value: Any) -> Any:
    """``value`` as JSON holds it: a time as its ISO 8601 text, in records and lists
    too."""
    from converge_rules.engine.trace import jsonable

    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(v) for v in value]
    return jsonable(value)


def run_tests(paths: Iterable[str | Path], *, keyword: str | None = None,
              observe: RunObserver | None = None, plugins: bool | Registries = True,
              allow_paths: Iterable[str | os.PathLike[str]] = ()
              ) -> tuple[TestReport, list[Suite]]:
    """Load every ruleset in ``paths`` (files, in order), run the selected tests and
    return the report and the suites (for coverage). ``plugins``: True loads the
    installed plugins (:func:`load_plugins`), False uses the built-ins only, or give
    the registries to use. ``allow_paths``: folders besides each ruleset's own that
    its imports and ``cases`` files may be read from."""
    if isinstance(paths, str | os.PathLike):  # (read a character at a time: no tests)
        raise TypeError(f"run_tests takes a list of ruleset paths, got the "
                        f"{type(paths).__name__} {paths!r:.80}; write [{paths!r:.80}]")
    selected = compile_keyword(keyword)
    registries = load_plugins(plugins) if isinstance(plugins, bool) else plugins
    from converge_rules.language.access import allowed_folders

    allowed = allowed_folders(allow_paths)
    suites = [load_suite(p, registries, allow_paths=allowed) for p in paths]
    outcomes: list[Outcome] = []
    diagnostics: dict[Diagnostic, None] = {}
    sources: dict[str, str] = {}
    for suite in suites:
        diagnostics.update(dict.fromkeys(suite.diagnostics))
        sources.update(suite.sources)
        if not suite.runnable and not suite.problem:
            continue
        outcomes.extend(o for o in suite.case_errors if selected(o.id))
        for case in suite.cases:
            if selected(case.id):
                outcomes.append(run_case(suite, case, observe=observe))
    report = TestReport(tuple(outcomes), tuple(diagnostics), sources,
                        tuple(s.file for s in suites))
    return report, suites
