"""Compiled programs kept on disk between processes, keyed by what they are built from.

Loading a ruleset parses it (lark), checks it, generates each agent's Python and
``compile()``s it: most of a short job's start-up. A process that loads a ruleset it
(or an earlier process) loaded before, unchanged, with the same converge, Python and
plugins, reads the :class:`~converge_rules.program.Program` from here instead.

The invariant, as for the parser cache: **the cache can only make loading faster,
never make it fail or load something else.** An entry is used only when

* its file name is the key: a hash of the entry file's text and resolved path, the
  working directory (spans name files relative to it), ``allow_paths``, the chosen
  pruners, what the plugins tell the checker (tool and function signatures, resolver
  and pruner names), converge's own code (every module's size and modification time,
  and the grammar's) and the Python version — and the key is repeated inside it;
* its header's digest (BLAKE2b) matches its contents (a truncated or overwritten file is not
  read further), and every other file the ruleset read (imports, ``cases`` files) still
  has the hash recorded in it, and every import and ``cases`` path as written still
  resolves to the file it did (a symbolic link pointed at another file is a miss);
* it decodes into exactly the known program classes, helpers, functions and resolvers
  (a name the current registries lack is a miss, never a crash).

Anything else is a miss: the ruleset is loaded as without the cache and the entry
written again. Only rulesets that load without errors are stored, so a hit never hides
a diagnostic; :attr:`Ruleset.checked` (the syntax tree and the warnings) is built by
parsing and checking again on first use, so it is the same as without the cache.

**What is trusted, and why.** The entry holds ``marshal``'d code objects of converge's
own generated agents (which the compiler writes from identifiers and literals it made
itself; rule text never becomes code) and a description of the rest of the program in
plain ``marshal`` data (tuples, lists, dicts, strings, numbers): ``marshal.loads``
builds no other objects and runs nothing, and the description is decoded by a fixed
table of converge's program classes, not by names from the file (no pickle). The code
objects do run when an agent runs, so an entry is trusted as Python trusts its own
``__pycache__``: only a file owned by the current user and writable by no one else is
read, and only after its checksum and key match.

Where: the parser cache's directory (``$CONVERGE_CACHE_DIR``; set and empty turns both
caches off; else ``$XDG_CACHE_HOME/converge_rules`` or ``~/.cache/converge_rules``).
Entries are written atomically (a temporary file in the same directory, flushed,
synced, renamed over) and the directory is kept to :data:`MAX_ENTRIES` entries and
:data:`MAX_BYTES` bytes, the least recently used removed first (a hit touches its entry).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import marshal
import os
import stat
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from converge_rules import __version__
from converge_rules.compiler.runtime import RUNTIME_HELPERS
from converge_rules.datetypes import UTC, date, datetime, timedelta
from converge_rules.deferred_imports import import_deferring
from converge_rules.language.syntax.parser_cache import (
    digest,
    read_regular,
    read_sealed,
    write_sealed,
)
from converge_rules.language.syntax.span import Span
from converge_rules.program import (
    MISSING,
    AgentSpec,
    Budgets,
    CriterionSpec,
    FieldSpec,
    GateSpec,
    IndexSpec,
    InvariantSpec,
    PolicySpec,
    Program,
    PruneSpec,
    RequireSpec,
    TypeSpec,
    ValueType,
)

# linecache imports tokenize (~0.6 ms) to read source files; a hit only puts the
# generated agents' text in its table (see converge_rules.deferred_imports)
import_deferring("linecache", "tokenize")
import linecache  # noqa: E402

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "cache_key", "load", "save"]

FORMAT = 3
"""The entry format; part of the key, so a converge that writes another format never
reads this one."""

MAX_ENTRIES = 200
"""At most this many programs are kept; the least recently used go first."""

MAX_BYTES = 64 * 1024 * 1024
"""At most this many bytes of programs are kept (Waltz's program is about 0.4 MB)."""

_MAGIC = b"converge-program-cache 2 "
_PREFIX = "program-"
_SUFFIX = ".cvgc"
_GENERATED = "converge_rules.compiler.generated"  # __name__ of generated code's globals

# The classes an entry may describe: a fixed table, never a name looked up elsewhere.
_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    Program, TypeSpec, FieldSpec, ValueType, IndexSpec, AgentSpec, PolicySpec,
    CriterionSpec, PruneSpec, RequireSpec, InvariantSpec, GateSpec, Budgets, Span)}


