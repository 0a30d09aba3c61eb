"""Parse ``.cvg`` text into a :class:`~converge_rules.language.syntax.nodes.Module`.

:func:`parse` never raises: syntax errors become diagnostics (codes CVG0xx) that say, in
words, what was expected and where, and an internal failure becomes CVG990. After an
error the file is re-parsed item by item (an item starts on a line that begins with a
word), so one run reports an error per broken item and still returns the good items.

The grammar is ``grammar/converge.lark``, shipped inside the wheel as
``converge_rules/grammar/converge.lark``. Lark types never leave this package's private
modules.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lark

from converge_rules._gc import paused_gc
from converge_rules.language.diagnostics.core import Diagnostic, Severity
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax import parser_cache
from converge_rules.language.syntax.error_messages import (
    BAD_CHARACTER,
    INTERNAL,
    ITEM_WORDS,
    MISSING_HEADER,
    bidi_controls,
    describe_error,
    misplaced_header,
)
from converge_rules.language.syntax.span import Span
from converge_rules.language.syntax.tree_builder import TreeBuilder

__all__ = ["ParseResult", "grammar_text", "parse"]

# A line that starts an item: a word at column 1 followed by another word or a string
# (`agent a`, `test "t"`, and misspellings such as `agnet a`), unless the word starts a
# statement inside a block (bodies written without indentation stay in one piece).
_TOP_LEVEL_START = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]+[A-Za-z_\"]")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\b")
_ITEM_WORDS = frozenset({"ruleset", *ITEM_WORDS})
_STATEMENT_WORDS = frozenset({
    "when", "where", "and", "call", "emit", "intend", "evaluate", "require", "given",
    "mock", "expect", "key", "resolve", "combine", "keep", "reject", "on", "then",
})


@dataclass(frozen=True, slots=True)
class ParseResult:
    """The module (None only if nothing could be built) and every diagnostic, sorted."""

    module: n.Module | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """True when there is a module and no error diagnostic."""
        return self.module is not None and not any(d.is_error for d in self.diagnostics)


def grammar_text() -> str:
    """The grammar source: from the installed package, else from the source checkout.
    (A path beside the package, not importlib.resources: the package is always
    installed as files, and importing importlib.resources costs every command 20 ms.)"""
    package = Path(__file__).resolve().parents[2]
    try:
        return (package / "grammar" / "converge.lark").read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return (package.parent / "grammar" / "converge.lark").read_text(encoding="utf-8")


# Comments arrive through a lexer callback on a parser built once and shared, so each
# parse collects into its own thread-local list.
_collected = threading.local()


def _on_comment(token: Any) -> Any:
    sink = getattr(_collected, "comments", None)
    if sink is not None:
        sink.append(token)
    return token


_COLON_NEXT = re.compile(r"\s*:")


class _KeywordBeforeColonIsName:
    """A keyword followed by ``:`` is read as a name (``reason: str``, ``key: "a"``).

    The contextual lexer reads a word as a keyword wherever the keyword may come next,
    and after an expression LALR's merged lookaheads allow many keywords (``reason``,
    ``emit``, ``test``…). No keyword is ever followed by ``:`` in the grammar, while a
    declared field, named argument or binder always is, so the colon decides.
    """

    always_accept: tuple[str, ...] = ()

    def process(self, stream: Any) -> Any:
        for tok in stream:
            if (tok.type != "NAME" and tok.value[:1].isalpha()
                    and tok.type not in ("NUMBER", "STRING")
                    and _COLON_NEXT.match(getattr(_collected, "text", ""), tok.end_pos)):
                tok = lark.Token.new_borrow_pos("NAME", tok.value, tok)
            yield tok


# What the parser is built with besides the grammar: part of the cache key, so a change
# here is never served a parser built the old way. The callbacks are saved by reference
# (module and name), so their code is always today's.
_BUILD_OPTIONS = dict(parser="lalr", lexer="contextual", propagate_positions=True)
_BUILD_KEY = f"{sorted(_BUILD_OPTIONS.items())} COMMENT={_on_comment.__qualname__} " \
             f"postlex={_KeywordBeforeColonIsName.__qualname__}"


@functools.cache
def _lark() -> Any:
    """The parser, built once per process, and loaded from the per-user cache when an
    earlier process saved it there (see :mod:`.parser_cache`)."""
    grammar = grammar_text()

    def build() -> Any:
        return lark.Lark(
            grammar, **_BUILD_OPTIONS, lexer_callbacks={"COMMENT": _on_comment},
            postlex=_KeywordBeforeColonIsName(),
        )

    return parser_cache.load_or_build(build, grammar, _BUILD_KEY, parser_cache.cache_dir())


def parse(text: str, path: str = "<string>") -> ParseResult:
    """Parse one file's text. Never raises: every problem is a diagnostic with a span.

    The module is returned even when there are errors; it then holds the items that
    parsed (a missing ``ruleset`` line gives ``header=None``).
    """
    # A parse allocates many small objects and frees none of them, so the cyclic
    # collector would rescan a growing heap again and again: measured, that made parse
    # time grow faster than the input (per-line cost x1.6 from 1k to 8k lines).
    lone = lone_carriage_return(text, path)
    if lone is not None:
        return ParseResult(None, (lone,))
    try:
        with paused_gc():
            return _parse(text, path)
    except RecursionError:
        message = "the input is nested too deeply to parse"
        help_ = "split the expression into smaller pieces"
    except Exception as exc:  # a bug must become a diagnostic, not a crash
        message = f"internal parser error: {type(exc).__name__}: {exc}"
        help_ = "please report this with the file that caused it"
    diag = Diagnostic(INTERNAL, Severity.ERROR, message, Span(path, 1, 1, 1, 1), help_)
    return ParseResult(None, (diag,))


_LONE_CR = re.compile("\r(?!\n)")


def lone_carriage_return(text: str, path: str) -> Diagnostic | None:
    """The error for the first carriage return of ``text`` that no line feed follows,
    if there is one.

    The language's lines end in LF (a CR just before it, as in CRLF, is whitespace).
    A lone CR (a file saved with classic Mac OS line ends, or one pasted into a
    string) ends a line for many editors and for every LSP client but not for the
    language, so each would number the lines after it differently, and a comment
    before it would run on to hide the code after it. The file is refused at the
    first lone CR, a place every line count agrees on."""
    found = _LONE_CR.search(text)
    if found is None:
        return None
    pos = found.start()
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return Diagnostic(
        BAD_CHARACTER, Severity.ERROR,
        "a carriage return (U+000D) that does not end a line: the lines of a .cvg file "
        "end in LF or CRLF", Span(path, line, column, line, column + 1),
        "save the file with LF (or CRLF) line ends; a file whose lines end in CR alone "
        "(classic Mac OS) converts with `tr '\\r' '\\n' < OLD > NEW`")


def _parse(text: str, path: str) -> ParseResult:
    lines = _line_starts(text)
    whole = _parse_chunk(text, path, 0, at_file_start=True)
    chunks = [whole] if whole.error is None else _parse_by_items(text, path, lines)
    return assemble(chunks, text, path, lines)


def assemble(chunks: list[_Chunk], text: str, path: str, lines: list[int]) -> ParseResult:
    """The module and diagnostics of ``text`` from its parsed chunks, in order (the
    whole file as one chunk, or its items one by one)."""
    header: n.RulesetDecl | None = None
    items: list[n.Item] = []
    comments: list[n.Comment] = []
    diagnostics: list[Diagnostic] = []
    for chunk in chunks:
        if chunk.header is not None and header is None and not items:
            header = chunk.header
        elif chunk.header is not None:
            diagnostics.append(misplaced_header(chunk.header.span))
        items.extend(chunk.items)
        diagnostics.extend(chunk.diagnostics)
        if chunk.error is not None:
            diagnostics.append(chunk.error)
        comments.extend(chunk.comment_nodes(path, text, lines))
    first = _first_code_span(text, path, lines)
    # A broken header, or an error on the first line (a misspelt header), already says
    # what is wrong.
    starts_with_header = text[_offset(lines, first):].startswith("ruleset")
    if header is None and not starts_with_header and not any(
            d.span and d.span.line == first.line for d in diagnostics):
        diagnostics.append(Diagnostic(
            MISSING_HEADER, Severity.ERROR, "the file does not start with a `ruleset` line",
            first, 'add a first line such as `ruleset pricing "what this ruleset does"`'))
    if not text.isascii():  # (a Trojan Source line: its strings and comments reordered)
        diagnostics.extend(bidi_controls(text, path, {
            (d.span.line, d.span.column) for d in diagnostics if d.span is not None}))
    end = _end_position(text, lines)
    module = n.Module(header, tuple(items), tuple(comments),
                      Span(path, 1, 1, end[0], end[1]))
    return ParseResult(module, tuple(sorted(diagnostics, key=Diagnostic.sort_key)))


@dataclass(slots=True)
class _Chunk:
    header: n.RulesetDecl | None
    items: list[n.Item]
    diagnostics: list[Diagnostic]
    error: Diagnostic | None
    comments: list[Any]
    line_offset: int
    #: the comments as nodes, when already made (a chunk kept by an incremental parse)
    nodes: list[n.Comment] | None = None

    def comment_nodes(self, path: str, text: str, lines: list[int]) -> list[n.Comment]:
        """The chunk's comments as nodes; ``text`` is the whole file's."""
        if self.nodes is None:
            return [_comment(tok, path, self.line_offset, text, lines)
                    for tok in self.comments]
        return self.nodes


def _parse_chunk(text: str, path: str, line_offset: int, *, at_file_start: bool) -> _Chunk:
    comments: list[Any] = []
    _collected.comments = comments
    _collected.text = text
    try:
        tree = _lark().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        error = describe_error(exc, text, path, line_offset, _lark(),
                               at_file_start=at_file_start)
        return _Chunk(None, [], [], error, comments, line_offset)
    finally:
        _collected.comments = None
        _collected.text = ""
    builder = TreeBuilder(path, line_offset)
    header, items = builder.module(tree)
    return _Chunk(header, items, builder.diagnostics, None, comments, line_offset)


def _parse_by_items(text: str, path: str, starts: list[int]) -> list[_Chunk]:
    """Re-parse a broken file one top-level item at a time."""
    return [_parse_chunk(text[begin:end], path, first, at_file_start=first == 0)
            for first, begin, end in item_chunks(text, starts)]


def item_chunks(text: str, starts: list[int]) -> list[tuple[int, int, int]]:
    """Where ``text`` splits into top-level items: (line offset, start, end) of each
    piece, in order. ``starts`` are the offsets of its lines."""
    boundaries = [0]
    for index, offset in enumerate(starts[1:], start=1):
        start = _TOP_LEVEL_START.match(text, offset)
        word = _WORD.match(text, offset)
        if (start and start.group(1) not in _STATEMENT_WORDS) or (
                word and word.group() in _ITEM_WORDS):
            boundaries.append(index)
    boundaries.append(len(starts))
    pieces: list[tuple[int, int, int]] = []
    for first, last in itertools.pairwise(boundaries):
        if first == last:
            continue
        end = starts[last] if last < len(starts) else len(text)
        pieces.append((first, starts[first], end))
    return pieces


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


def _comment(tok: Any, path: str, line_offset: int, text: str, starts: list[int]) -> n.Comment:
    line = tok.line + line_offset
    begin = starts[line - 1]
    before = text[begin:begin + tok.column - 1]
    comment = str(tok.value).rstrip("\r")
    span = Span(path, line, tok.column, line, tok.column + len(comment))
    return n.Comment(comment, bool(before.strip()), span)


def _offset(starts: list[int], span: Span) -> int:
    return starts[span.line - 1] + span.column - 1


def _first_code_span(text: str, path: str, starts: list[int]) -> Span:
    for index, begin in enumerate(starts):
        end = starts[index + 1] - 1 if index + 1 < len(starts) else len(text)
        line = text[begin:end]
        stripped = line.lstrip()
        if stripped and not stripped.startswith("#"):
            column = len(line) - len(stripped) + 1
            word = re.match(r"\S+", stripped)
            width = len(word.group()) if word else 1
            return Span(path, index + 1, column, index + 1, column + width)
    return Span(path, 1, 1, 1, 1)


def _end_position(text: str, starts: list[int]) -> tuple[int, int]:
    line = bisect.bisect_right(starts, len(text))
    return line, len(text) - starts[line - 1] + 1

