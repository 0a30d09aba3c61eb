"""Checks of ``test`` blocks (CVG7xx).

A ``given`` may name an intent type as well as a fact type: it then opens that intent
as input, which lets a test exercise an agent that answers intents on its own.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

from converge_rules.jsontext import jsonl_lines
from converge_rules.language.access import FileAccess, FileRefused, read_bytes, resolve
from converge_rules.language.checks.agents import check_fields, check_knowledge_find
from converge_rules.language.checks.exprs import Typer
from converge_rules.language.checks.scope import (
    MISSING_FIELD,
    TYPE_MISMATCH,
    UNKNOWN_FIELD,
    UNKNOWN_NAME,
    Binding,
    Scope,
)
from converge_rules.language.checks.types import ANY, DATETIME, Ty, assignable
from converge_rules.language.diagnostics.core import Related, Severity, define
from converge_rules.language.diagnostics.suggest import closest, did_you_mean
from converge_rules.language.format.formatter import format_pattern, quote
from converge_rules.language.syntax.nodes import (
    Cases,
    Decide,
    ExpectConflict,
    ExpectFact,
    ExpectPending,
    ExpectStatus,
    Expr,
    Given,
    GivenNow,
    Mock,
    Name,
    Pattern,
    Record,
    Test,
    walk_expr,
)
from converge_rules.language.syntax.span import Span

STATUSES = ("converged", "unmet_goal", "budget_exceeded", "conflict", "oscillating",
            "invariant_violated", "awaiting_approval")
"""The statuses a job can end with."""

_HEAD = ("ruleset r\nuses tool fx_rate\nfact Cost { key sku: str, amount: float }\n"
         "fact Note { sku: str }\n")

NOT_GATED = define(
    "CVG710", "not-gated", Severity.ERROR, "Decision or pending fact of a type without a gate",
    "`approve T(…)`, `reject T(…)` and `expect pending T(…)` in a test are about facts "
    "an approval gate holds: T needs an `approve T [when …]` gate.",
    wrong="ruleset r\nfact Payment { key claim: str, amount: float }\n"
          "fact Claim { key id: str, amount: float }\n"
          "agent pay { when Claim(id, amount) emit Payment(claim: id, amount: amount) }\n"
          'test "t" {\n  given Claim(id: "c1", amount: 5.0)\n'
          '  approve Payment(claim: "c1")\n}\n',
    right="ruleset r\nfact Payment { key claim: str, amount: float }\n"
          "fact Claim { key id: str, amount: float }\n"
          "agent pay { when Claim(id, amount) emit Payment(claim: id, amount: amount) }\n"
          "approve Payment\n"
          'test "t" {\n  given Claim(id: "c1", amount: 5.0)\n'
          '  approve Payment(claim: "c1")\n}\n',
)
UNKNOWN_STATUS = define(
    "CVG701", "unknown-status", Severity.ERROR, "Unknown job status",
    "`expect status S` takes one of: converged, unmet_goal, budget_exceeded, conflict, "
    "oscillating, invariant_violated, awaiting_approval.",
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
    "DIR`); or it binds no names (an empty file: no CSV header, no line holding a "
    "JSON object). A warning: `converge test` fails that test, naming the file, and runs the "
    "others.",
    wrong='ruleset r\nfact A { key x: int }\ntest "t" {\n  cases "missing.csv"\n'
          "  given A(x: x)\n  expect A(x: x)\n}\n",
    right='ruleset r\nfact A { key x: int }\ntest "t" {\n  cases "rows.csv"\n'
          "  given A(x: x)\n  expect A(x: x)\n}\n",
    extra_files={"rows.csv": "x\n1\n2\n"},
)
DUPLICATE_TEST = define(
    "CVG704", "duplicate-test", Severity.ERROR, "Two tests with one name",
    "Test names identify results in reports; each must be unique across the ruleset. "
    "A table test's cases are named `test name[case N]` (or `test name[NAME]` for a "
    "named case), so a test cannot be named that way after a table test either.",
    wrong=_HEAD + 'test "t" {\n  expect status converged\n}\n'
          'test "t" {\n  expect no Note()\n}\n',
    right=_HEAD + 'test "t" {\n  expect status converged\n}\n'
          'test "u" {\n  expect no Note()\n}\n',
)


_ROWS = ('test "t" {\n  cases {\n    {sku: "A", amount: 1.0}\n    ROW\n  }\n'
         "  given Cost(sku: sku, amount: amount)\n  expect Cost(sku: sku, amount: amount)\n}\n")
CASE_UNKNOWN_NAME = define(
    "CVG706", "case-unknown-name", Severity.ERROR, "A case binds a name the test does not use",
    "Every row of a table test's `cases` binds exactly the names the test's steps use: "
    "inline rows, the header of a CSV fixture and each line of a JSON Lines fixture "
    "alike. A name that no step uses is most often a misspelling of one that is used, "
    "which that row then leaves unbound (see CVG707).",
    wrong=_HEAD + _ROWS.replace("ROW", '{sku: "B", amont: 2.0}'),
    right=_HEAD + _ROWS.replace("ROW", '{sku: "B", amount: 2.0}'),
)
CASE_MISSING_NAME = define(
    "CVG707", "case-missing-name", Severity.ERROR, "A case leaves out a name the test uses",
    "A row of a table test's `cases` (inline, a CSV fixture's header, a line of a JSON "
    "Lines fixture) does not bind a name that the test's steps use. Left unbound, the "
    "name would match any value in that row's expectations, and the case would pass "
    "without checking anything: every row binds every name the test uses. To accept "
    "any value in an expectation, write `_` there instead of a name.",
    wrong=_HEAD + _ROWS.replace("ROW", '{sku: "B"}'),
    right=_HEAD + _ROWS.replace("ROW", '{sku: "B", amount: 2.0}'),
)
CASE_NAME = define(
    "CVG708", "duplicate-case-name", Severity.ERROR, "Case name empty or used twice",
    'A named case (`case "small claim" {…}`) is reported under its name, as an unnamed '
    "row is under `case N` (its position, from 1): each case's name must be unique in "
    "its test, not empty, and one line of printable text (it is part of the test id).",
    wrong=_HEAD + _ROWS.replace('{sku: "A"', 'case "a" {sku: "A"').replace(
        "ROW", 'case "a" {sku: "B", amount: 2.0}'),
    right=_HEAD + _ROWS.replace('{sku: "A"', 'case "a" {sku: "A"').replace(
        "ROW", 'case "b" {sku: "B", amount: 2.0}'),
)
EXPECT_FORM = define(
    "CVG709", "expect-pattern-form", Severity.ERROR, "`not` or a binder in an expectation",
    "An `expect` step checks the final context for facts matching its pattern; the "
    "pattern has neither `not` nor a binder (`p:`), which only rules use. To expect "
    "that no fact matches, write `expect no Type(…)`: `expect not Type(…)` would "
    "expect the fact to exist.",
    wrong=_HEAD + 'test "t" {\n  given Cost(sku: "A", amount: 1.0)\n'
                  '  expect not Note(sku: "A")\n}\n',
    right=_HEAD + 'test "t" {\n  given Cost(sku: "A", amount: 1.0)\n'
                  '  expect no Note(sku: "A")\n}\n',
)

MAX_ROW_ERRORS = 10
"""How many rows of one fixture file are reported as binding the wrong names; the rest
are counted in one more error."""

_ANY_VALUE = "write `_` for any value (a test binds names only in the rows of its `cases`)"
_A_VALUE = "write a value here (a test binds names only in the rows of its `cases`)"
_MOCK_ARG = ("write a value, or leave the argument out to match any value (a test binds "
             "names only in the rows of its `cases`)")


@dataclass(frozen=True, slots=True)
class _Row:
    """The names one row of a table test binds: an inline row, the header of a CSV
    fixture (which all its rows share) or one line of a JSON Lines fixture."""

    label: str                  # how a message names the row
    names: dict[str, Span]      # each name it binds, and where
    span: Span
    column: bool = False        # the names are a CSV header's columns
    line_help: str = ""         # where to add a missing name


def check_tests(typer: Typer, tests: list[Test], access: FileAccess,
                gated: frozenset[str] = frozenset()) -> None:
    """Check every test block and that test names are unique; ``cases`` files are read
    (for their column names) only as ``access`` allows. ``gated``: the types with an
    approval gate (what ``approve``/``reject``/``expect pending`` steps may name)."""
    first: dict[str, Test] = {}
    for test in tests:
        if test.name in first:
            typer.r.error(DUPLICATE_TEST, test.span, f'a second test named "{test.name}"',
                          "rename one of them",
                          (Related(first[test.name].span, "first test here"),))
        first.setdefault(test.name, test)
        cases = case_scope(typer, test, access)
        for step in test.steps:
            if isinstance(step, Decide | ExpectPending):
                _check_gated_step(typer, step, cases.child(), gated)
            else:
                _check_step(typer, step, cases.child())
    _check_case_ids(typer, tests)


def _check_case_ids(typer: Typer, tests: list[Test]) -> None:
    """A test named like a case of a table test (``margin[big]``, ``margin[case 2]``
    beside a table test ``margin``) would share that case's id: an error, as a second
    test of one name is."""
    tables = [t for t in tests if t.cases is not None]
    for test in tests:
        for table in tables:
            if test.name.startswith(table.name + "[") and test.name.endswith("]"):
                typer.r.error(DUPLICATE_TEST, test.span,
                              f'the test "{test.name}" is named as a case of the table '
                              f'test "{table.name}", whose cases have the ids '
                              f'"{table.name}[…]"', "rename it",
                              (Related(table.span, "table test here"),))
                break


def step_names(test: Test) -> dict[str, Span]:
    """Every name the steps of ``test`` read a value from, with its first use: the
    names in ``given``, ``given now`` and ``mock`` values and in ``expect`` patterns,
    and the bare fields of ``expect`` patterns (``Price(sku)`` reads ``sku``). Enum
    members written bare are among them: what a row binds decides which names are
    variables."""
    out: dict[str, Span] = {}

    def names_in(e: Expr) -> None:
        for sub in walk_expr(e):
            if isinstance(sub, Name):
                out.setdefault(sub.id, sub.span)

    for step in test.steps:
        if isinstance(step, Given | Mock):
            for arg in step.args:
                names_in(arg.value)
            if isinstance(step, Mock) and step.returns is not None:
                names_in(step.returns)
        elif isinstance(step, GivenNow):
            names_in(step.value)
        elif isinstance(step, ExpectFact | ExpectConflict | Decide | ExpectPending):
            for fm in step.pattern.fields:
                if fm.value is None:
                    out.setdefault(fm.field.name, fm.field.span)
                else:
                    names_in(fm.value)
    return out


def case_scope(typer: Typer, test: Test, access: FileAccess) -> Scope:
    """The variables a table test's rows bind, visible in all its steps: typed from the
    first inline row that has them; a fixture file's columns (its CSV header or JSON
    keys) are typed ``any``, their values being known only when the test runs (and
    checked then against how the test uses them). The fixture is read only when
    ``access`` allows it. Reports each row that does not bind exactly the names the
    steps use (CVG706, CVG707) and case names used twice (CVG708)."""
    scope = Scope()
    cases = test.cases
    if cases is None:
        return scope
    rows: list[_Row] = []
    for index, row in enumerate(cases.rows):
        typer.args_unique(row.fields)  # a name given twice: which value is meant?
        for arg in row.fields:
            ty = typer.infer(arg.value, Scope())
            if arg.name.name not in scope.names:
                scope.names[arg.name.name] = Binding(ty, arg.span, "var")
        name = cases.name_of(index)
        label = f"case {index + 1}" if name is None else f"case {quote(name)}"
        rows.append(_Row(label, {a.name.name: a.name.span for a in row.fields}, row.span,
                         line_help="add {} to this row"))
    _check_case_names(typer, cases)
    if cases.file:
        base = Path(cases.span.file).parent
        fix = ("the path is relative to the ruleset's folder: put the file there, or fix "
               "its name")
        try:
            target = resolve(base / cases.file)
            access.check(target, cases.file, "a cases file")
            rows = _fixture_rows(target, access.max_fixture_bytes, cases.file, cases.span)
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
        if not rows or not any(r.names for r in rows):
            csv_file = Path(cases.file).suffix.lower() == ".csv"
            typer.r.warning(FIXTURE_UNREADABLE, cases.span,
                            f"the cases file `{cases.file}` binds no names: it has no "
                            + ("header row" if csv_file else "line holding a JSON object"),
                            "give it a header row of variable names and a row per case"
                            if csv_file else
                            "give it a JSON object per line, keys are variable names")
            scope.open = True  # its columns are unknown; do not report each use of them
            return scope
        for fixture_row in rows:
            for name in fixture_row.names:
                scope.names.setdefault(name, Binding(ANY, cases.span, "var"))
    _check_row_names(typer, test, rows, set(scope.names), cases.file)
    return scope


def _check_case_names(typer: Typer, cases: Cases) -> None:
    first: dict[str, Span] = {}
    for index, row in enumerate(cases.rows):
        name = cases.name_of(index)
        if name is not None and not name.strip():
            typer.r.error(CASE_NAME, row.span, "a case named with an empty string",
                          "name the case, or drop `case \"\"` to call it "
                          f"`case {index + 1}`")
            continue
        if name is not None and not name.isprintable():
            # the name is part of the test id, which pytest prints and selects as is
            typer.r.error(CASE_NAME, row.span, f"the case name {quote(name)} is not one "
                          "line of printable text", "a case name is one line of printable "
                          "text (no newline, tab or other control character)")
            continue
        shown = f"case {index + 1}" if name is None else name
        if shown in first:
            typer.r.error(CASE_NAME, row.span, f"a second case named {quote(shown)}",
                          "rename one of them", (Related(first[shown], "first case here"),))
        first.setdefault(shown, row.span)


def _check_row_names(typer: Typer, test: Test, rows: list[_Row], bound: set[str],
                     file: str | None) -> None:
    """Each row binds exactly the names the steps use (those some row binds: a name
    no row binds is an unknown name where it is used)."""
    uses = step_names(test)
    used = [name for name in uses if name in bound]
    exact = set(used)
    # what a misspelt name may have meant: the names the steps read, less enum members
    # that no row binds (those are members, not variables)
    meant = [name for name in uses if name in bound or not typer.t.owners(name)]
    reported = 0
    for index, row in enumerate(rows):
        if row.names.keys() == exact:
            continue
        if reported == MAX_ROW_ERRORS and file is not None:
            rest = sum(1 for r in rows[index:] if r.names.keys() != exact)
            typer.r.error(CASE_MISSING_NAME, row.span,
                          f"{rest} more lines of `{file}` do not bind exactly the names "
                          "the test uses", "fix the lines reported above first")
            return
        reported += 1
        missing = [name for name in used if name not in row.names]
        explained: set[str] = set()
        for name, span in row.names.items():
            if name in exact:
                continue
            near = closest(name, missing, limit=1)
            explained.update(near)
            what = (f"{row.label} has a column `{name}`, which no step of the test uses"
                    if row.column else
                    f"{row.label} binds `{name}`, which no step of the test uses")
            help = (f"did you mean `{near[0]}`? The test uses `{near[0]}`, which this "
                    f"{'file' if row.column else 'row'} does not bind" if near else
                    did_you_mean(name, [m for m in meant if m not in row.names],
                                 otherwise="every row binds exactly the names the "
                                           "test's steps use: remove it, or use it in "
                                           "a step"))
            typer.r.error(CASE_UNKNOWN_NAME, span, what, help)
        missing = [name for name in missing if name not in explained]
        if missing:
            names = ", ".join(f"`{m}`" for m in missing)
            what = (f"{row.label} has no column {names}, which the test uses"
                    if row.column else
                    f"{row.label} does not bind {names}, which the test uses")
            add = ", ".join((f"`{m}: …`" if not row.column and file is None else
                             f"`{m}`" if row.column else f'`"{m}": …`') for m in missing)
            typer.r.error(CASE_MISSING_NAME, row.span, what,
                          row.line_help.format(add) + " (every row binds every name "
                          "the test uses)", (Related(uses[missing[0]], "used here"),))


def _fixture_rows(path: Path, limit: int, shown: str, span: Span) -> list[_Row]:
    """The names each row of a .csv (its header row, for all rows) or .jsonl (the keys
    of each line) fixture binds. Raises ``OSError``, ``FileRefused`` (not a regular
    file, larger than ``limit``) or ``UnicodeDecodeError`` when the file cannot be
    read; a line that is not JSON (or nested too deeply to read) is skipped here and
    reported when the test runs."""
    # utf-8-sig: spreadsheets save "CSV UTF-8" with a byte order mark
    text = read_bytes(path, limit, what="cases file").decode("utf-8-sig")
    if path.suffix.lower() == ".csv":
        header = next(csv.reader(io.StringIO(text, newline="")), [])
        columns = dict.fromkeys((h.strip() for h in header), span)
        return [_Row(f"the header of `{shown}` (line 1)", columns, span, column=True,
                     line_help="add a column {}")]
    rows = []
    for number, line in enumerate(jsonl_lines(text), 1):
        try:
            row = json.loads(line) if line.strip() else None
        except (ValueError, RecursionError):  # not JSON, too deep, too many digits
            continue
        if isinstance(row, dict):
            rows.append(_Row(f"line {number} of `{shown}`", dict.fromkeys(row, span), span,
                             line_help=f"add {{}} to line {number}"))
    return rows


def _check_step(typer: Typer,
                step: Given | GivenNow | Mock | ExpectFact | ExpectConflict | ExpectStatus,
                scope: Scope) -> None:
    t = typer.t
    scope.unbound_help = _A_VALUE if isinstance(step, Given) else \
        _MOCK_ARG if isinstance(step, Mock) else _ANY_VALUE
    if isinstance(step, ExpectFact | ExpectConflict):
        _check_expect_form(typer, step)
        _check_bare_fields(typer, step.pattern, scope)
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


def _check_gated_step(typer: Typer, step: Decide | ExpectPending, scope: Scope,
                      gated: frozenset[str]) -> None:
    """``approve T(…)``, ``reject T(…)`` and ``expect pending T(…)``: a pattern as an
    expectation's, on a type that has an approval gate."""
    scope.unbound_help = _ANY_VALUE
    _check_expect_form(typer, step)
    _check_bare_fields(typer, step.pattern, scope)
    typer.pattern(step.pattern, scope, "expect")
    name = step.pattern.type.name
    if name in typer.t.facts and name not in gated:
        what = ("expect pending" if isinstance(step, ExpectPending)
                else "approve" if step.approve else "reject")
        typer.r.error(NOT_GATED, step.pattern.type.span,
                      f"`{what} {name}(…)`: `{name}` has no approval gate, so no fact of "
                      "it is ever pending",
                      f"add `approve {name} when …` to the ruleset, or drop this step")


