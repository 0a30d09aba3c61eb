"""Input facts: JSON Lines, a JSON array, CSV, or Python pairs — validated, then tuples.

Every fact is validated against its declared type, in batches per type: by the plain
checks of :mod:`~converge_rules.engine.input_check` when they are sure of every fact of
the batch, else with pydantic (a ``TypeAdapter`` over a ``TypedDict`` with
``extra="forbid"``; scalars are strict, except that an int is accepted for a float),
which is imported only then and says what is wrong. Enum members are given by name, lists
become tuples, defaults are filled, strings are interned. The first bad fact in input
order raises :class:`~converge_rules.errors.InputError` naming the file, the line, the
type and the field, with a fix; nothing runs.

JSON Lines stream: a file is parsed and validated :data:`JSONL_BATCH` lines at a time,
straight into value tuples, so memory holds the facts read and one batch, never the
file's text or a dict per fact. A JSON array and a CSV file are read whole.

Integers are signed 64-bit: an integer field given one outside the range is refused,
as is a string holding a lone surrogate (see :mod:`converge_rules.jsontext`).
Reading is linear in the size of the input for every format: line numbers are
counted as the reader moves forward, never again from the start.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Literal, NotRequired, Required

from converge_rules.blobs import as_blob
from converge_rules.engine.input_check import plain_check
from converge_rules.errors import InputError
from converge_rules.jsontext import LONE_SURROGATE, surrogate_problem
from converge_rules.language.builtins import (
    INT_MAX,
    INT_MIN,
    INT_RANGE,
    SMALLEST_FLOAT,
    float_underflows,
    parse_date,
    parse_datetime,
    parse_duration,
    shown_int,
    time_kind,
)
from converge_rules.patterns import pattern
from converge_rules.program import MISSING, FieldSpec, Program, TypeSpec, ValueType
from converge_rules.records import record

if TYPE_CHECKING:
    from pydantic import TypeAdapter


@record
class InputFacts:
    """Validated input facts in input order, as two columns: ``values[i]`` (a value
    tuple) is a fact of the type whose id is ``types[i]``. Columns, not a tuple of
    ``(type id, values)`` pairs: a million facts would hold a million pairs besides
    their values."""

    types: array[int]
    values: list[tuple[Any, ...]]

    @property
    def rows(self) -> tuple[tuple[int, tuple[Any, ...]], ...]:
        """The facts as ``(type id, values)`` pairs, in input order (built on each call)."""
        return tuple(zip(self.types, self.values, strict=True))

    def __len__(self) -> int:
        return len(self.values)

    def __add__(self, other: InputFacts) -> InputFacts:
        return InputFacts(self.types + other.types, self.values + other.values)


@record
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
    from pydantic import Field, PlainValidator, Strict

    base: Any
    if vt.base in ("date", "datetime", "duration"):
        base = Annotated[Any, PlainValidator(_time_reader(vt.base))]
    elif vt.base == "str":
        base = Annotated[str, Strict()]
    elif vt.base == "blob":  # its text (JSON), or a Blob (the Python API)
        base = Annotated[Any, PlainValidator(as_blob)]
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
    from pydantic import ConfigDict, TypeAdapter, with_config
    from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

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


def _error(spec: TypeSpec, raw: _Raw, err: Mapping[str, Any],
           columns: Mapping[str, int] | None = None) -> InputError:
    """The :class:`InputError` for pydantic's error ``err`` on ``raw``; with ``columns``
    (a CSV file's fields and their 1-based columns) it names the column too."""
    loc = err.get("loc", ())
    field = str(loc[1]) if len(loc) > 1 else ""
    column = (f" (column {columns[field]})" if columns is not None and field in columns
              else "")
    kind = err.get("type", "")
    names = spec.field_names
    if kind == "string_unicode":  # pydantic refuses a key with a lone surrogate
        problem = surrogate_problem(raw.fields, spec.name)
        if problem is not None:
            return InputError(problem, source=raw.source, line=raw.line,
                              help=_SURROGATE_HELP)
    if kind == "extra_forbidden":
        close = _close(field, names)
        fix = (f"did you mean `{close[0]}`? " if close else "") + _field_help(spec)
        return InputError(
            f"{spec.name} has no field `{field}`", source=raw.source, line=raw.line, help=fix
        )
    if kind == "missing":
        ftype = spec.fields[spec.position(field)].type if field in names else "a value"
        if columns is not None:  # a CSV file: every row lacks it, for want of a column
            return InputError(
                f"{spec.name} is missing the required field `{field}`: the CSV header has "
                f"no column `{field}`", source=raw.source, line=1,
                help=f"add a column `{field}` ({ftype}) to the header and a cell to every "
                     f"row; {_field_help(spec)}",
            )
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
                f"{spec.name}.{field}{column} is outside {INT_RANGE}: got {shown_int(got)}",
                source=raw.source, line=raw.line,
                help=_BIG_INT_HELP,
            )
        # (pydantic's own prefix for a validator's ValueError says nothing to a user)
        msg = str(err.get("msg", "")).removeprefix("Value error, ").replace(
            "a valid tuple", "a list (a JSON array)")
        where = field
        if len(loc) > 2 and isinstance(loc[2], int) and ftype.element is not None:
            # an item of a list: name it and its type, not the list's
            where, ftype = f"{field}[{loc[2]}]", ftype.element
        fix = f"give `{where}` {_article(str(ftype))} {ftype} value ({msg})"
        if ftype.base == "enum" and isinstance(got, str) and "." in got:
            member = got.rsplit(".", 1)[1]
            if member in ftype.members:
                fix = f'write "{member}": enum members are given by name alone'
        if got is None and not spec_field.required:
            fix += f"; or leave `{field}` out to use its default"
        return InputError(
            f"{spec.name}.{where}{column} must be {ftype}, got {_shown(got)}",
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
    close = _close(raw.type_name, names)
    fix = f"did you mean `{close[0]}`?" if close else (
        "declared types: " + (", ".join(names) or "none")
    )
    return InputError(
        f"unknown fact type `{raw.type_name}`", source=raw.source, line=raw.line, help=fix
    )


class _BadText(ValueError):
    """A string value holding a lone surrogate (the message says which field)."""


INTERN_PROBE = 4096
"""How many values of a string field are interned before deciding whether interning it
pays (see :func:`_converter`)."""


def _converter(spec: TypeSpec) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """validated dict → value tuple: defaults filled, strings interned; a string with a
    lone surrogate raises :class:`_BadText`.

    Interning shares one string among the facts that hold the same text (a million
    quotes naming a hundred vendors hold a hundred strings). A field whose values all
    differ gains nothing by it and would add an entry per fact to the interpreter's
    table of interned strings (40 bytes each, for the life of the process): a field
    whose first :data:`INTERN_PROBE` values repeat fewer than one in eight times is not
    interned further. Values are equal either way; only sharing differs."""
    names = spec.field_names
    defaults = {f.name: _default(f) for f in spec.fields if not f.required}
    get = itemgetter(*names)
    single = len(names) == 1
    strings = [i for i, f in enumerate(spec.fields) if f.type.base in ("str", "enum")]
    text_lists = [i for i, f in enumerate(spec.fields)
                  if f.type.base == "list" and f.type.element is not None
                  and f.type.element.base == "str"]
    full = len(names)
    if not strings and not text_lists:  # no text to check nor intern (as below, less)
        if single:
            def convert_one(d: dict[str, Any]) -> tuple[Any, ...]:
                return (get(d if len(d) == full else {**defaults, **d}),)

            return convert_one

        def convert_plain(d: dict[str, Any]) -> tuple[Any, ...]:
            return get(d if len(d) == full else {**defaults, **d})  # type: ignore[no-any-return]

        return convert_plain
    intern = sys.intern
    surrogates = LONE_SURROGATE  # (compiled at the first text that is not ASCII)
    # per string field: values interned so far (while probing), and repeats among them
    probed = dict.fromkeys(strings, 0)
    repeats = dict.fromkeys(strings, 0)
    interned = list(strings)

    def convert(d: dict[str, Any]) -> tuple[Any, ...]:
        if len(d) != full:
            d = {**defaults, **d}
        vals = (get(d),) if single else get(d)
        for p in text_lists:
            problem = surrogate_problem(vals[p], f"{spec.name}.{names[p]}")
            if problem is not None:
                raise _BadText(problem)
        if strings:
            for p in strings:
                v = vals[p]
                if v is not None and not v.isascii() and surrogates.search(v):
                    raise _BadText(surrogate_problem(v, f"{spec.name}.{names[p]}"))
            if not interned:
                return vals
            out = list(vals)
            dropped: list[int] = []
            for p in interned:
                v = out[p]
                if v is None:
                    continue
                iv = out[p] = intern(v)
                n = probed[p]
                if n < INTERN_PROBE:
                    if iv is not v:
                        repeats[p] += 1
                    probed[p] = n = n + 1
                    if n == INTERN_PROBE and repeats[p] * 8 < n:
                        dropped.append(p)
            for p in dropped:  # (not while the loop walks the list)
                interned.remove(p)
            return tuple(out)
        return vals

    return convert


_SURROGATE_HELP = ("a lone surrogate (a \\ud800-\\udfff escape that is not half of a pair) "
                   "is not a character and cannot be written as UTF-8: write the "
                   "character itself, or its whole surrogate pair")


class _Validator:
    """Validates raw facts of one program into value tuples, batch after batch, keeping
    input order, and appends them to :attr:`types` and :attr:`values`. The pydantic
    adapter (when a batch needs it), the plain check and the converter of each type are
    built once, on first use."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.types: array[int] = array("i")
        self.values: list[tuple[Any, ...]] = []
        self._adapters: dict[int, TypeAdapter[list[Any]]] = {}
        self._converters: dict[int, Callable[[dict[str, Any]], tuple[Any, ...]]] = {}
        self._plain: dict[int, Callable[[Sequence[Any]], list[dict[str, Any]] | None]] = {}

    def facts(self) -> InputFacts:
        """Everything validated so far."""
        return InputFacts(self.types, self.values)

    def batch(
        self, names: Sequence[str], fields: Sequence[Any],
        where: Callable[[int], tuple[str, int]], columns: Mapping[str, int] | None = None,
    ) -> None:
        """Validate raw facts (``names[i]``, ``fields[i]``; ``where(i)`` gives the source
        and line for an error), batched per type, and append them in input order. A bad
        fact raises :class:`InputError`: the first one in input order, whatever its
        type, and nothing of the batch is appended. ``columns`` (a CSV file's) gives
        each field's 1-based column, named in the error."""
        program = self.program
        type_ids = program.type_ids
        by_type: dict[int, list[int]] = {}
        types = array("i", bytes(4 * len(names)))
        first_unknown: int | None = None
        for i, name in enumerate(names):
            type_id = type_ids.get(name)
            if type_id is None:
                first_unknown = i
                break
            types[i] = type_id
            members = by_type.get(type_id)
            if members is None:
                by_type[type_id] = [i]
            else:
                members.append(i)
        # (position, error): the first bad fact of each type; the earliest is raised
        bad: list[tuple[int, InputError]] = []
        if first_unknown is not None:
            bad.append((first_unknown, _unknown_type(
                program, _raw(names, fields, where, first_unknown))))
        out: list[tuple[Any, ...] | None] = [None] * len(names)
        for type_id, members in by_type.items():
            found = self._type_batch(type_id, members, names, fields, where, out, columns)
            if found is not None:
                bad.append(found)
        if bad:
            raise min(bad, key=itemgetter(0))[1]
        self.types.extend(types)
        self.values.extend(out)  # type: ignore[arg-type]  # every slot is filled

    def _type_batch(
        self, type_id: int, members: list[int], names: Sequence[str], fields: Sequence[Any],
        where: Callable[[int], tuple[str, int]], out: list[tuple[Any, ...] | None],
        columns: Mapping[str, int] | None = None,
    ) -> tuple[int, InputError] | None:
        """Validate and convert the facts of one type (at positions ``members``) into
        ``out``; the first bad one, with its position, or None."""
        spec = self.program.types[type_id]
        batch = [fields[i] for i in members]
        plain = self._plain.get(type_id)
        if plain is None:
            plain = self._plain[type_id] = plain_check(spec, _time_reader, as_blob)
        checked = plain(batch)  # (None unless every fact is a dict)
        if checked is None:  # a fact the plain check is not sure of: pydantic judges
            for k, item in enumerate(batch):
                if not isinstance(item, Mapping):
                    # the facts before it may hold an earlier error
                    earlier = self._type_batch(type_id, members[:k], names, fields, where,
                                               out, columns)
                    if earlier is not None:
                        return earlier
                    i = members[k]
                    raw = _raw(names, fields, where, i)
                    return i, InputError(
                        f"the fields of {spec.name} must be an object, got "
                        f"{type(item).__name__}", source=raw.source, line=raw.line,
                        help=f'write {{"{spec.name}": {{"field": value, ...}}}}; '
                             f"{_field_help(spec)}",
                    )
            from pydantic import ValidationError

            adapter = self._adapters.get(type_id)
            if adapter is None:
                adapter = self._adapters[type_id] = _adapter(spec)
            try:
                checked = adapter.validate_python(batch)
            except ValidationError as exc:
                errors = exc.errors()
                item = min(int(e["loc"][0]) for e in errors)
                # an unknown field explains a "missing" one (a typo), so report it first
                mine = [e for e in errors if int(e["loc"][0]) == item]
                first = next((e for e in mine if e["type"] == "extra_forbidden"), mine[0])
                i = members[item]
                return i, _error(spec, _raw(names, fields, where, i), first, columns)
        del batch
        convert = self._converters.get(type_id)
        if convert is None:
            convert = self._converters[type_id] = _converter(spec)
        for i, d in zip(members, checked, strict=True):
            try:
                out[i] = convert(d)
            except _BadText as exc:
                raw = _raw(names, fields, where, i)
                return i, InputError(str(exc), source=raw.source, line=raw.line,
                                     help=_SURROGATE_HELP)
        return None


def validate(
    program: Program,
    names: Sequence[str],
    fields: Sequence[Any],
    where: Callable[[int], tuple[str, int]],
) -> InputFacts:
    """Validate raw facts (``names[i]``, ``fields[i]``; ``where(i)`` gives the source
    and line for an error) into tuples, batched per type, keeping input order. The
    first bad fact in input order raises :class:`InputError`."""
    validator = _Validator(program)
    validator.batch(names, fields, where)
    return validator.facts()


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
    if isinstance(facts, str | bytes | Path):  # (a text would be read char by char)
        raise InputError(f"facts must be (type name, fields) pairs, not {facts!r}",
                         source=source, help="to read a file of facts, pass "
                         "read_facts(ruleset, PATH); else pass "
                         '[("Cost", {"sku": "A1", "amount": 10.0})]')
    if not isinstance(facts, list | Iterable):  # (None, a number: list() would say less)
        raise InputError(f"facts must be (type name, fields) pairs, not "
                         f"{type(facts).__name__} {facts!r:.40}", source=source,
                         help='pass () for no facts, or [("Cost", {"sku": "A1", '
                         '"amount": 10.0})]')
    pairs = facts if isinstance(facts, list) else list(facts)
    for i, pair in enumerate(pairs):
        if (not isinstance(pair, tuple | list) or len(pair) != 2
                or not isinstance(pair[0], str)):
            shown = repr(pair)
            fix = 'give each fact as ("Cost", {"sku": "A1", "amount": 10.0})'
            if isinstance(pair, Mapping) and len(pair) == 1:
                # a fact as a JSON Lines file writes it
                name = next(iter(pair))
                fix = (f"write ({name!r}, {{…}}) for {{{name!r}: {{…}}}}, or read a JSON "
                       "Lines file with read_facts(ruleset, PATH)")
            raise InputError(
                "expected a (type name, fields) pair, got "
                f"{shown if len(shown) <= 80 else shown[:77] + '...'}",
                source=source, line=i + 1, help=fix,
            )
    return validate(
        program, [p[0] for p in pairs], [p[1] for p in pairs], lambda i: (source, i + 1)
    )


class _JsonValueError(ValueError):
    """A JSON document that parses but holds what facts cannot: a repeated key (which
    ``json`` would silently resolve to the last value) or NaN/Infinity, or a number
    no float holds (``token``, its text, to say where it is)."""

    def __init__(self, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.token = token


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # (at C speed; a repeated key leaves fewer entries than pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _JsonValueError(f"the key `{key}` appears twice in one object; "
                                      "only one value can be kept")
            seen.add(key)
    return out


def _no_constant(name: str) -> Any:
    raise _JsonValueError(f"`{name}` is not a number facts can hold; "
                          "give a finite number, or leave an optional field out", name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # `1e400` parses as infinity
        raise _JsonValueError(f"`{text}` is beyond the largest float (about 1.8e308); "
                              "give a finite number", text)
    if float_underflows(text, value):  # `1e-400` parses as 0.0
        raise _JsonValueError(f"`{text}` is below the smallest float ({SMALLEST_FLOAT}) "
                              "and would be 0.0; give 0, or a larger number", text)
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant,
                            parse_float=_finite)
# The same without the hook that finds a repeated key (a Python call per object), which
# the C scanner resolves to the last value, silently: a line it scans is kept only when
# its colons are exactly its fact's type and fields, one each (a key repeated at any
# depth, a nested object's key or a colon in a string makes more); any other line is
# read by _DECODER (see _read_jsonl).
_SCANNER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


_LONG_DIGITS = pattern(r"[0-9]{4301,}")  # Python converts up to 4,300 digits


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
        found = None if exc.token is None else _token_at(text, pos, exc.token)
        if found is None:
            raise InputError(str(exc), source=source, line=line, help=help) from None
        at = found.start()
        column = at - text.rfind("\n", 0, at)
        raise InputError(f"at column {column}: {exc}", source=source,
                         line=line + text.count("\n", pos, at), help=help) from None
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


def _token_at(text: str, pos: int, token: str) -> re.Match[str] | None:
    """The first ``token`` (a number or constant's text) from ``pos`` on that is a JSON
    value, not part of a string or of a longer number: strings are matched whole, so
    their contents are skipped."""
    pattern = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![\w.+\-])' + re.escape(token)
                         + r"(?![\w.])")
    for found in pattern.finditer(text, pos):
        if found.group()[:1] != '"':
            return found
    return None


