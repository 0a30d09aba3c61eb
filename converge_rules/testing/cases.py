"""Test cases: a ``test`` block is one case, a table test one case per row.

A table test binds variables per row and uses them in its steps::

    test "margin" {
      cases {
        {cost: 10.0, theirs: 12.0, price: 11.88}
        {cost: 10.0, theirs: 10.2, price: 12.0}
      }
      given Cost(sku: "A1", amount: cost)
      given Quote(sku: "A1", vendor: "acme", amount: theirs)
      expect Price(sku: "A1", channel: web, amount: price)
    }

or reads its rows from a fixture next to the ``.cvg`` file: ``cases "margin.csv"`` (a
header row of variable names; cells that read as numbers or ``true``/``false`` are
numbers and booleans — but a column the test uses only as text keeps the text written,
``007`` —, an empty cell is none, anything else a string) or
``cases "margin.jsonl"`` (one JSON object per line). Each row reports on its own, as
``file.cvg::margin[case 2]`` (rows count from 1).

A fixture is read as imports are (:mod:`converge_rules.language.access`): only a
regular file of at most 100 MiB, inside the entry ruleset's folder or a folder allowed
with ``--allow-path``. Its values are checked against the types the test uses them as
(:func:`row_problems`) before the case runs.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converge_rules.analysis.interpret import EvalError, Interpreter
from converge_rules.analysis.runview import (
    MAX_VALUE_DEPTH,
    may_nest_deeper,
    nested_deeper_than,
)
from converge_rules.errors import ConvergeError
from converge_rules.jsontext import jsonl_lines, value_problem
from converge_rules.language.access import (
    MAX_FIXTURE_BYTES,
    FileAccess,
    FileRefused,
    read_bytes,
    resolve,
)
from converge_rules.language.builtins import SMALLEST_FLOAT, float_underflows
from converge_rules.language.checks.testblocks import step_names
from converge_rules.language.format.formatter import quote
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import Span

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT = re.compile(r"[+-]?[0-9]+\Z")
_TOO_DEEP = object()
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?\Z")


@dataclass(frozen=True, slots=True)
class TestCase:
    """One runnable case: a whole test, or one row of a table test (``case`` is the
    1-based row number and ``bindings`` its variables)."""

    __test__ = False  # not a pytest class

    id: str
    file: str
    name: str
    test: n.Test
    span: Span | None
    case: int | None = None
    bindings: dict[str, Any] = field(default_factory=dict)
    #: the row's name (``case "small claim" {…}``), None for an unnamed row
    label: str | None = None
    #: the names every row must bind: those the test's steps use
    variables: frozenset[str] = frozenset()
    #: a CSV fixture row's cells read as a number or a bool, as written (``007``): a
    #: column the test uses only as text takes the text (:func:`texts_where_text`)
    texts: dict[str, str] = field(default_factory=dict)
    #: where a fixture file's row is (``rows.csv:3``), None for a row of the test itself
    where: str | None = None

    @property
    def row(self) -> str:
        """How messages name the row: ``case "small claim"``, or ``case 2``."""
        return f"case {quote(self.label)}" if self.label is not None else f"case {self.case}"


class CaseError(ConvergeError):
    """A table test's rows cannot be read (a missing fixture, a bad row)."""

    def __init__(self, message: str, span: Span | None = None,
                 details: tuple[str, ...] = ()) -> None:
        self.message = message
        self.span = span
        self.details = details
        super().__init__(f"{span}: {message}" if span else message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.span, self.details))


def case_id(file: str, name: str, case: int | None = None, label: str | None = None) -> str:
    """``file.cvg::test name``, ``file.cvg::test name[case 2]`` for an unnamed row, or
    ``file.cvg::test name[small claim]`` for a row named ``case "small claim"``."""
    if label is not None:
        return f"{file}::{name}[{label}]"
    return f"{file}::{name}" + (f"[case {case}]" if case is not None else "")


def expand(test: n.Test, file: str, base: Path, interp: Interpreter,
           access: FileAccess | None = None) -> list[TestCase]:
    """The cases of ``test``: one, or one per table row. A fixture is read as ``access``
    allows (by default: only below ``base``)."""
    cases = getattr(test, "cases", None)
    if cases is None:
        return [TestCase(case_id(file, test.name), file, test.name, test, test.span)]
    rows = rows_of(cases, base, interp, access)
    if not rows:
        raise CaseError(f'table test "{test.name}" has no cases', cases.span,
                        ("add rows to `cases { … }` or to the fixture file",))
    # The checker saw that each row binds exactly these (CVG706, CVG707); a fixture is
    # read again here, so a row is checked again before it runs.
    variables = frozenset(step_names(test)).intersection(frozenset().union(*rows))
    span = getattr(cases, "span", None) or test.span
    out = []
    for i, row in enumerate(rows, 1):
        label = None if cases.file else cases.name_of(i - 1)
        out.append(TestCase(case_id(file, test.name, i, label), file, test.name, test, span,
                            i, dict(row), label, variables, dict(getattr(row, "texts", {})),
                            getattr(row, "where", None)))
    return out


