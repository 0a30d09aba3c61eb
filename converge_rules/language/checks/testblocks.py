"""Checks of ``test`` blocks (CVG7xx).

A ``given`` may name an intent type as well as a fact type: it then opens that intent
as input, which lets a test exercise an agent that answers intents on its own.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from converge_rules.jsontext import jsonl_lines
from converge_rules.language.access import FileAccess, FileRefused, read_bytes, resolve
from converge_rules.language.checks.agents import check_fields
from converge_rules.language.checks.exprs import Typer
from converge_rules.language.checks.scope import (
    MISSING_FIELD,
    TYPE_MISMATCH,
    UNKNOWN_FIELD,
    Binding,
    Scope,
)
from converge_rules.language.checks.types import ANY, DATETIME, Ty, assignable
from converge_rules.language.diagnostics.core import Related, Severity, define
from converge_rules.language.diagnostics.suggest import did_you_mean
from converge_rules.language.syntax.nodes import (
    ExpectConflict,
    ExpectFact,
    ExpectStatus,
    Expr,
    Given,
    GivenNow,
    Mock,
    Record,
    Test,
)

STATUSES = ("converged", "unmet_goal", "budget_exceeded", "conflict", "oscillating")
"""The statuses a job can end with."""

_HEAD = ("ruleset r\nuses tool fx_rate\nfact Cost { key sku: str, amount: float }\n"
         "fact Note { sku: str }\n")

UNKNOWN_STATUS = define(
    "CVG701", "unknown-status", Severity.ERROR, "Unknown job status",
    "`expect status S` takes one of: converged, unmet_goal, budget_exceeded, conflict, "
    "oscillating.",
    wrong=_HEAD + 'test "t" {\n  given Cost(sku: "A", amount: 1.0)\n'
          "  expect status converge\n}\n",
    right=_HEAD + 'test "t" {\n  given Cost(sku: "A", amount: 1.0)\n'
          "  expect status converged\n}\n",
)
MOCK_UNDECLARED = define(
    "CVG702", "mock-undeclared-tool", Severity.ERROR, "Mock of a tool the ruleset does not use",
    "A test mocks a tool that is not declared with `uses tool`, so no agent can call it.",
    wrong=_HEAD + 'test "t" {\n  mock tool fx_rates(currency: "EUR") returns {usd: 1.1}\n'
          "  expect status converged\n}\n",
    right=_HEAD + 'test "t" {\n  mock tool fx_rate(currency: "EUR") returns {usd: 1.1}\n'
          "  expect status converged\n}\n",
)
CONFLICT_UNKEYED = define(
    "CVG703", "expect-conflict-unkeyed", Severity.ERROR, "expect conflict on a type without keys",
    "Only keyed fact types conflict; `expect conflict T(…)` on a type without `key` "
    "fields (or an intent type) can never hold.",
    wrong=_HEAD + 'test "t" {\n  given Note(sku: "A")\n  expect conflict Note(sku: "A")\n}\n',
    right=_HEAD + 'test "t" {\n  given Cost(sku: "A", amount: 1.0)\n'
          '  expect conflict Cost(sku: "A")\n}\n',
)
FIXTURE_UNREADABLE = define(
    "CVG705", "cases-file-unreadable", Severity.WARNING, "Cases file cannot be read",
    "A table test's `cases \"FILE\"` names a CSV or JSON Lines file, relative to the "
    "ruleset's folder, that does not exist or cannot be read as UTF-8 text: it is "
    "missing, not a regular file (a device, a FIFO, a directory), larger than 100 MiB, "
    "or outside the entry ruleset's folder (allow another folder with `--allow-path "
    "DIR`). A warning: `converge test` fails that test, naming the file, and runs the "
    "others.",
    wrong='ruleset r\nfact A { key x: int }\ntest "t" {\n  cases "missing.csv"\n'
          "  given A(x: x)\n  expect A(x: x)\n}\n",
    right='ruleset r\nfact A { key x: int }\ntest "t" {\n  cases "rows.csv"\n'
          "  given A(x: x)\n  expect A(x: x)\n}\n",
    extra_files={"rows.csv": "x\n1\n2\n"},
)
DUPLICATE_TEST = define(
    "CVG704", "duplicate-test", Severity.ERROR, "Two tests with one name",
    "Test names identify results in reports; each must be unique across the ruleset.",
    wrong=_HEAD + 'test "t" {\n  expect status converged\n}\n'
          'test "t" {\n  expect no Note()\n}\n',
    right=_HEAD + 'test "t" {\n  expect status converged\n}\n'
          'test "u" {\n  expect no Note()\n}\n',
)


def check_tests(typer: Typer, tests: list[Test], access: FileAccess) -> None:
    """Check every test block and that test names are unique; ``cases`` files are read
    (for their column names) only as ``access`` allows."""
    first: dict[str, Test] = {}
    for test in tests:
        if test.name in first:
            typer.r.error(DUPLICATE_TEST, test.span, f'a second test named "{test.name}"',
                          "rename one of them",
                          (Related(first[test.name].span, "first test here"),))
        first.setdefault(test.name, test)
        cases = case_scope(typer, test, access)
        for step in test.steps:
            _check_step(typer, step, cases.child())


def case_scope(typer: Typer, test: Test, access: FileAccess) -> Scope:
    """The variables a table test's rows bind, visible in all its steps: typed from the
    first inline row that has them; a fixture file's columns (its CSV header or JSON
    keys) are typed ``any``, their values being known only when the test runs (and
    checked then against how the test uses them). The fixture is read only when
    ``access`` allows it."""
    scope = Scope()
    cases = test.cases
    if cases is None:
        return scope
    for row in cases.rows:
        for arg in row.fields:
            ty = typer.infer(arg.value, Scope())
            if arg.name.name not in scope.names:
                scope.names[arg.name.name] = Binding(ty, arg.span, "var")
    if cases.file:
        base = Path(cases.span.file).parent
        fix = ("the path is relative to the ruleset's folder: put the file there, or fix "
               "its name")
        try:
            target = resolve(base / cases.file)
            access.check(target, cases.file, "a cases file")
            columns = _fixture_columns(target, access.max_fixture_bytes)
        except (OSError, UnicodeDecodeError, FileRefused) as exc:
            if isinstance(exc, FileRefused):
                reason, fix = exc.reason, exc.help
            else:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (
                    "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc))
            typer.r.warning(FIXTURE_UNREADABLE, cases.span,
                            f"cannot read the cases file `{cases.file}`: {reason}", fix)
            scope.open = True  # its columns are unknown; do not report each use of them
            return scope
        for name in columns:
            scope.names.setdefault(name, Binding(ANY, cases.span, "var"))
    return scope


def _fixture_columns(path: Path, limit: int) -> list[str]:
    """Column names of a .csv (header row) or .jsonl (keys of every line) fixture.
    Raises ``OSError``, ``FileRefused`` (not a regular file, larger than ``limit``) or
    ``UnicodeDecodeError`` when the file cannot be read; a line that is not JSON (or
    nested too deeply to read) is skipped here and reported when the test runs."""
    text = read_bytes(path, limit, what="cases file").decode("utf-8")
    if path.suffix.lower() == ".csv":
        header = next(csv.reader(io.StringIO(text, newline="")), [])
        return [h.strip() for h in header]
    names: dict[str, None] = {}  # in order of first appearance
    for line in jsonl_lines(text):
        try:
            row = json.loads(line) if line.strip() else {}
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(row, dict):
            names.update(dict.fromkeys(row))
    return list(names)


def _check_step(typer: Typer,
                step: Given | GivenNow | Mock | ExpectFact | ExpectConflict | ExpectStatus,
                scope: Scope) -> None:
    t = typer.t
    if isinstance(step, Given):
        check_fields(typer, step.type, step.args, scope, intent=None, verb="given")
    elif isinstance(step, GivenNow):
        typer.expect(step.value, scope, DATETIME, "`given now`")
    elif isinstance(step, ExpectFact):
        typer.pattern(step.pattern, scope, "expect")
    elif isinstance(step, ExpectConflict):
        typer.pattern(step.pattern, scope, "expect")
        decl = t.facts.get(step.pattern.type.name)
        if decl is not None and (decl.intent or not decl.keys):
            what = "an intent type" if decl.intent else "a type without key fields"
            typer.r.error(CONFLICT_UNKEYED, step.pattern.type.span,
                          f"`{decl.name.name}` is {what}, so it never conflicts",
                          "expect conflicts on a keyed fact type")
    elif isinstance(step, ExpectStatus):
        if step.status.name not in STATUSES:
            typer.r.error(UNKNOWN_STATUS, step.status.span,
                          f"unknown status `{step.status.name}`",
                          did_you_mean(step.status.name, STATUSES,
                                       otherwise="statuses: " + ", ".join(STATUSES)))
    else:
        _check_mock(typer, step, scope)


def _check_mock(typer: Typer, mock: Mock, scope: Scope) -> None:
    tools = typer.t.tools
    args = typer.args_unique(mock.args)
    # A `fails "reason"` mock has no result to check; its tool and arguments still are.
    returned = ANY if mock.returns is None else typer.infer(mock.returns, scope)
    if mock.tool.name not in tools:
        typer.r.error(MOCK_UNDECLARED, mock.tool.span,
                      f"mock of `{mock.tool.name}`, which the ruleset does not declare",
                      typer.t.vocabulary("tools").did_you_mean(mock.tool.name, otherwise=(
                          f"add `uses tool {mock.tool.name}` or remove the mock")))
        for a in mock.args:
            typer.infer(a.value, scope)
        return
    sig = tools[mock.tool.name]
    for a in mock.args:
        if sig is None or args.get(a.name.name) is not a or (
                a.name.name not in sig.args and "*" in sig.args):  # an open tool
            typer.infer(a.value, scope)
        elif a.name.name not in sig.args:
            typer.r.error(UNKNOWN_FIELD, a.name.span,
                          f"tool `{sig.name}` has no argument `{a.name.name}`",
                          did_you_mean(a.name.name, sig.args,
                                       otherwise="arguments: " + ", ".join(sig.args)))
        else:
            typer.expect(a.value, scope, typer.of_text(sig.args[a.name.name]),
                         f"argument `{a.name.name}` of tool `{sig.name}`")
    if sig is None or mock.returns is None or returned.is_any:
        return
    if returned.kind != "record":
        typer.r.error(TYPE_MISMATCH, mock.returns.span,
                      f"a mock of `{sig.name}` must return a record, found {returned}",
                      "write `returns {field: value, …}`")
        return
    _check_result(typer, mock, mock.returns, returned, sig.result)


def _check_result(typer: Typer, mock: Mock, returns: Expr, returned: Ty,
                  result: dict[str, str]) -> None:
    spans = {a.name.name: a.name.span for a in returns.fields} \
        if isinstance(returns, Record) else {}
    names = {k for k, _ in returned.fields or ()}
    for key, ty in returned.fields or ():
        want = result.get(key)
        where = spans.get(key, returns.span)
        if want is None and "*" in result:  # an open result: any field, any type
            continue
        if want is None:
            typer.r.error(UNKNOWN_FIELD, where,
                          f"the result of `{mock.tool.name}` has no field `{key}`",
                          did_you_mean(key, result, otherwise="result fields: "
                                       + ", ".join(result)))
        elif not assignable(ty, typer.of_text(want)):
            typer.r.error(TYPE_MISMATCH, where,
                          f"result field `{key}` of `{mock.tool.name}` is {want}, "
                          f"mocked with {ty}", f"give `{key}` a value of type {want}")
    missing = [k for k, v in result.items()
               if k != "*" and k not in names and not v.strip().endswith("?")]
    if missing:
        typer.r.error(MISSING_FIELD, returns.span,
                      f"the mocked result of `{mock.tool.name}` is missing "
                      + ", ".join(f"`{m}`" for m in missing),
                      "add " + ", ".join(f"{m}: …" for m in missing))