class _Uncacheable(Exception):
    """The program holds something the cache cannot describe (a plugin pruner, a
    constant of an unknown type): it is not stored."""


# ------------------------------------------------------------------------ the key


@functools.cache
def _code_fingerprint() -> str:
    """Converge's own code as the cache sees it: every module's path, size and
    modification time (as Python's bytecode cache checks a source), and the grammar's.
    A changed compiler, checker or grammar is a different key. Once per process."""
    package = Path(__file__).resolve().parents[1]
    parts = [__version__]
    _module_stats(str(package), "", parts)
    for grammar in (package / "grammar" / "converge.lark",
                    package.parent / "grammar" / "converge.lark"):
        with contextlib.suppress(OSError):
            st = grammar.stat()
            parts.append(f"{grammar} {st.st_size} {st.st_mtime_ns}")
    return digest("\n".join(parts).encode("utf-8", "surrogateescape"))


def _module_stats(directory: str, relative: str, parts: list[str]) -> None:
    """``RELATIVE/NAME.py SIZE MTIME_NS`` of every module below ``directory``, into
    ``parts``: a folder's modules by name, then its folders' by name (``__pycache__``
    left out), as ``os.walk`` with sorted names gives them, without its path joins."""
    try:
        with os.scandir(directory) as found:
            entries = sorted(found, key=lambda e: e.name)
    except OSError:  # a folder that cannot be listed: left out, as os.walk does
        return
    folders = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):  # (os.walk does not follow links)
            if entry.name != "__pycache__":
                folders.append(entry)
        elif entry.name.endswith(".py"):
            st = entry.stat()
            parts.append(f"{relative}{entry.name} {st.st_size} {st.st_mtime_ns}")
    for entry in folders:
        _module_stats(entry.path, f"{relative}{entry.name}{os.sep}", parts)


def cache_key(entry_text: bytes, entry: Path, name: str, allow_paths: Sequence[Path],
              pruners: Sequence[str], plugins: str) -> str:
    """The key of the program loaded from the entry file ``entry`` (resolved) given as
    ``name`` with the text ``entry_text``, the resolved ``allow_paths``, the chosen
    ``pruners`` and ``plugins`` (what the registries tell the checker, as text), by
    this converge and Python in the current working directory."""
    parts = (f"converge program cache {FORMAT}", _code_fingerprint(), sys.version,
             sys.implementation.cache_tag or "", os.getcwd(), str(entry), name,
             repr([str(p) for p in allow_paths]), repr(list(pruners)), plugins)
    head = b"".join(part.encode("utf-8", "surrogateescape") + b"\0" for part in parts)
    return digest(head + entry_text)[:40]


def _entry_path(directory: Path, key: str) -> Path:
    return directory / f"{_PREFIX}{key}{_SUFFIX}"


def file_digest(path: Path) -> str | None:
    """The digest (:func:`~converge_rules.language.syntax.parser_cache.digest`) of a
    regular file's bytes, None when it cannot be read."""
    data = read_regular(path)
    return None if data is None else digest(data)


