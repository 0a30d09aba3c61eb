"""The ``human`` format: rustc-like diagnostics with the source line and an underline.

::

    error[CVG101]: unknown fact type "Pricee"
      --> pricing.cvg:12:8
       |
    12 |   when Pricee(sku)
       |        ^^^^^^
       |
       = help: did you mean "Price"?
    note: first declared here
      --> pricing.cvg:3:1
       |
     3 | fact Price { key sku: str }
       | ----------

The primary span is underlined with ``^``, related spans with ``-``. Colour (ANSI) is
added only when asked for. Text from the ruleset never drives the terminal: control
characters are escaped (:func:`converge_rules.text.printable`), and a message or a note
prints on one line whatever it holds (only a help may span lines).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from converge_rules.language.diagnostics.core import Diagnostic, Severity
from converge_rules.language.diagnostics.render import sorted_diagnostics, summarize
from converge_rules.language.syntax.span import Span
from converge_rules.text import printable

_TAB_WIDTH = 4
_MAX_SNIPPET_LINES = 6  # a longer span shows its first and last lines around an ellipsis
_MAX_LINE_CHARS = 160  # a longer source line is shown as a window around the underline
_WINDOW_BEFORE = 60  # characters kept before the underline in that window

_RESET = "\x1b[0m"
_SEVERITY_STYLE = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.NOTE: "\x1b[1;36m",
}
_GUTTER_STYLE = "\x1b[1;34m"
_BOLD = "\x1b[1m"
_HELP_STYLE = "\x1b[1;36m"


class _Painter:
    """Wraps text in ANSI styles, or leaves it alone when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str) -> str:
        if not self.enabled or not text:
            return text
        return f"{style}{text}{_RESET}"


def render_human(
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, str],
    *,
    files: Sequence[str] | None = None,
    color: bool = False,
) -> str:
    """Every diagnostic with its source snippet, then a summary line
    (``2 errors, 1 warning in 3 files``). ``files`` are the files checked (see
    :func:`~converge_rules.language.diagnostics.render.checked_files`)."""
    items = sorted_diagnostics(diagnostics)
    paint = _Painter(color)
    lines = _SourceLines(sources)
    blocks = [_render_one(d, lines, paint) for d in items]
    summary = summarize(items, sources, files)
    style = _SEVERITY_STYLE[Severity.ERROR] if summary.errors else (
        _SEVERITY_STYLE[Severity.WARNING] if summary.warnings else _BOLD
    )
    blocks.append(paint(summary.text(), style) + "\n")
    return "\n".join(blocks)


