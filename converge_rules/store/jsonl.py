"""The JSON Lines trace sink: one event per line, UTF-8, ``\\n`` line ends."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from types import TracebackType

from converge_rules.files import AtomicTextFile


class JsonLinesTraceSink:
    """Writes trace lines to a file, atomically: the file at ``path`` appears (or is
    replaced) only when the sink is closed after a complete write. Leaving its ``with``
    block with an exception, or :meth:`abort`, leaves any previous file untouched."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = Path(path)
        self._file: AtomicTextFile | None = AtomicTextFile(self.path)

    def write_lines(self, lines: Iterable[str]) -> None:
        assert self._file is not None, "the sink is closed"
        write = self._file.write
        for line in lines:
            write(line)
            write("\n")

    def close(self) -> None:
        """Commit: the trace replaces the file at ``path``."""
        if self._file is not None:
            file, self._file = self._file, None
            file.commit()

    def abort(self) -> None:
        """Drop what was written; the file at ``path`` keeps what it had."""
        if self._file is not None:
            file, self._file = self._file, None
            file.abort()

    def __enter__(self) -> JsonLinesTraceSink:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
