"""Parse a file again after an edit, re-parsing only the top-level items that changed.

An editor asks for the diagnostics of a file on every change. Parsing is most of what
checking costs (a 2,000-line ruleset: about 300 ms to parse, 30 ms to check), while an
edit touches one item. :class:`IncrementalParser` splits the text into items where the
parser's own error recovery splits it (:func:`~.parser.item_chunks`), keeps the parsed
items of the last call by their text, and parses only the items it has not seen. The
pieces are put together by :func:`~.parser.assemble`, as :func:`~.parser.parse` puts
them together.

An item that only moved (a line was inserted above it) keeps its nodes: the spans in
it are moved where they stand. Each kept item has the list of its span objects,
gathered once when it is parsed, so moving it costs two integer writes per span; an
inserted line near the top of a 2,000-line file moves about 10,000 spans in 2-3 ms,
where copying every node with moved spans took 40-50 ms. The price is that a result
is only valid until the next call for the same path: the spans of its kept items
move with that call (the editor uses each result before it parses again).

The result is :func:`~.parser.parse`'s, with one exception the parser's recovery
already makes: an item written without indentation whose body has a line starting at
column 1 with a word that is not a statement keyword (``cases "rows.csv"`` in an
unindented test) is read as two pieces, as :func:`~.parser.parse` reads it once the
file has any error.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
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
    lone_carriage_return,
    parse,
)
from converge_rules.language.syntax.span import UNKNOWN_SPAN, Span

__all__ = ["IncrementalParser"]

# an item's text, whether it starts the file, and how many items before it have the
# same text (each copy of an item is kept apart: moving one must not move another)
_Key = tuple[str, bool, int]


@dataclass
class _Kept:
    """A parsed item and every span object in its nodes, each once."""

    chunk: _Chunk
    spans: list[Span]


class IncrementalParser:
    """A ``parse(text, path)`` callable with :func:`~.parser.parse`'s results that
    remembers, per path, the items of the last text it parsed. A result stays valid
    until the next call for the same path (the spans of items that moved are moved in
    place). Not thread-safe: one per editor session, called from one thread."""

    def __init__(self) -> None:
        self._items: dict[str, dict[_Key, _Kept]] = {}

    def __call__(self, text: str, path: str = "<string>") -> ParseResult:
        if lone_carriage_return(text, path) is not None:
            self._items.pop(path, None)
            return parse(text, path)
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
        previous = self._items.pop(path, {})  # half-moved items must not outlive an error
        current: dict[_Key, _Kept] = {}
        copies: dict[tuple[str, bool], int] = {}
        chunks: list[_Chunk] = []
        for first, begin, end in item_chunks(text, lines):
            item = (text[begin:end], first == 0)
            key = (*item, copies.get(item, 0))
            copies[item] = key[2] + 1
            kept = previous.get(key)
            if kept is not None and kept.chunk.line_offset != first and (
                    kept.chunk.error is not None or kept.chunk.diagnostics):
                kept = None  # a message may name a line ("opened at 6:3"): parse again
            if kept is None:
                chunk = _parse_chunk(item[0], path, first, at_file_start=item[1])
                chunk.nodes = [_comment(tok, path, first, text, lines)
                               for tok in chunk.comments]
                chunk.comments = []
                kept = _Kept(chunk, _spans_of(chunk, path))
            elif kept.chunk.line_offset != first:
                _move(kept, first)
            current[key] = kept
            chunks.append(kept.chunk)
        self._items[path] = current
        return assemble(chunks, text, path, lines)


_SET_LINE = Span.__dict__["line"].__set__
_SET_END_LINE = Span.__dict__["end_line"].__set__


def _move(kept: _Kept, line_offset: int) -> None:
    """Move the item's spans, where they stand, to start at ``line_offset``.

    Spans are frozen for everyone else; here they belong to one kept item (gathered by
    :func:`_spans_of`, none shared with another item or a constant), and no set or
    dict keyed by them outlives a call, so writing them is safe and saves copying
    every node of every item below an inserted line."""
    by = line_offset - kept.chunk.line_offset
    for span in kept.spans:
        _SET_LINE(span, span.line + by)
        _SET_END_LINE(span, span.end_line + by)
    kept.chunk.line_offset = line_offset


def _spans_of(chunk: _Chunk, path: str) -> list[Span]:
    """Every span object of ``path`` in the chunk's nodes, each once."""
    out: list[Span] = []
    seen: set[int] = set()
    stack: list[Any] = [chunk.header, chunk.error, *chunk.items, *chunk.diagnostics,
                        *(chunk.nodes or ())]
    while stack:
        value = stack.pop()
        cls = type(value)
        if cls is Span:
            if id(value) not in seen and value.file == path and value is not UNKNOWN_SPAN:
                seen.add(id(value))
                out.append(value)
        elif cls is tuple or cls is list:
            stack.extend(value)
        else:
            names = _FIELDS.get(cls)
            if names is None:
                names = _fields(cls)
            for name in names:
                stack.append(getattr(value, name))
    return out


_FIELDS: dict[type, tuple[str, ...]] = {}
"""The fields of each node class that may hold a span (a cache of class structure,
shared by every parser; nothing else is kept here)."""

# annotations of fields that hold no span
_PLAIN = re.compile(r"(str|int|float|bool|None|Lit\[[^\]]*\]|[A-Za-z]*Op)"
                    r"( \| (str|int|float|bool|None))*")


def _fields(cls: type) -> tuple[str, ...]:
    names: tuple[str, ...] = ()
    if dataclasses.is_dataclass(cls):
        names = tuple(
            f.name for f in dataclasses.fields(cls) if f.init and _PLAIN.fullmatch(
                f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""))
            is None)
    _FIELDS[cls] = names
    return names
