"""Input facts: JSON Lines, a JSON array, CSV, or Python pairs — validated, then tuples.

Every fact is validated against its declared type with pydantic, in one batch per type
(a ``TypeAdapter`` over a ``TypedDict`` with ``extra="forbid"``; scalars are strict,
except that an int is accepted for a float). Enum members are given by name, lists
become tuples, defaults are filled, strings are interned. The first bad fact raises
:class:`~converge_rules.errors.InputError` naming the file, the line, the type and the
field, with a fix; nothing runs.

Integers are signed 64-bit: an integer field given one outside the range is refused,
as is a string holding a lone surrogate (see :mod:`converge_rules.jsontext`).
Reading is linear in the size of the input for every format: line numbers are
counted as the reader moves forward, never again from the start.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import re
import stat
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, Required

from pydantic import (
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from converge_rules.errors import InputError
from converge_rules.jsontext import jsonl_lines, surrogate_problem
from converge_rules.language.builtins import (
    INT_MAX,
    INT_MIN,
    INT_RANGE,
    parse_date,
    parse_datetime,
    parse_duration,
    shown_int,
    time_kind,
)
from converge_rules.program import MISSING, FieldSpec, Program, TypeSpec, ValueType


@dataclass(frozen=True, slots=True)
class InputFacts:
    """Validated input facts: ``(type id, values)`` pairs in input order."""

    rows: tuple[tuple[int, tuple[Any, ...]], ...]

    def __len__(self) -> int:
        return len(self.rows)

    def __add__(self, other: InputFacts) -> InputFacts:
        return InputFacts(self.rows + other.rows)


@dataclass(frozen=True, slots=True)
class _Raw:
    """One fact before validation, and where it came from."""

    type_name: str
    fields: Any
    source: str
    line: int


# ------------------------------------------------------------------ validation

_BIG_INT_HELP = (f"integers are whole numbers from {INT_MIN} to {INT_MAX}; a larger "
                 "quantity needs a float field (or a str one, to keep every digit)")


def _time_reader(kind: str) -> Callable[[Any], Any]:
    """The validator of a date, datetime or duration field: its ISO 8601 text (what
    JSON, JSON Lines and CSV hold), or a value of the type itself (the Python API)."""
    parse = {"date": parse_date, "datetime": parse_datetime,
             "duration": parse_duration}[kind]

    def read(value: Any) -> Any:
        if time_kind(value) == kind:
            return parse_datetime(value.isoformat()) if kind == "datetime" else value
        if not isinstance(value, str):
            raise ValueError(f"a {kind} is given as ISO 8601 text, e.g. "
                             + {"date": '"2026-12-06"', "datetime": '"2026-12-06T10:00:00Z"',
                                "duration": '"P30D"'}[kind])
        return parse(value)

    return read


def _annotation(vt: ValueType) -> Any:
    base: Any
    if vt.base in ("date", "datetime", "duration"):
        base = Annotated[Any, PlainValidator(_time_reader(vt.base))]
    elif vt.base == "str":
        base = Annotated[str, Strict()]
    elif vt.base == "int":
        base = Annotated[int, Strict(), Field(ge=INT_MIN, le=INT_MAX)]
    elif vt.base == "float":
        base = Annotated[float, Strict(), Field(allow_inf_nan=False)]  # an int is accepted too
    elif vt.base == "bool":
        base = Annotated[bool, Strict()]
    elif vt.base == "enum":
        base = Literal[tuple(vt.members)] if vt.members else Annotated[str, Strict()]
    else:
        assert vt.element is not None
        base = tuple[_annotation(vt.element), ...]  # type: ignore[misc]
    return base | None if vt.optional else base


def _adapter(spec: TypeSpec) -> TypeAdapter[list[Any]]:
    annotations: dict[str, Any] = {}
    for f in spec.fields:
        ann = _annotation(f.type)
        annotations[f.name] = Required[ann] if f.required else NotRequired[ann]
    make: Any = TypedDict
    typed: Any = with_config(ConfigDict(extra="forbid"))(make(spec.name, annotations))
    adapter: TypeAdapter[list[Any]] = TypeAdapter(list[typed])
    return adapter


def _default(f: FieldSpec) -> Any:
    return None if f.default is MISSING else f.default


def _field_help(spec: TypeSpec) -> str:
    parts = [f"{f.name}: {f.type}" + ("" if f.required else " (optional)") for f in spec.fields]
    return f"{spec.name} has fields {', '.join(parts)}"


def _error(spec: TypeSpec, raw: _Raw, err: Mapping[str, Any]) -> InputError:
    loc = err.get("loc", ())
    field = str(loc[1]) if len(loc) > 1 else ""
    kind = err.get("type", "")
    names = spec.field_names
    if kind == "string_unicode":  # pydantic refuses a key with a lone surrogate
        problem = surrogate_problem(raw.fields, spec.name)
        if problem is not None:
            return InputError(problem, source=raw.source, line=raw.line,
                              help=_SURROGATE_HELP)
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(field, names, n=1)
        fix = (f"did you mean `{close[0]}`? " if close else "") + _field_help(spec)
        return InputError(
            f"{spec.name} has no field `{field}`", source=raw.source, line=raw.line, help=fix
        )
    if kind == "missing":
        ftype = spec.fields[spec.position(field)].type if field in names else "a value"
        return InputError(
            f"{spec.name} is missing the required field `{field}`",
            source=raw.source, line=raw.line, help=f"add `{field}` ({ftype}); {_field_help(spec)}",
        )
    if field in names:
        spec_field = spec.fields[spec.position(field)]
        ftype = spec_field.type
        got = err.get("input")
        if kind in ("less_than_equal", "greater_than_equal") and isinstance(got, int):
            return InputError(
                f"{spec.name}.{field} is outside {INT_RANGE}: got {shown_int(got)}",
                source=raw.source, line=raw.line,
                help=_BIG_INT_HELP,
            )
        fix = f"give `{field}` {_article(str(ftype))} {ftype} value ({err.get('msg', '')})"
        if ftype.base == "enum" and isinstance(got, str) and "." in got:
            member = got.rsplit(".", 1)[1]
            if member in ftype.members:
                fix = f'write "{member}": enum members are given by name alone'
        if got is None and not spec_field.required:
            fix += f"; or leave `{field}` out to use its default"
        return InputError(
            f"{spec.name}.{field} must be {ftype}, got {_shown(got)}",
            source=raw.source, line=raw.line, help=fix,
        )
    return InputError(
        f"{spec.name}: {err.get('msg', 'invalid fact')}", source=raw.source, line=raw.line,
        help=f"write each fact as an object of fields; {_field_help(spec)}",
    )


def _shown(value: Any) -> str:
    """A wrong value as an error message shows it (as JSON; a long one cut short)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return shown_int(value)
    text = json.dumps(value, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."


def _article(word: str) -> str:
    return "an" if word[:1].lower() in ("a", "e", "i", "o", "u") else "a"


def _unknown_type(program: Program, raw: _Raw) -> InputError:
    names = sorted(program.type_ids)
    close = difflib.get_close_matches(raw.type_name, names, n=1)
    fix = f"did you mean `{close[0]}`?" if close else (
        "declared types: " + (", ".join(names) or "none")
    )
    return InputError(
        f"unknown fact type `{raw.type_name}`", source=raw.source, line=raw.line, help=fix
    )


class _BadText(ValueError):
    """A string value holding a lone surrogate (the message says which field)."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def _converter(spec: TypeSpec) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """validated dict → value tuple: defaults filled, strings interned; a string with a
    lone surrogate raises :class:`_BadText`."""
    names = spec.field_names
    defaults = {f.name: _default(f) for f in spec.fields if not f.required}
    get = itemgetter(*names)
    single = len(names) == 1
    strings = [i for i, f in enumerate(spec.fields) if f.type.base in ("str", "enum")]
    text_lists = [i for i, f in enumerate(spec.fields)
                  if f.type.base == "list" and f.type.element is not None
                  and f.type.element.base == "str"]
    intern = sys.intern
    search = _SURROGATE.search
    full = len(names)

    def convert(d: dict[str, Any]) -> tuple[Any, ...]:
        if len(d) != full:
            d = {**defaults, **d}
        vals = (get(d),) if single else get(d)
        for p in text_lists:
            problem = surrogate_problem(vals[p], f"{spec.name}.{names[p]}")
            if problem is not None:
                raise _BadText(problem)
        if strings:
            out = list(vals)
            for p in strings:
                v = out[p]
                if v is not None:
                    if not v.isascii() and search(v):
                        raise _BadText(surrogate_problem(v, f"{spec.name}.{names[p]}"))
                    out[p] = intern(v)
            return tuple(out)
        return vals

    return convert


_SURROGATE_HELP = ("a lone surrogate (a \\ud800-\\udfff escape that is not half of a pair) "
                   "is not a character and cannot be written as UTF-8: write the "
                   "character itself, or its whole surrogate pair")


def validate(
    program: Program,
    names: Sequence[str],
    fields: Sequence[Any],
    where: Callable[[int], tuple[str, int]],
) -> InputFacts:
    """Validate raw facts (``names[i]``, ``fields[i]``; ``where(i)`` gives the source
    and line for an error) into tuples, batched per type, keeping input order."""
    type_ids = program.type_ids
    by_type: dict[int, list[int]] = {}
    for i, name in enumerate(names):
        type_id = type_ids.get(name)
        if type_id is None:
            raise _unknown_type(program, _raw(names, fields, where, i))
        members = by_type.get(type_id)
        if members is None:
            by_type[type_id] = [i]
        else:
            members.append(i)
    out: list[tuple[int, tuple[Any, ...]] | None] = [None] * len(names)
    for type_id, members in by_type.items():
        spec = program.types[type_id]
        batch = [fields[i] for i in members]
        for i, item in zip(members, batch, strict=True):
            if not isinstance(item, Mapping):
                raw = _raw(names, fields, where, i)
                raise InputError(
                    f"the fields of {spec.name} must be an object, got "
                    f"{type(item).__name__}", source=raw.source, line=raw.line,
                    help=f'write {{"{spec.name}": {{"field": value, ...}}}}; '
                         f"{_field_help(spec)}",
                )
        try:
            checked = _adapter(spec).validate_python(batch)
        except ValidationError as exc:
            errors = exc.errors()
            item = errors[0]["loc"][0]
            # an unknown field explains a "missing" one (a typo), so report it first
            mine = [e for e in errors if e["loc"][0] == item]
            first = next((e for e in mine if e["type"] == "extra_forbidden"), mine[0])
            raise _error(spec, _raw(names, fields, where, members[int(item)]), first) from None
        convert = _converter(spec)
        for i, d in zip(members, checked, strict=True):
            try:
                out[i] = (type_id, convert(d))
            except _BadText as exc:
                raw = _raw(names, fields, where, i)
                raise InputError(str(exc), source=raw.source, line=raw.line,
                                 help=_SURROGATE_HELP) from None
    return InputFacts(tuple(out))  # type: ignore[arg-type]


def _raw(
    names: Sequence[str], fields: Sequence[Any], where: Callable[[int], tuple[str, int]],
    i: int,
) -> _Raw:
    source, line = where(i)
    return _Raw(names[i], fields[i], source, line)


def _validate_raws(program: Program, raws: Sequence[_Raw]) -> InputFacts:
    return validate(
        program, [r.type_name for r in raws], [r.fields for r in raws],
        lambda i: (raws[i].source, raws[i].line),
    )


# ------------------------------------------------------------------- sources


def validate_pairs(
    program: Program, facts: Iterable[tuple[str, Mapping[str, Any]]], source: str = "<facts>"
) -> InputFacts:
    """Validate ``(type name, fields)`` pairs given from Python (line = position + 1)."""
    if isinstance(facts, Mapping):
        raise InputError("facts must be (type name, fields) pairs, not one mapping",
                         source=source, help='pass [("Cost", {"sku": "A1", "amount": 10.0})]')
    pairs = facts if isinstance(facts, list) else list(facts)
    for i, pair in enumerate(pairs):
        if (not isinstance(pair, tuple | list) or len(pair) != 2
                or not isinstance(pair[0], str)):
            shown = repr(pair)
            raise InputError(
                "expected a (type name, fields) pair, got "
                f"{shown if len(shown) <= 80 else shown[:77] + '...'}",
                source=source, line=i + 1,
                help='give each fact as ("Cost", {"sku": "A1", "amount": 10.0})',
            )
    return validate(
        program, [p[0] for p in pairs], [p[1] for p in pairs], lambda i: (source, i + 1)
    )


class _JsonValueError(ValueError):
    """A JSON document that parses but holds what facts cannot: a repeated key (which
    ``json`` would silently resolve to the last value) or NaN/Infinity."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JsonValueError(f"the key `{key}` appears twice in one object; "
                                  "only one value can be kept")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _JsonValueError(f"`{name}` is not a number facts can hold; "
                          "give a finite number, or leave an optional field out")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # `1e400` parses as infinity
        raise _JsonValueError(f"`{text}` is beyond the largest float (about 1.8e308); "
                              "give a finite number")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant,
                            parse_float=_finite)


