"""Which files a ruleset may read, and reading them without surprises.

A ruleset names other files: ``import "lib.cvg"`` and ``cases "rows.csv"``. Those
paths come from the ruleset's text, so they are confined: each must resolve (symbolic
links followed, ``..`` collapsed) to a file inside the entry ruleset's folder, or inside
a folder the user allowed explicitly (``--allow-path DIR``, ``allow_paths=`` in the API).
Whatever file is read must be a regular file (never a device such as ``/dev/zero``, a
FIFO, a socket or a directory; a FIFO is never even opened) and no larger than a limit:
:data:`MAX_RULESET_BYTES` for a ruleset, :data:`MAX_FIXTURE_BYTES` for a ``cases``
file. The entry file the user names on the command line may also be a pipe or a
terminal (``converge check /dev/stdin``), still within the size limit.

A file that does not begin like a ruleset (``/etc/passwd``, a CSV file) is named, never
quoted: :func:`looks_like_ruleset` decides, and :func:`snippet_source` refuses to hand
such a file's lines to a diagnostic's snippet.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from converge_rules.errors import ConvergeError
from converge_rules.patterns import pattern
from converge_rules.records import record

MAX_RULESET_BYTES = 10 * 1024 * 1024
"""The largest ruleset file read (10 MiB): the largest real rulesets are a few hundred
KiB; a larger file is split into files that import each other."""

MAX_FIXTURE_BYTES = 100 * 1024 * 1024
"""The largest ``cases`` fixture read (100 MiB)."""

ALLOW_OPTION = "--allow-path DIR"
"""How a user widens the folders a ruleset may read from (``allow_paths=`` in the API)."""


class FileRefused(ConvergeError):
    """A file that is not read, and why: ``reason`` completes "cannot read `FILE`: "
    (it is outside the allowed folders, a device, too large, a symbolic link loop…),
    ``help`` says what to do; ``outside`` is true when only its place is wrong."""

    def __init__(self, path: str, reason: str, help: str, *, outside: bool = False) -> None:
        self.path = path
        self.reason = reason
        self.help = help
        self.outside = outside
        super().__init__(f"cannot read `{path}`: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_refused, (self.path, self.reason, self.help, self.outside))


def _rebuild_refused(path: str, reason: str, help: str, outside: bool) -> FileRefused:
    return FileRefused(path, reason, help, outside=outside)


def resolve(path: Path) -> Path:
    """``path`` made absolute with symbolic links followed; a symbolic link loop or a
    path the system cannot take (a NUL byte) is a :class:`FileRefused`."""
    try:
        return path.resolve()
    except RuntimeError as exc:  # Python < 3.13 reports a loop so
        raise _loop(path) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _loop(path) from exc
        raise
    except ValueError as exc:
        raise FileRefused(str(path), f"not a usable path ({exc})",
                          "write the path without control characters") from exc


def _loop(path: Path) -> FileRefused:
    return FileRefused(str(path), "it is a symbolic link loop (the link points, directly "
                       "or through others, back at itself)",
                       f"fix the link: `ls -l {path}` shows where it points")


def allowed_folders(allow: object) -> tuple[str | os.PathLike[str], ...]:
    """``allow_paths`` as a tuple of folders. What is no list of folders is a
    ``TypeError``: one string would be read a character at a time, and its ``/`` would
    allow every folder of the machine."""
    if isinstance(allow, str | bytes | os.PathLike):
        raise TypeError(f"allow_paths takes a list of folders, got the "
                        f"{type(allow).__name__} {allow!r:.80}; write "
                        f"allow_paths=[{allow!r:.80}]")
    if not isinstance(allow, Iterable):
        raise TypeError(f"allow_paths takes a list of folders, got {type(allow).__name__}")
    folders = tuple(allow)
    for folder in folders:
        if not isinstance(folder, str | os.PathLike):
            raise TypeError(f"allow_paths takes a list of folders (str or Path), got "
                            f"{type(folder).__name__} {folder!r:.40} in it")
    return folders


@record
class FileAccess:
    """The folders a ruleset may read imports and ``cases`` files from (resolved, the
    entry ruleset's own folder first), and the size limits."""

    roots: tuple[Path, ...]
    max_ruleset_bytes: int = MAX_RULESET_BYTES
    max_fixture_bytes: int = MAX_FIXTURE_BYTES

    @classmethod
    def for_entry(cls, entry: str | os.PathLike[str],
                  allow: Iterable[str | os.PathLike[str]] = ()) -> FileAccess:
        """The folder of ``entry`` (resolved) and the folders in ``allow``."""
        try:
            home = resolve(Path(entry)).parent
        except FileRefused:  # reported when the entry is read
            home = Path(os.path.abspath(entry)).parent
        roots = [home]
        for extra in allowed_folders(allow):
            try:
                root = resolve(Path(extra))
            except FileRefused:
                continue  # a loop allows nothing
            if root not in roots:
                roots.append(root)
        return cls(tuple(roots))

    def allows(self, resolved: Path) -> bool:
        """Whether the resolved path lies inside one of the folders."""
        return any(resolved == root or resolved.is_relative_to(root) for root in self.roots)

    def check(self, resolved: Path, name: str, what: str) -> None:
        """A :class:`FileRefused` naming ``name`` (the path as written) and the option
        that widens the folders, unless ``resolved`` is inside them."""
        if self.allows(resolved):
            return
        home = _shown(self.roots[0])
        raise FileRefused(
            name, f"{what} must lie inside the folder of the entry ruleset (`{home}`)"
            + (" or a folder allowed with --allow-path" if len(self.roots) > 1 else "")
            + ", and this one resolves outside it",
            f"move the file below `{home}`, or allow its folder with `{ALLOW_OPTION}` "
            "(`allow_paths=[DIR]` in the Python API)", outside=True)


def _shown(folder: Path) -> str:
    """A folder as a message shows it: relative to the working directory when below it
    (``./``, ``rules/``), otherwise absolute."""
    try:
        rel = os.path.relpath(folder)
    except ValueError:  # another drive on Windows
        return str(folder)
    shown = str(folder) if rel.startswith("..") else rel
    return shown if shown.endswith(os.sep) else shown + os.sep


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit:,} bytes"


