"""Writing files so that a user never loses one: every file converge writes (formatted
sources, traces, reports, coverage, graphs) is written to a temporary file in the same
directory, flushed, fsynced and renamed over the target. Until the rename the target is
untouched; if anything fails — a full disk, an interrupt, an exception — the temporary
file is removed and the target is exactly what it was.

A target that exists and is not a regular file (``/dev/stdout``, ``/dev/null``, a FIFO)
cannot be replaced by a rename; it is written in place. A symbolic link is followed:
the file it points to is replaced, the link is kept.
"""

from __future__ import annotations

import contextlib
import os
import stat
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = ["AtomicTextFile", "write_text_atomic"]


class AtomicTextFile:
    """A text file that appears at ``path`` only when :meth:`commit` succeeds.

    Use it as a context manager: leaving the block normally commits, leaving it with an
    exception aborts (the target keeps its old content, or stays absent). A replaced
    file keeps its permission bits; a new one gets the usual ``0o666 & ~umask``."""

    def __init__(self, path: str | PathLike[str], *, encoding: str = "utf-8",
                 newline: str = "\n") -> None:
        self.path = Path(path)
        target = Path(os.path.realpath(self.path))
        self._target = target
        self._mode: int | None = None
        self._in_place = False
        try:
            info = target.stat()
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode):
            # A device or a FIFO: a rename would replace it with a regular file.
            self._in_place = True
            self._tmp: Path | None = None
            self._file: IO[str] | None = open(  # noqa: SIM115 (closed by commit/abort)
                target, "w", encoding=encoding, newline=newline)
            return
        if info is not None:
            self._mode = stat.S_IMODE(info.st_mode)
        import tempfile  # here: shutil, random, bz2 and lzma come with it

        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                    dir=target.parent)
        self._tmp = Path(name)
        try:
            self._file = os.fdopen(fd, "w", encoding=encoding, newline=newline)
        except BaseException:
            os.close(fd)
            self._tmp.unlink(missing_ok=True)
            raise

    def write(self, text: str) -> int:
        """Write ``text`` to the temporary file."""
        if self._file is None:
            raise ValueError(f"{self.path} is already committed or aborted")
        return self._file.write(text)

    def commit(self) -> None:
        """Flush, fsync and rename the temporary file over the target. On failure the
        temporary file is removed, the target is untouched, and the ``OSError`` raised."""
        file, self._file = self._file, None
        if file is None:
            return
        try:
            file.flush()
            if not self._in_place:
                os.fsync(file.fileno())
        except BaseException:
            try:
                # closing flushes again, and on a full disk fails again: the temporary
                # file must go all the same
                with contextlib.suppress(OSError):
                    file.close()
            finally:
                self._discard()
            raise
        try:
            file.close()
        except BaseException:
            self._discard()
            raise
        if self._in_place or self._tmp is None:
            return
        try:
            os.chmod(self._tmp, self._mode if self._mode is not None else _new_file_mode())
            os.replace(self._tmp, self._target)
        except BaseException:
            self._discard()
            raise
        self._tmp = None
        _fsync_directory(self._target.parent)

    def abort(self) -> None:
        """Close and remove the temporary file; the target keeps what it had."""
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        self._discard()

    def _discard(self) -> None:
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self) -> AtomicTextFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def write_text_atomic(path: str | PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Replace the file at ``path`` with ``text`` atomically (see the module docstring).
    Raises ``OSError`` with the target untouched when it cannot be written."""
    with AtomicTextFile(path, encoding=encoding) as out:
        out.write(text)


def _new_file_mode() -> int:
    return 0o666 & ~_umask()


def _umask() -> int:
    # os.umask() can only be read by setting it, which would race other threads; Linux
    # says it in /proc. Elsewhere assume the common 022.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every platform or file system allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