_LONG_DIGITS = re.compile(r"[0-9]{4301,}")  # Python converts up to 4,300 digits


def _decode(text: str, pos: int, source: str, line: int, help: str) -> tuple[Any, int]:
    """One JSON value from ``text`` at ``pos``, which is on line ``line`` of the file,
    and where it ends; anything wrong (bad syntax, a repeated key, NaN, a number too
    long to read, nesting too deep to parse) is an InputError naming the line."""
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON at column {exc.colno}: {exc.msg}", source=source,
                         line=line + text.count("\n", pos, exc.pos), help=help) from None
    except _JsonValueError as exc:
        raise InputError(str(exc), source=source, line=line, help=help) from None
    except ValueError:  # an integer longer than Python converts (4,300 digits)
        found = _LONG_DIGITS.search(text, pos)
        at = pos if found is None else found.start()
        digits = 0 if found is None else len(found.group())
        raise InputError(f"an integer of {digits:,} digits is outside {INT_RANGE}",
                         source=source, line=line + text.count("\n", pos, at),
                         help=_BIG_INT_HELP) from None
    except RecursionError:
        raise InputError("JSON nested too deeply to read", source=source, line=line,
                         help="facts hold flat values and lists; remove the nesting") from None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "number"


def _wrapped(obj: Any, source: str, line: int) -> _Raw:
    if not isinstance(obj, dict) or len(obj) != 1:
        found = (f"an object with {len(obj)} keys ({', '.join(map(str, obj))})"
                 if isinstance(obj, dict) and obj else
                 "an empty object" if isinstance(obj, dict) else
                 f"a JSON {_json_kind(obj)}")
        raise InputError(
            f"expected an object with the fact type as its only key, found {found}",
            source=source, line=line,
            help='write one fact per object: {"Cost": {"sku": "A1", "amount": 10.0}}',
        )
    ((name, fields),) = obj.items()
    return _Raw(str(name), fields, source, line)