class _SourceLines:
    """Source lines by file, split once. Lines are split on ``\\n`` only, as the parser
    counts them (``str.splitlines`` would also split on form feeds)."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self._sources = sources
        self._split: dict[str, list[str]] = {}

    def get(self, file: str, line: int) -> str | None:
        """Line ``line`` (from 1) of ``file``; ``""`` just past the last line (an error
        at end of file); None when unknown."""
        if file not in self._split:
            text = self._sources.get(file)
            if text is None:
                return None
            self._split[file] = [part.removesuffix("\r") for part in text.split("\n")]
        split = self._split[file]
        if 1 <= line <= len(split):
            return split[line - 1]
        if line == len(split) + 1:
            return ""
        return None


def _render_one(diagnostic: Diagnostic, lines: _SourceLines, paint: _Painter) -> str:
    spans = [diagnostic.span] if diagnostic.span else []
    spans += [related.span for related in diagnostic.related]
    width = max((len(str(span.end_line)) for span in spans), default=1)
    style = _SEVERITY_STYLE[diagnostic.severity]

    out = [
        paint(f"{diagnostic.severity.value}[{diagnostic.code}]", style)
        + paint(f": {printable(diagnostic.message)}", _BOLD)
    ]
    gutter = paint(" " * width + " |", _GUTTER_STYLE)
    if diagnostic.span is not None:
        out.append(_location(diagnostic.span, width, paint))
        out.extend(_snippet(diagnostic.span, lines, width, "^", style, paint))
    if diagnostic.help:
        if diagnostic.span is not None:
            out.append(gutter)
        help_lines = printable(diagnostic.help, keep="\n\t").split("\n")
        prefix = " " * (width + 1) + paint("=", _GUTTER_STYLE) + " "
        out.append(prefix + paint("help", _HELP_STYLE) + ": " + help_lines[0])
        out.extend(" " * (width + 9) + more for more in help_lines[1:])
    for related in diagnostic.related:
        out.append(paint("note", _SEVERITY_STYLE[Severity.NOTE])
                   + f": {printable(related.message)}")
        out.append(_location(related.span, width, paint))
        out.extend(_snippet(related.span, lines, width, "-", _GUTTER_STYLE, paint))
    return "\n".join(out) + "\n"


def _location(span: Span, width: int, paint: _Painter) -> str:
    return " " * width + paint("-->", _GUTTER_STYLE) + f" {printable(str(span))}"


def _snippet(
    span: Span, lines: _SourceLines, width: int, mark: str, style: str, paint: _Painter
) -> list[str]:
    """The lines of ``span`` with an underline; nothing when the source is unknown."""
    last = max(span.end_line, span.line)
    numbers = list(range(span.line, last + 1))
    if len(numbers) > _MAX_SNIPPET_LINES:
        half = _MAX_SNIPPET_LINES // 2
        numbers = [*numbers[:half], 0, *numbers[-half:]]
    texts = {n: lines.get(span.file, n) for n in numbers if n}
    if any(text is None for text in texts.values()):
        return []
    empty = paint(" " * width + " |", _GUTTER_STYLE)
    out = [empty]
    for number in numbers:
        if number == 0:
            out.append(paint("...", _GUTTER_STYLE))
            continue
        text = texts[number] or ""
        start, end = _underline_range(span, number, text)
        text, start, end = _window(text, start, end)
        shown, offsets = _display(text)
        out.append(paint(f"{number:>{width}} |", _GUTTER_STYLE) + (" " + shown if shown else ""))
        if start is not None and end is not None:
            left, right = offsets[start], offsets[end]
            underline = mark * max(1, right - left)
            out.append(empty + " " + " " * left + paint(underline, style))
    return out


def _window(text: str, start: int | None, end: int | None
            ) -> tuple[str, int | None, int | None]:
    """A line longer than ``_MAX_LINE_CHARS`` cut down to a window that starts a little
    before the underline, with ``…`` where text was cut; the underline range moves with
    it. (A minified or generated line of megabytes must not flood the terminal.)"""
    if len(text) <= _MAX_LINE_CHARS:
        return text, start, end
    anchor = start if start is not None else 0
    begin = max(0, min(anchor - _WINDOW_BEFORE, len(text) - _MAX_LINE_CHARS))
    stop = begin + _MAX_LINE_CHARS
    prefix = "…" if begin > 0 else ""
    suffix = "…" if stop < len(text) else ""
    shown = prefix + text[begin:stop] + suffix

    def move(index: int | None) -> int | None:
        if index is None:
            return None
        return min(max(index - begin, 0), stop - begin) + len(prefix)

    return shown, move(start), move(end)


def _underline_range(span: Span, number: int, text: str) -> tuple[int | None, int | None]:
    """The character range ``[start, end)`` of ``text`` (line ``number``) that ``span``
    covers, clamped to the line; a zero-width span still gets one mark."""
    length = len(text)
    if number == span.line:
        start = min(max(span.column - 1, 0), length)
    else:
        start = len(text) - len(text.lstrip())
        if start >= length:
            return None, None  # a blank line inside a multi-line span
    end = min(max(span.end_column - 1, start), length) if number == span.end_line else length
    if number != span.line and end <= start:
        return None, None
    return start, end


def _display(text: str) -> tuple[str, list[int]]:
    """``text`` made safe to print (tabs expanded, control characters escaped) and,
    for each character index (and one past the end), its display column."""
    shown: list[str] = []
    offsets: list[int] = []
    column = 0
    for char in text:
        offsets.append(column)
        if char == "\t":
            piece = " " * (_TAB_WIDTH - column % _TAB_WIDTH)
        elif unicodedata.category(char) == "Cc":
            piece = f"\\x{ord(char):02x}"
        elif "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069" or char in (
                "\u2028\u2029"):  # (they would reorder or break the line shown)
            piece = f"\\u{ord(char):04x}"
        else:
            piece = char
        shown.append(piece)
        column += sum(_width(c) for c in piece)
    offsets.append(column)
    return "".join(shown), offsets


def _width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1

