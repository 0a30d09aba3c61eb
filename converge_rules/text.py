"""Text from rulesets, input files and tools, made safe to print or to write in a report.

Test names, string values, tool answers (an LLM's among them) and file names can hold
any character. Printed raw, an escape sequence drives the terminal (``\\x1b[2J`` clears
it) and a newline starts a line of the reader's choosing (``::error::…`` is a GitHub
Actions workflow command). Every output that shows such text to a person passes it
through :func:`printable`; XML reports pass it through :func:`xml_text`.
"""

from __future__ import annotations

import functools
import re

__all__ = ["printable", "xml_text"]

# C0, DEL and C1 (Unicode category Cc), the line and paragraph separators (a line
# break to many readers), the bidirectional embeddings, overrides and isolates (U+202A-E,
# U+2066-9: they reorder what follows on the line, so a value or a test name could show
# other text than it holds) and lone surrogates (which no output encoding can write).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                      "\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def printable(text: str, *, keep: str = "") -> str:
    """``text`` with control characters, line separators and lone surrogates escaped
    (``\\n``, ``\\t``, ``\\r``, else ``\\xNN`` or ``\\uNNNN``), so that it prints as one
    line of plain characters that any encoding can write. ``keep`` lists the
    control characters to leave as they are (``"\\n"`` for text that may span lines on
    purpose)."""
    if not _CONTROL.search(text):
        return text

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if char in keep:
            return char
        code = ord(char)
        return _NAMED.get(char, f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")

    return _CONTROL.sub(escape, text)


@functools.cache
def _not_xml() -> re.Pattern[str]:
    """Characters XML 1.0 cannot hold at all, even as character references. Compiled
    on first use: the class spans all of Unicode, and compiling it costs about 6 ms,
    which every `converge check` (this module's other user) would pay for nothing."""
    return re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 forbids (most C0 controls, lone
    surrogates, U+FFFE and U+FFFF) written as ``\\xNN``; the XML writer escapes the
    rest (``<``, ``&``, quotes, newlines in attributes)."""
    return _not_xml().sub(lambda m: f"\\x{ord(m.group()):02x}", text)