def _read_jsonl(text: str, source: str) -> list[_Raw]:
    raws: list[_Raw] = []
    help = "write one JSON object per line"
    # split on "\n" only: str.splitlines would also split inside a string holding
    # U+2028 or another line separator
    for n, line in enumerate(jsonl_lines(text), start=1):
        if not line.strip():
            continue
        start = len(line) - len(line.lstrip())
        obj, end = _decode(line, start, source, n, help)
        rest = line[end:]
        if rest.strip():
            column = end + len(rest) - len(rest.lstrip()) + 1
            raise InputError(f"not valid JSON at column {column}: extra data after the "
                             "fact", source=source, line=n, help=help)
        raws.append(_wrapped(obj, source, n))
    return raws


_JSON_SPACE = re.compile(r"[ \t\r\n]*")


def _read_json_array(text: str, source: str) -> list[_Raw]:
    raws: list[_Raw] = []
    skip = _JSON_SPACE.match
    count = text.count
    pos = text.index("[") + 1
    # the line of position `counted`, moved forward with the reader: counting from the
    # start for every fact made reading quadratic in the size of the array
    line = 1 + count("\n", 0, pos)
    counted = pos
    expect_item = True
    end = len(text)
    while True:
        pos = skip(text, pos).end()  # type: ignore[union-attr]  # `*` always matches
        line += count("\n", counted, pos)
        counted = pos
        if pos >= end:
            raise InputError("the JSON array is not closed", source=source, line=line,
                             help="end the array with `]`")
        char = text[pos]
        if char == "]" and (expect_item is False or not raws):
            return raws
        if char == "," and not expect_item:
            pos += 1
            expect_item = True
            continue
        if not expect_item:
            raise InputError("expected `,` or `]` after a fact", source=source, line=line,
                             help="separate the facts of a JSON array with commas")
        obj, pos = _decode(text, pos, source, line, "write a JSON array of objects")
        raws.append(_wrapped(obj, source, line))
        expect_item = False