def _trusted(st: os.stat_result) -> bool:
    """Whether an entry with this status may be read: generated code runs, so only a
    file of the current user that no one else can write (POSIX modes)."""
    return not hasattr(os, "geteuid") or (
        st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


# ---------------------------------------------------------------------- encoding
# Every value is plain marshal data. Scalars stand for themselves; everything else is
# a tuple whose first item says what it is:
#   ("T", [items])  tuple          ("L", [items])  list       ("D", [(k, v), ...])  dict
#   ("d", iso) date   ("dt", iso) datetime   ("td", days, seconds, microseconds)
#   ("M",) MISSING    ("C", class name, {field: value})  one of _CLASSES
#   ("F", i) the i-th generated function    ("R", name) the resolver of that name

_SCALARS = (type(None), bool, int, float, str)


class _Encoder:
    def __init__(self, functions: Mapping[str, Callable[..., Any]],
                 resolvers: Mapping[str, Any]) -> None:
        self.function_names = {id(fn): name for name, fn in functions.items()}
        self.resolver_names = {id(r): name for name, r in resolvers.items()}
        self.functions: list[dict[str, Any]] = []
        self.seen: dict[int, int] = {}
        # one object per text: marshal writes a repeated object once (an agent's
        # source is both its spec's and its function's)
        self.texts: dict[str, str] = {}

    def value(self, v: Any) -> Any:
        t = type(v)
        if t is str:
            return self.texts.setdefault(v, v)
        if t in _SCALARS:
            return v
        if t is tuple:
            return ("T", [self.value(x) for x in v])
        if t is list:
            return ("L", [self.value(x) for x in v])
        if t is dict:
            return ("D", [(self.value(k), self.value(x)) for k, x in v.items()])
        if t is datetime and v.tzinfo in (None, UTC):
            return ("dt", v.isoformat())
        if t is date:
            return ("d", v.isoformat())
        if t is timedelta:
            return ("td", v.days, v.seconds, v.microseconds)
        if v is MISSING:
            return ("M",)
        if t is types.FunctionType and v.__globals__.get("__name__") == _GENERATED:
            return ("F", self.function(v))
        if id(v) in self.resolver_names:
            return ("R", self.resolver_names[id(v)])
        if is_dataclass(v) and _CLASSES.get(t.__name__) is t:
            return ("C", t.__name__, {f.name: self.value(getattr(v, f.name))
                                      for f in fields(v)})
        raise _Uncacheable(f"cannot describe a {t.__name__}")

    def function(self, fn: types.FunctionType) -> int:
        """The index of a generated function's record: its code, and what each name
        of its globals is (a runtime helper, a plugin function, a constant)."""
        found = self.seen.get(id(fn))
        if found is not None:
            return found
        glob = fn.__globals__
        names: list[tuple[str, str, Any]] = []
        for k, v in glob.items():
            if k == "__builtins__":
                if v is not builtins:
                    raise _Uncacheable("generated code with other builtins")
            elif k == "__name__" or (k == fn.__name__ and v is fn):
                continue
            elif RUNTIME_HELPERS.get(k, None) is v and k in RUNTIME_HELPERS:
                names.append((k, "h", None))
            elif id(v) in self.function_names:
                names.append((k, "f", self.function_names[id(v)]))
            else:
                names.append((k, "c", self.value(v)))
        filename = fn.__code__.co_filename
        entry: Any = linecache.cache.get(filename)  # (size, mtime, lines, name) from _load
        source = "".join(entry[2]) if entry is not None and len(entry) == 4 else ""
        source = self.texts.setdefault(source, source)
        record = {"code": fn.__code__, "name": fn.__name__, "qualname": fn.__qualname__,
                  "defaults": self.value(fn.__defaults__), "globals": names,
                  "source": source}
        self.functions.append(record)
        self.seen[id(fn)] = len(self.functions) - 1
        return len(self.functions) - 1


class _Decoder:
    def __init__(self, records: list[Any], functions: Mapping[str, Callable[..., Any]],
                 resolvers: Mapping[str, Any]) -> None:
        self.records = records
        self.functions = functions
        self.resolvers = resolvers
        self.built: dict[int, types.FunctionType] = {}

    def value(self, v: Any) -> Any:
        if type(v) in _SCALARS:
            return v
        if type(v) is not tuple or not v or type(v[0]) is not str:
            raise ValueError("not an encoded value")
        tag = v[0]
        if tag == "T":
            return tuple(self.value(x) for x in v[1])
        if tag == "L":
            return [self.value(x) for x in v[1]]
        if tag == "D":
            return {self.value(k): self.value(x) for k, x in v[1]}
        if tag == "C":
            cls = _CLASSES[v[1]]
            return cls(**{k: self.value(x) for k, x in v[2].items()})
        if tag == "F":
            return self.function(v[1])
        if tag == "R":
            return self.resolvers[v[1]]
        if tag == "dt":
            return datetime.fromisoformat(v[1])
        if tag == "d":
            return date.fromisoformat(v[1])
        if tag == "td":
            return timedelta(days=v[1], seconds=v[2], microseconds=v[3])
        if tag == "M":
            return MISSING
        raise ValueError(f"unknown tag {tag!r}")

    def function(self, i: int) -> types.FunctionType:
        """The generated function of record ``i``, built as the compiler's loader
        builds it: the same code, globals, name and pseudo file in :mod:`linecache`."""
        fn = self.built.get(i)
        if fn is not None:
            return fn
        record = self.records[i]
        code = record["code"]
        if type(code) is not types.CodeType:
            raise ValueError("not a code object")
        glob: dict[str, Any] = {}
        for k, kind, payload in record["globals"]:
            glob[k] = (RUNTIME_HELPERS[k] if kind == "h"
                       else self.functions[payload] if kind == "f"
                       else self.value(payload))
        glob["__builtins__"] = builtins
        glob["__name__"] = _GENERATED
        defaults = self.value(record["defaults"])
        fn = types.FunctionType(code, glob, record["name"], defaults)
        fn.__qualname__ = record["qualname"]
        glob[record["name"]] = fn
        source = record["source"]
        if source:
            filename = code.co_filename
            linecache.cache[filename] = (len(source), None, source.splitlines(True),
                                         filename)
        self.built[i] = fn
        return fn


# ---------------------------------------------------------------- load and save


def load(directory: Path, key: str, functions: Mapping[str, Callable[..., Any]],
         resolvers: Mapping[str, Any], texts: dict[Path, bytes] | None = None
         ) -> tuple[Program, tuple[Path, ...]] | None:
    """The program stored under ``key`` and the files it was loaded from, with the
    plugin ``functions`` and ``resolvers`` bound in by name; None when there is no
    sound entry for it (see the module docstring). Never raises. ``texts``, when
    given, receives the bytes of each of those files as read to check them (what the
    program was built from, whatever the files hold later)."""
    path = _entry_path(directory, key)
    payload = read_sealed(path, _MAGIC, _trusted)
    if payload is None:
        return None
    try:
        data = marshal.loads(payload)
        if data["format"] != FORMAT or data["key"] != key:
            return None
        read: dict[Path, bytes] = {}
        for name, recorded in data["files"]:
            text = read_regular(name)
            if text is None:
                if recorded is not None:
                    return None  # an import or a cases file gone since (or a pipe now)
                continue
            if digest(text) != recorded:
                return None  # an import or a cases file changed since
            read[Path(name)] = text
        for written, target in data["links"]:
            if os.path.realpath(written) != target:
                return None  # a symbolic link on the way now points elsewhere
        program = _Decoder(data["functions"], functions, resolvers).value(data["program"])
        if type(program) is not Program:
            return None
        files = tuple(Path(name) for name, _ in data["files"])
    except Exception:  # a foreign or damaged entry: load as without the cache
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: evicted last
    if texts is not None:
        texts.update(read)
    return program, files


def save(directory: Path, key: str, program: Program, files: Sequence[Path],
         functions: Mapping[str, Callable[..., Any]], resolvers: Mapping[str, Any],
         links: Sequence[tuple[Path, Path]] = ()) -> None:
    """Store ``program`` (loaded from ``files``, its imports and ``cases`` paths as
    written resolved as in ``links``) under ``key``, atomically; give up quietly when it
    cannot be described or written, since the cache is a speed-up."""
    try:
        encoder = _Encoder(functions, resolvers)
        described = encoder.value(program)
        data = {"format": FORMAT, "key": key, "program": described,
                "functions": encoder.functions,
                "files": [(str(p), file_digest(p)) for p in files],
                "links": [(str(w), str(t)) for w, t in links]}
        directory.mkdir(parents=True, exist_ok=True)
        write_sealed(_entry_path(directory, key), _MAGIC, marshal.dumps(data), f".{_PREFIX}")
        evict(directory)
    except Exception:  # _Uncacheable, a read-only or full disk: no entry, no failure
        pass


def evict(directory: Path, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES
          ) -> None:
    """Remove the least recently used entries until at most ``max_entries`` of at most
    ``max_bytes`` together remain (and temporary files a crashed writer left an hour
    ago)."""
    import time

    entries = []
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            if path.name.startswith(_PREFIX) and path.name.endswith(_SUFFIX):
                st = path.stat()
                entries.append((st.st_mtime, st.st_size, path))
            elif path.name.startswith(f".{_PREFIX}") and path.name.endswith(".tmp") and \
                    time.time() - path.stat().st_mtime > 3600:
                path.unlink()
    entries.sort(reverse=True)  # most recently used first
    total = 0
    for count, (_, size, path) in enumerate(entries, 1):
        total += size
        if count > max_entries or total > max_bytes:
            with contextlib.suppress(OSError):
                path.unlink()
