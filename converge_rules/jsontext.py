"""JSON text that converge writes and reads, made safe for JSON Lines and UTF-8.

Two kinds of text break JSON Lines or its encoding, and are handled the same way
everywhere:

* **Lone surrogates** (``"\\ud800"`` in JSON: half of a UTF-16 pair) are not
  characters and cannot be written as UTF-8. Input facts, tool answers and plugin
  function results holding one are refused (:func:`surrogate_problem` names where;
  :func:`value_problem` checks a whole value); anything that still reaches a writer
  is written as its JSON escape ``\\ud800``, so an output is never cut by an
  encoding error.
* **Line separators other than** ``\\n`` (U+2028, U+2029, U+0085; the control
  characters ``\\r``, ``\\v``, ``\\f``, ``\\x1c``–``\\x1e`` are escaped by JSON itself)
  are valid inside JSON strings but split a line for readers that split on every line
  break, as Python's ``str.splitlines`` does. :func:`dumps` escapes them, so one JSON
  document is always one line, and :func:`jsonl_lines` splits JSON Lines on ``\\n``
  only.

Every other character is written as itself (UTF-8, not ``\\u`` escapes).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from converge_rules.datetypes import date, timedelta
from converge_rules.language.builtins import (
    INT_RANGE,
    SMALLEST_FLOAT,
    float_underflows,
    int_in_range,
    iso_text,
    shown_int,
)
from converge_rules.patterns import pattern

__all__ = ["NumberTextError", "dumps", "jsonl_lines", "loads_numbers", "one_line",
           "surrogate_problem", "value_problem"]

# what json.dumps(ensure_ascii=False) leaves raw that must not be: other line breaks
# (below U+0020 JSON escapes them itself) and lone surrogates
_UNSAFE = pattern("[\x85\u2028\u2029\ud800-\udfff]")
LONE_SURROGATE = pattern("[\ud800-\udfff]")
"""A lone surrogate: half of a UTF-16 pair, which no UTF-8 text can hold."""


class NumberTextError(ValueError):
    """A number in JSON text that no float holds as written (``1e-400``, ``1e400``) or
    that is no number (``NaN``, ``Infinity``): raised by :func:`loads_numbers`."""


def _float_as_written(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # `1e400` reads as infinity
        raise NumberTextError(f"`{text}` is beyond the largest float (about 1.8e308)")
    if float_underflows(text, value):  # `1e-400` reads as 0.0
        raise NumberTextError(f"`{text}` is below the smallest float ({SMALLEST_FLOAT}) "
                              "and would be 0.0")
    return value


def _no_constant(name: str) -> Any:
    raise NumberTextError(f"`{name}` is not a number a fact can hold")


def loads_numbers(text: str | bytes, **options: Any) -> Any:
    """``json.loads(text)``, except that a float no float holds as written (``1e-400``
    would be 0.0 and ``1e400`` infinity) or ``NaN``/``Infinity`` raises
    :class:`NumberTextError` (a ValueError) naming it, so a plugin reading an answer
    (an HTTP body, a model's JSON) says so as input facts do, where ``json.loads``
    would turn a nonzero number into 0.0 without a word. ``options`` go to
    ``json.loads`` (``object_pairs_hook``, say)."""
    return json.loads(text, parse_float=_float_as_written, parse_constant=_no_constant,
                      **options)


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _iso(value: Any) -> str:
    """A date, datetime or duration (a value of the language's time types) as its
    ISO 8601 text, how converge writes them everywhere; anything else is no JSON."""
    if isinstance(value, date | timedelta):
        return iso_text(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **options)`` with U+2028, U+2029, U+0085
    and lone surrogates written as ``\\u`` escapes: the text is one line (without
    ``indent``), encodes as UTF-8, and reads back as the same value. Dates, datetimes
    and durations are written as their ISO 8601 text."""
    options.setdefault("default", _iso)
    indent = options.get("indent")
    if type(indent) is int and indent >= 0 and options.keys() <= _INDENTED_OPTIONS:
        text = _indented(value, indent, 0, bool(options.get("sort_keys")), options)
    else:
        text = json.dumps(value, ensure_ascii=False, **options)
    if text.isascii():
        return text
    return _UNSAFE.sub(_escape, text)


def c_encoder(default: Callable[[Any], Any], *, ascii: bool = True, sort_keys: bool = False,
              allow_nan: bool = True) -> Callable[[Any], str]:
    """Compact JSON (``separators=(",", ":")``) with one C encoder made once, for
    values built fresh for each call (no check for circular containers):
    ``json.dumps`` with options and ``JSONEncoder.encode`` make an encoder per call,
    which costs more than encoding a small value. ``ascii``: non-ASCII escaped (else
    written as itself); ``default`` as ``json.dumps`` takes it."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return json.JSONEncoder(ensure_ascii=ascii, allow_nan=allow_nan, sort_keys=sort_keys,
                                separators=(",", ":"), default=default,
                                check_circular=False).encode
    strings = json.encoder.encode_basestring_ascii if ascii else json.encoder.encode_basestring
    chunks = make(None, default, strings, None, ":", ",", sort_keys, False, allow_nan)
    join = "".join

    def encode(value: Any) -> str:
        return join(chunks(value, 0))
    return encode


_INDENTED_OPTIONS = frozenset({"indent", "sort_keys", "default"})
_FLAT = frozenset({str, int, float, bool, type(None)})


def _flat_dicts(value: Any) -> bool:
    """Whether ``value`` is a non-empty list of non-empty dicts of ``str`` keys and
    plain scalar values (a result's facts of a type, a report's rows)."""
    if type(value) is not list or not value:
        return False
    flat = _FLAT
    for item in value:
        if type(item) is not dict or not item:
            return False
        for key, v in item.items():
            if type(key) is not str or type(v) not in flat:
                return False
    return True


def _indented(value: Any, indent: int, level: int, sort_keys: bool,
              options: dict[str, Any]) -> str:
    """``json.dumps(value, ensure_ascii=False, **options)`` (``indent`` given, as an
    int) as it would be written ``level`` levels deep, byte for byte, faster: the
    pure-Python encoder json uses for indented text costs 1 s for a result of 320,000
    facts. Dicts are walked here; a list of flat dicts is encoded in one call of the
    C encoder, whose separators put each fact's items on their own lines (a JSON
    string never holds a raw line break, so every one is a separator), then its
    braces are given lines of their own; anything else is ``json.dumps`` re-indented."""
    outer = "\n" + " " * (indent * level)
    inner = outer + " " * indent
    if type(value) is dict and value and level < 64:  # (deeper: json finds the cycle)
        if all(type(k) is str for k in value):
            items = sorted(value.items()) if sort_keys else value.items()
            encode = json.encoder.encode_basestring
            return ("{" + inner + ("," + inner).join(
                encode(k) + ": " + _indented(v, indent, level + 1, sort_keys, options)
                for k, v in items) + outer + "}")
    elif _flat_dicts(value):
        field = inner + " " * indent
        text = json.JSONEncoder(ensure_ascii=False, sort_keys=sort_keys,
                                separators=("," + field, ": ")).encode(value)
        between = inner + "}," + inner + "{" + field
        return ("[" + inner + "{" + field + text[2:-2].replace("}," + field + "{", between)
                + inner + "}" + outer + "]")
    text = json.dumps(value, ensure_ascii=False, **options)
    return text.replace("\n", outer) if level else text


def one_line(text: str) -> str:
    """JSON text from ``json.dumps(..., ensure_ascii=False)`` made safe as :func:`dumps`
    makes it: U+2028, U+2029, U+0085 and lone surrogates as ``\\u`` escapes."""
    if text.isascii():
        return text
    return _UNSAFE.sub(_escape, text)


def jsonl_lines(text: str) -> list[str]:
    """The lines of JSON Lines text, as ``str.splitlines`` gives them but split on
    ``\n`` only (and ``\r\n``): a U+2028 inside a string does not end its line. The
    line number of ``lines[i]`` is ``i + 1``; a final ``\n`` adds no empty line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines


def _surrogate_at(text: str) -> str | None:
    if text.isascii():
        return None
    found = LONE_SURROGATE.search(text)
    if found is None:
        return None
    return f"a lone surrogate (U+{ord(found.group()):04X}) at character {found.start() + 1}"


def surrogate_problem(value: Any, where: str) -> str | None:
    """Where ``value`` (a string, or lists and mappings of them) holds a lone
    surrogate, ``where`` naming the value (``"result"`` → ``"result.name[2]"``), or
    None when it holds none."""
    if isinstance(value, str):
        found = _surrogate_at(value)
        return None if found is None else f"{where} holds {found}"
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = surrogate_problem(item, f"{where}[{i}]")
            if problem is not None:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                found = _surrogate_at(key)
                if found is not None:
                    return f"a key of {where} holds {found}"
            problem = surrogate_problem(item, f"{where}.{key}")
            if problem is not None:
                return problem
    return None


def value_problem(value: Any, where: str, path: tuple[int, ...] = ()) -> str | None:
    """Where ``value`` stops being a value converge can hold and write as JSON
    (``where`` names it: ``"result"`` → ``"result.rate"``), or None: a value of another
    type, a float that is not finite (NaN, infinity), an integer outside the 64-bit
    range, a string with a lone surrogate, a container holding itself."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return surrogate_problem(value, where)
    if isinstance(value, int):
        if int_in_range(value):
            return None
        return f"{where} is {shown_int(value)}, outside {INT_RANGE}"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value!r}, not a finite number"
    if isinstance(value, list | tuple | Mapping):
        if id(value) in path:
            return f"{where} contains itself"
        path = (*path, id(value))
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = value_problem(item, f"{where}[{i}]", path)
            if problem is not None:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                found = surrogate_problem(key, f"a key of {where}")
                if found is not None:
                    return found
            elif not isinstance(key, int | float | bool) and key is not None:
                return f"{where} has a key of type {type(key).__name__}, not a string"
            problem = value_problem(item, f"{where}.{key}", path)
            if problem is not None:
                return problem
        return None
    return f"{where} is of type {type(value).__name__}, not a JSON value"