def _close(name: str, names: Iterable[str]) -> list[str]:
    """The name in ``names`` closest to ``name``, if one is close (``difflib``,
    imported here: only a misspelt input needs it)."""
    import difflib

    return difflib.get_close_matches(name, names, n=1)


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


_JSON_SPACE = pattern(r"[ \t\r\n]*")


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
_CSV_INT = pattern(r"\s*[+-]?[0-9]+\s*", re.ASCII)
_CSV_FLOAT = pattern(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*", re.ASCII)


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
        if float_underflows(value, number):  # `1e-400`
            raise ValueError(f"0, or a number whose size is at least {SMALLEST_FLOAT} "
                             "(this one would be 0.0)")
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


def text_value(spec: TypeSpec, name: str, text: str, source: str) -> Any:
    """The value of field ``name`` of ``spec`` written as ``text`` (a CSV cell, or
    ``--set name=text``): numbers and booleans read as a CSV cell's are, a list as a
    JSON array, any other type as the text (validated with the fact); an empty text is
    no value (null) for an optional field. An InputError naming the field otherwise."""
    f = spec.fields[spec.position(name)]
    if text == "" and f.type.optional:
        return None
    try:
        return _cell(text, f.type)
    except ValueError as exc:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise InputError(f"{spec.name}.{name} must be {f.type}, got {shown!r}",
                         source=source, help=f"write {exc}") from None


def _read_csv(program: Program, type_name: str, text: str,
              source: str) -> tuple[list[_Raw], dict[str, int]]:
    type_id = program.type_ids.get(type_name)
    if type_id is None:
        raise _unknown_type(program, _Raw(type_name, {}, source, 1))
    spec = program.types[type_id]
    import csv  # here: JSON input never needs it

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], {}
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
            if name.startswith(("{", "[")):  # JSON given as TYPE=FILE.csv
                raise InputError(
                    f"read as CSV (`{type_name}=`), but the file holds JSON",
                    source=source, line=1,
                    help=f"give JSON Lines or a JSON array without the type: --facts "
                         f"{source}")
            close = _close(name, spec.field_names)
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
    return raws, {name: column for column, name in enumerate(header, start=1)}