# A number in a CSV cell is written as JSON writes it (ASCII digits, a sign, a point, an
# exponent), with blanks around it allowed: Python's int() and float() would also take
# `1_0` and other scripts' digits (`١٠` is 10), which a JSON input refuses.
_CSV_INT = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)
_CSV_FLOAT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*", re.ASCII)


def _cell(value: str, vt: ValueType) -> Any:
    if vt.base == "int":
        if not _CSV_INT.fullmatch(value):
            raise ValueError("a whole number such as 42 (ASCII digits, no `_`)")
        try:
            return int(value)
        except ValueError:  # beyond 4,300 digits
            raise ValueError(f"a whole number from {INT_MIN} to {INT_MAX}") from None
    if vt.base == "float":
        if not _CSV_FLOAT.fullmatch(value):
            try:
                number = float(value)
            except ValueError:
                number = 0.0
            if not math.isfinite(number):  # `nan`, `inf`, `Infinity`
                raise ValueError("a finite number; NaN and infinity cannot be facts")
            raise ValueError("a number such as 1.5 (ASCII digits, no `_`)")
        number = float(value)
        if not math.isfinite(number):  # `1e400`
            raise ValueError("a finite number; NaN and infinity cannot be facts")
        return number
    if vt.base == "bool":
        low = value.strip().lower()
        if low in ("true", "yes", "1"):
            return True
        if low in ("false", "no", "0"):
            return False
        raise ValueError("true or false")
    if vt.base == "list":
        try:
            parsed = _DECODER.decode(value)
        except (_JsonValueError, RecursionError):
            raise ValueError("a JSON array of plain values like [\"a\", \"b\"]") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"a JSON array like [\"a\", \"b\"]: {exc.msg} at column "
                             f"{exc.colno} of the cell") from None
        if not isinstance(parsed, list):
            raise ValueError("a list cell must be a JSON array like [\"a\", \"b\"]")
        return parsed
    return value


