"""Source spans: where in which file a piece of syntax stands.

A leaf module with no dependencies, so every stage of the pipeline (and the engine's
trace, which points back at rules) can name a place in the source.
"""

from __future__ import annotations

from converge_rules.records import record


@record(order=True)
class Span:
    """A region of one source file. Lines and columns count from 1; ``end_column`` is
    the column just past the last character, as editors and SARIF expect."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to(self, other: Span) -> Span:
        """The span from the start of this one to the end of ``other``."""
        return Span(self.file, self.line, self.column, other.end_line, other.end_column)

    def quoted(self, text: str) -> Span | None:
        """The span of ``text`` between the quotes of the string literal at this span,
        when the literal writes it as it reads (one line, no escapes); else None."""
        if self.line != self.end_line or self.end_column - self.column != len(text) + 2:
            return None
        return Span(self.file, self.line, self.column + 1, self.line, self.end_column - 1)


UNKNOWN_SPAN = Span("<unknown>", 1, 1, 1, 1)