MAX_FACTS_BYTES = 4 * 2**30
"""The largest fact file read (4 GiB): a JSON array or a CSV file is read whole, and
beyond it the text alone would crowd the facts out of memory."""

JSONL_BATCH = 4096
"""JSON Lines facts validated at a time: the file streams through one batch of parsed
lines, never held whole (a million facts held as text, then as dicts, peaked at five
times the memory the facts themselves take)."""

_BOM = b"\xef\xbb\xbf"


def _open_facts(path: Path) -> BinaryIO:
    """The file opened for reading bytes. A device, or a file that cannot be opened,
    is an InputError."""
    source = str(path)
    try:
        kind = stat.S_IFMT(path.stat().st_mode)
        if kind == stat.S_IFCHR or kind == stat.S_IFBLK:  # /dev/zero never ends
            real = os.path.realpath(path)
            if real != os.path.abspath(path):  # /dev/stdin given < /dev/null, or a tty
                raise InputError(f"cannot read the file: it is the device {real} here, not "
                                 "a file of facts", source=source,
                                 help="pipe the facts in (`cat in.jsonl | converge run … "
                                 "--facts /dev/stdin`), or give --facts a file")
            raise InputError("cannot read the file: it is a device, not a file of facts",
                             source=source, help="give --facts a file, a pipe or /dev/stdin")
        return path.open("rb")  # a pipe (/dev/stdin) is read to its end
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: OSError) -> InputError:
    reason = "it is a directory" if path.is_dir() else (exc.strerror or str(exc))
    return InputError(f"cannot read the file: {reason}", source=str(path),
                      help="check the path given to --facts")


