"""The JSON Lines trace sink: one event per line, UTF-8, ``\\n`` line ends."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import IO


class JsonLinesTraceSink:
    """Writes trace lines to a file (created or truncated on open)."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8", newline="\n")

    def write_lines(self, lines: Iterable[str]) -> None:
        assert self._file is not None, "the sink is closed"
        write = self._file.write
        for line in lines:
            write(line)
            write("\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> JsonLinesTraceSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