def rows_of(cases: Any, base: Path, interp: Interpreter,
            access: FileAccess | None = None) -> list[dict[str, Any]]:
    """The variable bindings of each row of a ``cases`` step; a fixture is read as
    ``access`` allows (by default: only below ``base``)."""
    span = getattr(cases, "span", None)
    if getattr(cases, "file", None):
        return read_fixture(base / cases.file, span,
                            access or FileAccess((resolve(base),)), written=cases.file)
    rows = []
    for record in cases.rows:
        try:
            value = interp.eval(record, {})
        except EvalError as exc:
            raise CaseError(f"cannot evaluate this case: {exc.message}",
                            getattr(record, "span", span)) from exc
        rows.append(dict(value))
    return rows


def read_fixture(path: Path, span: Span | None = None, access: FileAccess | None = None,
                 *, written: str | None = None) -> list[dict[str, Any]]:
    """Rows of a ``.csv`` or ``.jsonl`` fixture: a regular file no larger than the
    fixture limit, inside the folders ``access`` allows (when given). Any problem is a
    :class:`CaseError` naming the file (``written``: as the ruleset writes it) and,
    for a bad row, its line."""
    shown = written or str(path)
    try:
        target = resolve(path)
        if access is not None:
            access.check(target, shown, "a cases file")
        limit = access.max_fixture_bytes if access is not None else MAX_FIXTURE_BYTES
        data = read_bytes(target, limit, what="cases file")
    except FileRefused as exc:
        raise CaseError(f"cannot read the cases file `{shown}`: {exc.reason}", span,
                        (exc.help,)) from exc
    except OSError as exc:
        raise CaseError(f"cannot read the cases file `{shown}`: {exc.strerror or exc}", span,
                        ("the path is relative to the .cvg file",)) from exc
    try:
        text = data.decode("utf-8-sig")  # spreadsheets save "CSV UTF-8" with a BOM
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CaseError(f"{path.name}:{line}: not UTF-8 text (byte "
                        f"0x{data[exc.start]:02x})", span,
                        ("save the file as UTF-8",)) from exc
    if path.suffix.lower() == ".csv":
        return _csv_rows(text, path, span)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _jsonl_rows(text, path, span)
    raise CaseError(f"the cases file `{path.name}` must end in .csv or .jsonl", span)


def _csv_rows(text: str, path: Path, span: Span | None) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))  # rows end at \n or \r\n only
    try:
        return _csv_table(reader, path, span)
    except csv.Error as exc:  # a cell longer than the csv module takes, a NUL byte
        raise CaseError(f"{path.name}:{reader.line_num + 1}: not a CSV row ({exc})",
                        span) from exc