def _too_large(path: Path) -> InputError:
    return InputError(f"the file is larger than {MAX_FACTS_BYTES // 2**30} GiB",
                      source=str(path), help="split it into several --facts files")


def _read_rest(stream: BinaryIO, path: Path, head: bytes = b"") -> bytes:
    """``head`` and the rest of ``stream``, at most :data:`MAX_FACTS_BYTES` in all."""
    try:
        data = head + stream.read(MAX_FACTS_BYTES + 1 - len(head))
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if len(data) > MAX_FACTS_BYTES:
        raise _too_large(path)
    return data


def _utf8(data: bytes, source: str) -> str:
    """The text of a whole file: UTF-8, with or without a byte order mark
    (spreadsheets write one); not UTF-8 is an InputError naming the line and column of
    the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        before = data[data.rfind(b"\n", 0, exc.start) + 1:exc.start]
        raise _not_utf8(data[exc.start], before, source, line) from None


def _not_utf8(byte: int, before: bytes, source: str, line: int) -> InputError:
    column = len(before.decode("utf-8", errors="replace")) + 1
    return InputError(
        f"not UTF-8 text: byte 0x{byte:02x} at column {column}", source=source, line=line,
        help="save the file as UTF-8 (for example `iconv -f latin1 -t utf-8`)",
    )


def _read_text(path: Path) -> str:
    """The file's text: UTF-8, with or without a byte order mark. A file that cannot
    be read, or is not UTF-8, is an InputError (with the line and column of the first
    bad byte)."""
    with _open_facts(path) as stream:
        data = _read_rest(stream, path)
    return _utf8(data, str(path))


def _head(stream: BinaryIO, path: Path) -> bytes:
    """The first bytes of ``stream``, at least up to its first character that is not
    blank (or all of it): enough to tell a JSON array (``[``) from JSON Lines."""
    head = b""
    while True:
        try:
            chunk = stream.read(65536)
        except OSError as exc:
            raise _unreadable(path, exc) from None
        head += chunk
        if len(head) > MAX_FACTS_BYTES:
            raise _too_large(path)
        text = head.removeprefix(_BOM).decode("utf-8", errors="replace")
        if not chunk or text.lstrip():
            return head


def _byte_lines(head: bytes, stream: BinaryIO, path: Path) -> Iterator[bytes]:
    """The lines of ``head`` followed by the rest of ``stream``, split on ``\\n`` only,
    each without its ``\\n``; a final ``\\n`` adds no empty line. More than
    :data:`MAX_FACTS_BYTES` in all is an InputError."""
    lines = head.split(b"\n")
    pending = lines.pop()  # the first line the stream goes on with
    yield from lines
    total = len(head)
    try:
        for line in stream:
            total += len(line)
            if total > MAX_FACTS_BYTES:
                raise _too_large(path)
            if pending:
                line = pending + line
                pending = b""
            if line.endswith(b"\n"):
                yield line[:-1]
            else:
                pending = line
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if pending:
        yield pending


def _read_jsonl(validator: _Validator, lines: Iterable[bytes], source: str) -> None:
    """Parse JSON Lines and validate them, :data:`JSONL_BATCH` facts at a time, into
    ``validator``. The first bad line in the file raises InputError: a line before a
    bad one is validated before the bad one is reported."""
    help = "write one JSON object per line"
    if source.lower().endswith(".csv"):  # a CSV file given without its type
        help = (f"a CSV file is read as TYPE={source}, TYPE being the fact type of every "
                "row; JSON Lines have one JSON object per line")
    names: list[str] = []
    fields: list[Any] = []
    numbers: list[int] = []

    def where(i: int) -> tuple[str, int]:
        return source, numbers[i]

    def flush() -> None:
        if names:
            validator.batch(names, fields, where)
            names.clear()
            fields.clear()
            numbers.clear()

    scan: Callable[[str, int], tuple[Any, int]] = _SCANNER.scan_once  # type: ignore[attr-defined]

    def read_line(raw: bytes, n: int) -> None:
        """One line, ``n`` of the file, the careful way."""
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            flush()
            raise _not_utf8(raw[exc.start], raw[:exc.start], source, n) from None
        # split on "\n" only (str.splitlines would also split inside a string holding
        # U+2028 or another line separator), a "\r" before it dropped
        if line.endswith("\r"):
            line = line[:-1]
        obj: Any = None
        if line[:1] == "{" and line[-1:] == "}":
            # the usual line, one object from its first character to its last: scanned
            # at once, and kept when no key can be repeated (_SCANNER); anything else
            # about it is found and said the careful way below
            try:
                found, end = scan(line, 0)
            except Exception:  # bad JSON, NaN, nesting too deep
                end = -1
            if end == len(line) and len(found) == 1:
                for body in found.values():
                    if type(body) is dict and line.count(":") == 1 + len(body):
                        obj = found
        if obj is None:
            if not line.strip():
                return
            try:
                start = len(line) - len(line.lstrip())
                obj, end = _decode(line, start, source, n, help)
                rest = line[end:]
                if rest.strip():
                    gap = rest[:len(rest) - len(rest.lstrip())]
                    if "\r" in gap:  # lines ending in CR alone, read as one line
                        at = end + gap.index("\r") + 1
                        raise InputError(
                            f"a carriage return (U+000D) at column {at} does not end the "
                            "line: JSON Lines end each line in LF (or CRLF)",
                            source=source, line=n,
                            help="save the file with LF line ends; a file whose lines end "
                                 "in CR alone (classic Mac OS) converts with "
                                 "`tr '\\r' '\\n' < OLD > NEW`")
                    column = end + len(rest) - len(rest.lstrip()) + 1
                    raise InputError(f"not valid JSON at column {column}: extra data after "
                                     "the fact", source=source, line=n, help=help)
                if type(obj) is not dict or len(obj) != 1:
                    _wrapped(obj, source, n)  # raises: not one fact
            except InputError:
                flush()  # a bad fact on an earlier line is the first error
                raise
        for name, value in obj.items():  # the one key: JSON's keys are strings
            names.append(name)
            fields.append(value)
        numbers.append(n)
        if len(names) >= JSONL_BATCH:
            flush()

    remaining = iter(lines)
    n = 0
    while True:
        chunk: list[bytes] = []
        try:
            chunk.extend(islice(remaining, JSONL_BATCH))  # (what was read stays in chunk)
        except InputError:  # too large, unreadable: said after the lines read before
            for raw in chunk:
                n += 1
                read_line(raw if n > 1 else raw.removeprefix(_BOM), n)
            raise
        if not chunk:
            break
        if n == 0:
            chunk[0] = chunk[0].removeprefix(_BOM)
        found = _usual_lines(chunk, scan)
        if found is not None:  # every line one usual fact: read at once
            names.extend(found[0])
            fields.extend(found[1])
            numbers.extend(range(n + 1, n + 1 + len(chunk)))
            n += len(chunk)
            if len(names) >= JSONL_BATCH:
                flush()
            continue
        for raw in chunk:
            n += 1
            read_line(raw, n)
    flush()


def _usual_lines(lines: list[bytes], scan: Callable[[str, int], tuple[Any, int]]
                 ) -> tuple[list[str], list[dict[str, Any]]] | None:
    """The fact types and fields of ``lines`` when every one is the usual line, read at
    once as one JSON array (else None: they are read one by one, the careful way).

    The usual line is UTF-8, opens with ``{`` and closes with ``}``, holds one fact
    whose fields hold no object, no ``{`` in a string and no key twice. Joined with
    ``,\\n`` into an array, which the scanner reads in one call, the lines are all
    usual when: the array is the lines' facts, as many as the lines; its ``{`` are two
    a fact (so none is in a string, nor a nested object; with every line opening with
    ``{`` and closing with ``}`` and no string holding a raw line break, no fact can
    run over two lines nor two share one); its ``:`` are one a fact and one a field (a
    repeated key, or a colon in a string, makes more)."""
    try:
        text = b",\n".join(lines).decode("utf-8")
    except UnicodeDecodeError:
        return None
    k = len(lines)
    if (text[:1] != "{" or text[-1:] != "}" or "\r" in text
            or text.count(",\n{") != k - 1 or text.count("},\n") != k - 1
            or text.count("{") != 2 * k):
        return None
    try:
        facts, end = scan(f"[{text}]", 0)
    except Exception:  # bad JSON, NaN, a number too long, nesting too deep
        return None
    if end != len(text) + 2 or len(facts) != k or set(map(len, facts)) != {1}:
        return None
    fields = [body for fact in facts for body in fact.values()]
    if set(map(type, fields)) != {dict} or text.count(":") != k + sum(map(len, fields)):
        return None
    return [name for fact in facts for name in fact], fields


def read_facts(program: Program, spec: str | Path) -> InputFacts:
    """Read and validate one input source: ``path`` (JSON Lines, or a JSON array when
    the file starts with ``[``) or ``Type=path.csv``. JSON Lines stream: memory holds
    the facts read, not the file."""
    validator = _Validator(program)
    _read_into(validator, spec)
    return validator.facts()


def _read_into(validator: _Validator, spec: str | Path) -> None:
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
    program = validator.program
    if type_name is not None:
        raws, columns = _read_csv(program, type_name, _read_text(path), source)
        validator.batch([r.type_name for r in raws], [r.fields for r in raws],
                        lambda i: (raws[i].source, raws[i].line), columns)
        return
    with _open_facts(path) as stream:
        head = _head(stream, path)
        if head.removeprefix(_BOM).decode("utf-8", errors="replace").lstrip().startswith("["):
            text = _utf8(_read_rest(stream, path, head), source)
            del head
            raws = _read_json_array(text, source)
            del text
            validator.batch([r.type_name for r in raws], [r.fields for r in raws],
                            lambda i: (raws[i].source, raws[i].line))
            return
        _read_jsonl(validator, _byte_lines(head, stream, path), source)


def read_all(program: Program, specs: Iterable[str | Path]) -> InputFacts:
    """Read several sources, in order, into one :class:`InputFacts`."""
    validator = _Validator(program)
    for spec in specs:
        _read_into(validator, spec)
    return validator.facts()
