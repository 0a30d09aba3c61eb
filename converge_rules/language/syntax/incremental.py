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


_FIELDS: dict[type, tuple[str, ...]] = {}


def _shift(value: Any, by: int) -> Any:
    """``value`` (a node, a diagnostic, a tuple of them…) with its spans ``by`` lines
    further down."""
    if isinstance(value, Span):
        return Span(value.file, value.line + by, value.column, value.end_line + by,
                    value.end_column)
    if isinstance(value, tuple):
        return tuple(_shift(v, by) for v in value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    cls = type(value)
    names = _FIELDS.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(value) or isinstance(value, type):
            return value
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(value) if f.init)
    return cls(**{name: _shift(getattr(value, name), by) for name in names})