def read_bytes(path: Path, limit: int, *, what: str = "file", streams: bool = False) -> bytes:
    """The bytes of ``path`` when it is a regular file of at most ``limit`` bytes.

    With ``streams``, a FIFO or character device (``/dev/stdin``, a terminal) is read
    too, up to ``limit`` bytes; otherwise it is refused without being opened. Raises
    :class:`FileRefused` (a directory, a device, a FIFO, a socket, too large, a symbolic
    link loop; ``what`` names the file's role in the message), ``FileNotFoundError``
    and other ``OSError`` (permissions) as they come.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _loop(path) from exc
        raise
    except ValueError as exc:  # a NUL byte in the path
        raise FileRefused(str(path), f"not a usable path ({exc})",
                          "write the path without control characters") from exc
    kind = _kind(info.st_mode)
    stream = streams and kind in ("character device", "FIFO (named pipe)")
    if kind == "directory":
        raise FileRefused(str(path), "it is a directory", f"name a {what}, not a folder")
    if kind != "file" and not stream:
        raise FileRefused(str(path), f"it is a {kind}, not a regular file",
                          f"name a regular {what}")
    too_large = FileRefused(
        str(path), f"it is larger than {_size(limit)}, the limit for a {what}",
        "split it into smaller files" if what != "cases file" else
        "split the table into several tests, each with its own cases file")
    if kind == "file" and info.st_size > limit:
        raise too_large
    # O_NONBLOCK: should the file have become a FIFO since the stat, opening it does not
    # wait for a writer (and the fstat below refuses it).
    flags = os.O_RDONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    if not stream:
        flags |= getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        if not stream and not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileRefused(str(path), "it is not a regular file", f"name a regular {what}")
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise too_large
    finally:
        os.close(fd)
    return b"".join(chunks)


# The words a ruleset's first line may begin with: the header, any item (a file missing
# its header is still a ruleset, and is told so), or a misspelling of one of them.
_WORDS = ("ruleset", "import", "uses", "root", "enum", "fact", "intent", "agent", "policy",
          "prune", "test")
_FIRST = pattern(r"[ \t]*([A-Za-z_][A-Za-z0-9_]*)(?:[ \t\r{\"]|$)")


def looks_like_ruleset(text: str) -> bool:
    """Whether ``text`` begins as a ruleset does: after blank and ``#`` comment lines, a
    word (``ruleset``, an item keyword, or a misspelling of one) followed by a space, a
    brace, a quote or the end of the line. An empty file counts (it is told it lacks a
    header); ``root:x:0:0:…``, ``sku,amount`` and ``{"a": 1}`` do not."""
    start = 1 if text.startswith("\ufeff") else 0
    for line in _lines(text, start):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _FIRST.match(line)
        if match is None:
            return False
        word = match.group(1).lower()
        if word in _WORDS:
            return True
        import difflib  # here: a ruleset's first word is a keyword

        return bool(difflib.get_close_matches(word, _WORDS, n=1, cutoff=0.75))
    return True


def _lines(text: str, start: int) -> Iterable[str]:
    """The lines of ``text`` from ``start``, lazily (a file may be megabytes long and
    only its first code line matters)."""
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start:end]
        start = end + 1


def snippet_source(name: str) -> str | None:
    """The text of the ruleset file ``name`` for a diagnostic's snippet, or None when it
    should not be shown: not a regular file, too large, or not a ruleset (its lines are
    someone else's data, which would otherwise end up in terminals and CI logs)."""
    try:
        text = read_bytes(Path(name), MAX_RULESET_BYTES, what="ruleset file").decode(
            "utf-8", errors="replace")
    except (OSError, FileRefused):
        return None
    return text if looks_like_ruleset(text) else None