def _read_csv(program: Program, type_name: str, text: str, source: str) -> list[_Raw]:
    type_id = program.type_ids.get(type_name)
    if type_id is None:
        raise _unknown_type(program, _Raw(type_name, {}, source, 1))
    spec = program.types[type_id]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        raise InputError(f"not valid CSV: {exc}", source=source, line=reader.line_num,
                         help="quote cells that hold commas or quotes") from None
    header = [name.strip() for name in header]  # spreadsheets pad header cells
    if len(header) == 1:
        for sep, called in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in header[0]:
                raise InputError(
                    f"the header is one column `{header[0]}`: the file looks separated by "
                    f"{called}", source=source, line=1,
                    help="converge reads comma-separated values; save the file as CSV "
                         "with commas",
                )
    seen: set[str] = set()
    for column, name in enumerate(header, start=1):
        if name in seen:
            raise InputError(
                f"CSV column `{name}` appears twice in the header (column {column})",
                source=source, line=1, help="give each field one column",
            )
        seen.add(name)
        if name not in spec.field_names:
            close = difflib.get_close_matches(name, spec.field_names, n=1)
            raise InputError(
                f"CSV column `{name}` is not a field of {spec.name}", source=source, line=1,
                help=(f"did you mean `{close[0]}`? " if close else "") + _field_help(spec),
            )
    raws: list[_Raw] = []
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(f"not valid CSV: {exc}", source=source, line=reader.line_num,
                             help="quote cells that hold commas or quotes, and close "
                                  "every quote") from None
        line = reader.line_num
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(
                f"expected {len(header)} cells, found {len(row)}", source=source, line=line,
                help="give every row one cell per header column",
            )
        fields: dict[str, Any] = {}
        for name, value in zip(header, row, strict=True):
            f = spec.fields[spec.position(name)]
            if value == "":
                if f.type.optional and f.default is MISSING:
                    fields[name] = None
                elif f.required:
                    raise InputError(
                        f"{spec.name}.{name} (column {header.index(name) + 1}) is empty",
                        source=source, line=line,
                        help=f"`{name}` is required: write {_article(str(f.type))} "
                             f"{f.type} value",
                    )
                continue
            try:
                fields[name] = _cell(value, f.type)
            except ValueError as exc:
                column = header.index(name) + 1
                shown = value if len(value) <= 60 else value[:57] + "..."
                raise InputError(
                    f"{spec.name}.{name} (column {column}) must be {f.type}, got {shown!r}",
                    source=source, line=line, help=f"write {exc}",
                ) from None
        raws.append(_Raw(type_name, fields, source, line))
    return raws