def _csv_table(reader: Any, path: Path, span: Span | None) -> list[dict[str, Any]]:
    header = next(reader, None)
    if header is None:
        return []
    names = [h.strip() for h in header]
    for i, name in enumerate(names):
        if not _IDENT.match(name):
            raise CaseError(f"{path.name}:1: column `{name}` is not a variable name", span,
                            ("column names are letters, digits and `_`",))
        if name in names[:i]:
            raise CaseError(f"{path.name}:1: the header names `{name}` twice", span,
                            ("each column binds one name: which value is meant is "
                             "unknown; remove or rename one of them",))
    rows: list[dict[str, Any]] = []
    for number, cells in enumerate(reader, 2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(names):
            raise CaseError(f"{path.name}:{number}: {len(cells)} "
                            f"cell{'' if len(cells) == 1 else 's'}, but the header has "
                            f"{len(names)} column{'' if len(names) == 1 else 's'}", span,
                            ("give the row one cell per header column (quote a cell that "
                             "holds a comma)",))
        row = CsvRow({name: cell_value(c) for name, c in zip(names, cells, strict=True)})
        row.where = f"{path.name}:{number}"
        _check_values(row, f"{path.name}:{number}", span)
        for name, c in zip(names, cells, strict=True):
            if row[name] == 0.0 and type(row[name]) is float and float_underflows(
                    c.strip(), 0.0):  # `1e-400` reads as 0.0
                raise CaseError(f"{path.name}:{number}: `{name}` is `{c.strip()}`, below "
                                f"the smallest float ({SMALLEST_FLOAT}), and would be 0.0",
                                span, ("give 0, or a larger number",))
        row.texts = {name: c for name, c in zip(names, cells, strict=True)
                     if isinstance(row[name], int | float)}
        rows.append(row)
    return rows


class FixtureRow(dict[str, Any]):
    """A fixture file's row: its values, and ``where`` it is (``rows.jsonl:3``)."""

    where: str


class CsvRow(FixtureRow):
    """A CSV fixture's row: the values its cells read as, and in ``texts`` the cells
    read as a number or a bool, as written (``007``, ``1e5``, ``true``)."""

    texts: dict[str, str]


def _check_values(row: Mapping[str, Any], where: str, span: Span | None) -> None:
    """A row's values must be ones a fact can hold, as input facts' are: `1e400` reads
    as infinity, and JSON also writes NaN and lone surrogates."""
    for name, value in row.items():
        problem = value_problem(value, f"`{name}`")
        if problem is not None:
            raise CaseError(f"{where}: {problem}", span,
                            ("give a finite number (below about 1.8e308) or valid text",))


def cell_value(cell: str) -> Any:
    """A CSV cell as a value: int, float, bool, None (empty) or the string itself."""
    text = cell.strip()
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return cell


def _jsonl_rows(text: str, path: Path, span: Span | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(jsonl_lines(text), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_object_once)
        except _KeyTwice as exc:
            raise CaseError(f"{path.name}:{number}: the line gives `{exc.key}` twice", span,
                            ("each key binds one name: which value is meant is unknown; "
                             "remove one of them",)) from None
        except json.JSONDecodeError as exc:
            gap = line[len(line[:exc.pos].rstrip()):exc.pos]  # the space before the error
            if exc.msg == "Extra data" and "\r" in gap:
                # lines ending in CR alone (classic Mac OS) read as one line
                at = exc.pos - len(gap) + gap.index("\r") + 1
                raise CaseError(
                    f"{path.name}:{number}: a carriage return (U+000D) at column {at} does "
                    "not end the line: JSON Lines end each line in LF (or CRLF)", span,
                    ("save the file with LF line ends; a file whose lines end in CR alone "
                     "converts with `tr '\\r' '\\n' < OLD > NEW`",)) from exc
            raise CaseError(f"{path.name}:{number}: not JSON ({exc.msg})", span) from exc
        except ValueError:  # an integer of more than 4,300 digits
            raise CaseError(f"{path.name}:{number}: a number has too many digits (integers "
                            "are 64-bit)", span) from None
        except RecursionError:
            row = _TOO_DEEP  # reported below, as any value nested too deeply
        if row is _TOO_DEEP or (may_nest_deeper(line) and
                                nested_deeper_than(row, MAX_VALUE_DEPTH)):
            raise CaseError(f"{path.name}:{number}: a value nested more than "
                            f"{MAX_VALUE_DEPTH} levels deep", span,
                            ("a row holds plain values: numbers, strings, booleans, lists "
                             "of them",))
        if not isinstance(row, dict) or not all(_IDENT.match(k) for k in row):
            raise CaseError(f"{path.name}:{number}: each line must be a JSON object whose "
                            "keys are variable names", span)
        _check_values(row, f"{path.name}:{number}", span)
        _check_underflow(row, line, f"{path.name}:{number}", span)
        fixture_row = FixtureRow({k: _tuples(v) for k, v in row.items()})
        fixture_row.where = f"{path.name}:{number}"
        rows.append(fixture_row)
    return rows


def _check_underflow(row: dict[str, Any], line: str, where: str, span: Span | None) -> None:
    """A JSON Lines row's float written below the smallest float (``1e-400``), which
    json reads as 0.0 without a word, as an error naming its key, as a CSV cell's is
    (NaN and infinities are named by :func:`_check_values`)."""
    if not any(_zero_float(v) for v in row.values()):
        return
    raw = json.loads(line, parse_float=str, parse_constant=str)  # the floats as written
    for name, value in row.items():
        text = _underflowing(value, raw.get(name))
        if text is not None:
            raise CaseError(f"{where}: `{name}` is `{text}`, below the smallest float "
                            f"({SMALLEST_FLOAT}), and would be 0.0", span,
                            ("give 0, or a larger number",))


def _zero_float(value: Any) -> bool:
    if type(value) is float:
        return value == 0.0
    return isinstance(value, list) and any(_zero_float(v) for v in value)


def _underflowing(value: Any, written: Any) -> str | None:
    """The text of a float in ``value`` that reads as 0.0 though ``written`` (the same
    value with its floats as their texts) names a nonzero number, else None."""
    if type(value) is float and isinstance(written, str):
        return written if float_underflows(written, value) else None
    if isinstance(value, list) and isinstance(written, list):
        for item, text in zip(value, written, strict=False):
            found = _underflowing(item, text)
            if found is not None:
                return found
    return None


class _KeyTwice(Exception):
    """A JSON object of a fixture line gives ``key`` twice (json keeps the last)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; raises :class:`_KeyTwice` when a key repeats."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _KeyTwice(key)
        out[key] = value
    return out


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def case_variables(test: n.Test, base: Path, access: FileAccess | None = None) -> set[str]:
    """The variables a table test's rows bind (empty for a plain test, or when the
    fixture cannot be read: that is reported when the test runs)."""
    cases = getattr(test, "cases", None)
    if cases is None:
        return set()
    if getattr(cases, "file", None):
        try:
            return {k for row in read_fixture(base / cases.file, None,
                                              access or FileAccess((resolve(base),)))
                    for k in row}
        except CaseError:
            return set()
    return {arg.name.name for record in cases.rows for arg in record.fields}