def _check_expect_form(typer: Typer,
                       step: ExpectFact | ExpectConflict | Decide | ExpectPending) -> None:
    """An expectation's pattern has no `not` (which would be read as "expect it") and
    no binder (which would bind nothing): each is an error, never dropped silently."""
    p = step.pattern
    if p.negated:
        written = format_pattern(replace(p, negated=False, binder=None))
        verb = ("expect conflict" if isinstance(step, ExpectConflict) else
                "expect pending" if isinstance(step, ExpectPending) else
                "approve" if isinstance(step, Decide) and step.approve else "reject")
        fix = (f"write `expect no {written}` to expect that no such fact exists"
               if isinstance(step, ExpectFact) else f"drop `not`: `{verb} {written}`")
        typer.r.error(EXPECT_FORM, p.span, "`not` in an expectation", fix)
    if p.binder is not None:
        typer.r.error(EXPECT_FORM, p.binder.span,
                      f"`{p.binder.name}:` binds nothing in an expectation",
                      f"remove `{p.binder.name}:`")


def _check_bare_fields(typer: Typer, pattern: Pattern, scope: Scope) -> None:
    """A bare field in an expectation (``Price(sku)``) compares the field with the
    variable of its name, so a row must bind it; never does it match any value."""
    for fm in pattern.fields:
        name = fm.field.name
        if (fm.value is None and name not in scope.names and not scope.open
                and typer.t.field_of(pattern.type.name, name) is not None):
            typer.r.error(UNKNOWN_NAME, fm.field.span,
                          f"unknown name `{name}`: `{pattern.type.name}({name})` compares "
                          f"`{name}` with a variable of that name, which nothing binds",
                          did_you_mean(name, scope.names, otherwise=(
                              f"write `{name}: _` for any value, or leave the field out "
                              "(a test binds names only in the rows of its `cases`)")))


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
    if sig is not None:
        check_knowledge_find(typer, sig, mock.args)  # a mock spelt otherwise never answers
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
