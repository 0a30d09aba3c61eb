"""The LALR parser table, built once per grammar and kept on disk between processes.

Building the parser from ``grammar/converge.lark`` (the LALR analysis) costs several
times a whole ``converge check`` of a small ruleset, and editors run ``converge`` on
every save. So the built parser is saved with ``Lark.save`` to a per-user cache
directory and later processes ``Lark.load`` it.

The invariant: **the cache can only make a command faster, never make it fail or parse
differently.** A file is used only when its name matches the key (a hash of the grammar
text, the build options, the lark, converge and Python versions) and its contents match
the checksum in its header; anything else — no directory, a read-only one, a missing,
truncated or corrupt file, a file another user owns — falls back to building the
parser, and the build is written back only by an atomic rename (temporary file in the
same directory, flushed and synced), so a reader never sees half a file.

Where: ``$CONVERGE_CACHE_DIR`` if set (set and empty turns the cache off), else
``$XDG_CACHE_HOME/converge_rules``, else ``~/.cache/converge_rules``.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from converge_rules import __version__

try:  # the built-in BLAKE2: ``hashlib`` would load OpenSSL first (~2 ms of a start)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import blake2b

__all__ = ["CACHE_DIR_ENV", "cache_dir", "cache_file", "digest", "load_or_build",
           "read_regular", "read_sealed", "write_sealed"]

CACHE_DIR_ENV = "CONVERGE_CACHE_DIR"
"""Overrides the cache directory; set to the empty string, turns the cache off."""

_MAGIC = b"converge-parser-cache 2 "
_PREFIX = "parser-"
_SUFFIX = ".lark-cache"


def digest(data: bytes) -> str:
    """The hash the caches use, in hex: BLAKE2b of 32 bytes, as collision-safe as
    SHA-256 and built in, so that a cache hit does not load OpenSSL for ``hashlib``
    (~2 ms of a start; 0.4 ms for Waltz's 0.45 MB program, OpenSSL's SHA-256 0.24)."""
    return blake2b(data, digest_size=32).hexdigest()


def cache_dir(environ: dict[str, str] | None = None) -> Path | None:
    """The directory the parser cache lives in, or None when caching is off (the
    override is set and empty, or names the home of a user there is none of) or no home
    directory can be found. Not created here."""
    env = os.environ if environ is None else environ
    override = env.get(CACHE_DIR_ENV)
    if override is not None:
        if not override.strip():
            return None
        try:
            return Path(override).expanduser()
        except RuntimeError:  # ``~someone`` with no such user: no cache, no failure
            return None
    xdg = env.get("XDG_CACHE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):  # the XDG spec says to ignore a relative path
        return Path(xdg) / "converge_rules"
    try:
        return Path.home() / ".cache" / "converge_rules"
    except (RuntimeError, KeyError):  # no home directory to be found
        return None


def cache_file(directory: Path, grammar: str, options: str) -> Path:
    """The file in ``directory`` holding the parser built from ``grammar`` with the
    build ``options`` (described as text) by this lark, converge and Python."""
    import lark  # here, not at the top: the program cache asks for cache_dir() alone

    key = "\0".join((_MAGIC.decode("ascii"), grammar, options, lark.__version__,
                     __version__, f"{sys.version_info.major}.{sys.version_info.minor}"))
    return directory / f"{_PREFIX}{digest(key.encode('utf-8'))[:32]}{_SUFFIX}"


def load_or_build(build: Callable[[], Any], grammar: str, options: str,
                  directory: Path | None) -> Any:
    """The parser ``build()`` returns for ``grammar`` and ``options``: loaded from the
    cache in ``directory`` when a sound file for them is there, otherwise built and
    (best effort) saved there for the next process. Never raises because of the cache:
    only ``build()`` itself can raise."""
    if directory is None:
        return build()
    path = cache_file(directory, grammar, options)
    loaded = _load(path)
    if loaded is not None:
        return loaded
    parser = build()
    _save(parser, path)
    return parser


def read_regular(path: str | Path, check: Callable[[os.stat_result], bool] | None = None
                 ) -> bytes | None:
    """The bytes of the regular file ``path``, or None when it cannot be read or is no
    regular file (a pipe put there would block the open or the read for ever, a device
    such as /dev/zero never end) or ``check`` refuses its status (taken from the open
    file, so that it is the one read)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_BINARY", 0))
    except (OSError, ValueError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (check is not None and not check(st)):
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read()
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def read_sealed(path: str | Path, magic: bytes,
                check: Callable[[os.stat_result], bool] | None = None) -> bytes | None:
    """The payload of a file :func:`write_sealed` wrote with ``magic`` at ``path``, or
    None when there is none, ``check`` refuses it (:func:`read_regular`), or it is not
    whole: another header, or a payload whose :func:`digest` is not the one recorded
    (truncated, or written over)."""
    data = read_regular(path, check)
    if data is None:
        return None
    header, newline, payload = data.partition(b"\n")
    header += newline
    if not header.startswith(magic) or not header.endswith(b"\n"):
        return None
    if header[len(magic):-1] != digest(payload).encode("ascii"):
        return None
    return payload


def write_sealed(path: Path, magic: bytes, payload: bytes, temp_prefix: str) -> None:
    """Write ``payload`` to ``path`` after a header (``magic``, the payload's :func:`digest`
    in hex, a newline) that :func:`read_sealed` checks, atomically: a temporary file
    (``temp_prefix``…``.tmp``, mode 0600, in the same directory) flushed, fsynced and
    renamed over ``path``, removed if anything fails. Raises what fails."""
    import tempfile  # here: a cache hit never writes

    seal = digest(payload).encode("ascii")
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(magic + seal + b"\n")
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _mine(st: os.stat_result) -> bool:
    return not hasattr(os, "geteuid") or st.st_uid == os.geteuid()


def _load(path: Path) -> Any:
    """The parser saved in ``path``, or None when there is no sound file to load."""
    payload = read_sealed(path, _MAGIC, _mine)  # unpickling runs code: only our own files
    if payload is None:
        return None
    try:
        import lark

        return lark.Lark.load(io.BytesIO(payload))
    except Exception:  # a file from another build of this module: rebuild instead
        return None


def _save(parser: Any, path: Path) -> None:
    """Write ``parser`` to ``path`` atomically; give up quietly when it cannot be
    written (a read-only directory, a full disk), since the cache is only a speed-up."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        parser.save(buffer)
        write_sealed(path, _MAGIC, buffer.getvalue(), f".{_PREFIX}")
        _remove_stale(path)
    except Exception:  # the cache is only a speed-up: never fail a command for it
        pass


_STALE_AFTER_S = 30 * 24 * 3600


def _remove_stale(current: Path) -> None:
    """Remove the files of other grammars or versions written over a month ago. Not
    sooner: two installs of different versions may share the directory, and each
    would otherwise delete the other's file on every run."""
    import time

    for other in current.parent.glob(f"{_PREFIX}*{_SUFFIX}"):
        if other.name == current.name:
            continue
        with contextlib.suppress(OSError):
            if time.time() - other.stat().st_mtime > _STALE_AFTER_S:
                other.unlink()