MAX_FACTS_BYTES = 4 * 2**30
"""The largest fact file read at once (4 GiB): beyond it, the text alone would crowd the
facts out of memory."""


def _read_text(path: Path) -> str:
    """The file's text: UTF-8, with or without a byte order mark (spreadsheets write
    one). A file that cannot be read, or is not UTF-8, is an InputError naming the line
    and column of the first bad byte."""
    source = str(path)
    try:
        kind = stat.S_IFMT(path.stat().st_mode)
        if kind == stat.S_IFCHR or kind == stat.S_IFBLK:  # /dev/zero never ends
            raise InputError("cannot read the file: it is a device, not a file of facts",
                             source=source, help="give --facts a file, a pipe or /dev/stdin")
        with path.open("rb") as stream:  # a pipe (/dev/stdin) is read to its end
            data = stream.read(MAX_FACTS_BYTES + 1)
        if len(data) > MAX_FACTS_BYTES:
            raise InputError(f"the file is larger than {MAX_FACTS_BYTES // 2**30} GiB",
                             source=source, help="split it into several --facts files")
    except OSError as exc:
        reason = "it is a directory" if path.is_dir() else (exc.strerror or str(exc))
        raise InputError(f"cannot read the file: {reason}", source=source,
                         help="check the path given to --facts") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        before = data[data.rfind(b"\n", 0, exc.start) + 1:exc.start]
        column = len(before.decode("utf-8", errors="replace")) + 1
        raise InputError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column}",
            source=source, line=line,
            help="save the file as UTF-8 (for example `iconv -f latin1 -t utf-8`)",
        ) from None


def read_facts(program: Program, spec: str | Path) -> InputFacts:
    """Read and validate one input source: ``path`` (JSON Lines, or a JSON array when
    the file starts with ``[``) or ``Type=path.csv``."""
    text_spec = str(spec)
    type_name: str | None = None
    if "=" in text_spec and not Path(text_spec).exists():
        type_name, _, text_spec = text_spec.partition("=")
        if not type_name:
            raise InputError(f"`={text_spec}` names no fact type", source=text_spec,
                             help=f"write TYPE={text_spec}, TYPE being the fact type of "
                                  "every row")
    if text_spec == "-":
        raise InputError("facts are not read from standard input (`-`)", source="-",
                         help="give --facts /dev/stdin, or write them to a file")
    path = Path(text_spec)
    source = str(path)
    text = _read_text(path)
    if type_name is not None:
        raws = _read_csv(program, type_name, text, source)
    elif text.lstrip().startswith("["):
        raws = _read_json_array(text, source)
    else:
        raws = _read_jsonl(text, source)
    return _validate_raws(program, raws)


def read_all(program: Program, specs: Iterable[str | Path]) -> InputFacts:
    """Read several sources, in order, into one :class:`InputFacts`."""
    rows: list[tuple[int, tuple[Any, ...]]] = []
    for spec in specs:
        rows.extend(read_facts(program, spec).rows)
    return InputFacts(tuple(rows))
