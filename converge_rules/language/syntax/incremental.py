"""Parse a file again after an edit, re-parsing only the top-level items that changed.

An editor asks for the diagnostics of a file on every change. Parsing is most of what
checking costs (a 2,000-line ruleset: about 300 ms to parse, 30 ms to check), while an
edit touches one item. :class:`IncrementalParser` splits the text into items where the
parser's own error recovery splits it (:func:`~.parser.item_chunks`), keeps the parsed
items of the last call by their text, and parses only the items it has not seen; an
item that only moved gets its spans moved with it. The pieces are put together by
:func:`~.parser.assemble`, as :func:`~.parser.parse` puts them together.

The result is :func:`~.parser.parse`'s, with one exception the parser's recovery
already makes: an item written without indentation whose body has a line starting at
column 1 with a word that is not a statement keyword (``cases "rows.csv"`` in an
unindented test) is read as two pieces, as :func:`~.parser.parse` reads it once the
file has any error.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from converge_rules._gc import paused_gc
from converge_rules.language.syntax.parser import (
    ParseResult,
    _Chunk,
    _comment,
    _line_starts,
    _parse_chunk,
    assemble,
    item_chunks,
    parse,
)
from converge_rules.language.syntax.span import Span

__all__ = ["IncrementalParser"]

_Key = tuple[str, bool]  # an item's text, and whether it starts the file


class IncrementalParser:
    """A ``parse(text, path)`` callable with :func:`~.parser.parse`'s results that
    remembers, per path, the items of the last text it parsed. Not thread-safe: one per
    editor session, called from one thread."""

    def __init__(self) -> None:
        self._items: dict[str, dict[_Key, _Chunk]] = {}

    def __call__(self, text: str, path: str = "<string>") -> ParseResult:
        try:
            with paused_gc():
                return self._parse(text, path)
        except Exception:
            self._items.pop(path, None)
            return parse(text, path)

    def forget(self, path: str) -> None:
        """Drop what is kept for ``path`` (its file was closed)."""
        self._items.pop(path, None)

    def _parse(self, text: str, path: str) -> ParseResult:
        lines = _line_starts(text)
        previous = self._items.get(path, {})
        current: dict[_Key, _Chunk] = {}
        chunks: list[_Chunk] = []
        for first, begin, end in item_chunks(text, lines):
            key = (text[begin:end], first == 0)
            chunk = current.get(key) or previous.get(key)
            if chunk is not None and chunk.line_offset != first and (
                    chunk.error is not None or chunk.diagnostics):
                chunk = None  # a message may name a line ("opened at 6:3"): parse again
            if chunk is None:
                chunk = _parse_chunk(key[0], path, first, at_file_start=key[1])
                chunk.nodes = [_comment(tok, path, first, text, lines)
                               for tok in chunk.comments]
                chunk.comments = []
            elif chunk.line_offset != first:
                chunk = _moved(chunk, first)
            current[key] = chunk
            chunks.append(chunk)
        self._items[path] = current
        return assemble(chunks, text, path, lines)


def _moved(chunk: _Chunk, line_offset: int) -> _Chunk:
    """``chunk`` with every span moved to start at ``line_offset``."""
    by = line_offset - chunk.line_offset
    return _Chunk(
        _shift(chunk.header, by), [_shift(item, by) for item in chunk.items],
        [_shift(d, by) for d in chunk.diagnostics], _shift(chunk.error, by), [],
        line_offset, [_shift(c, by) for c in chunk.nodes or ()])


def _shift(value: Any, by: int) -> Any:
    """``value`` (a node, a diagnostic, a tuple of them…) with its spans ``by`` lines
    further down."""
    shifter = _SHIFTERS.get(type(value))
    if shifter is None:
        shifter = _make_shifter(type(value))
    return shifter(value, by)


def _shift_span(span: Span, by: int) -> Span:
    return Span(span.file, span.line + by, span.column, span.end_line + by, span.end_column)


def _same(value: Any, by: int) -> Any:
    return value


def _shift_tuple(values: tuple[Any, ...], by: int) -> tuple[Any, ...]:
    return tuple([_shift(v, by) for v in values])


_SHIFTERS: dict[type, Callable[[Any, int], Any]] = {
    Span: _shift_span, tuple: _shift_tuple, str: _same, int: _same, float: _same,
    bool: _same, type(None): _same,
}
"""How to move each kind of value: built once per class (a node class gets a function
compiled for its fields, about three times faster than walking them generically, which
matters when an edit moves every item of a long file). A cache of code, shared by every
parser; nothing else is kept here."""

# annotations of fields that hold no span (copied as they are)
_PLAIN = re.compile(r"(str|int|float|bool|None|Lit\[[^\]]*\]|[A-Za-z]*Op)"
                    r"( \| (str|int|float|bool|None))*")


def _make_shifter(cls: type) -> Callable[[Any, int], Any]:
    if not dataclasses.is_dataclass(cls):
        _SHIFTERS[cls] = _same
        return _same
    parts = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        plain = _PLAIN.fullmatch(annotation) is not None
        parts.append(f"{f.name}=v.{f.name}" if plain else f"{f.name}=shift(v.{f.name}, by)")
    code = f"def shifter(v, by):\n    return cls({', '.join(parts)})\n"
    namespace: dict[str, Any] = {"cls": cls, "shift": _shift}
    exec(code, namespace)  # code made here from the class's own field names
    shifter: Callable[[Any, int], Any] = namespace["shifter"]
    _SHIFTERS[cls] = shifter
    return shifter
