"""Load a ruleset: the entry file and, transitively, every file it imports.

Imports are resolved relative to the importing file and confined to the entry file's
folder (and the folders allowed with ``allow_paths``; see :mod:`.access`). Each file is
parsed once, however many files import it; the result lists imports before their
importers, entry file last. Problems with imports (a missing, unreadable or oversized
file, a device, a file outside the allowed folders, a file that is not a ruleset, a
cycle, a file importing itself) are diagnostics, never exceptions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from converge_rules.language.access import (
    FileAccess,
    FileRefused,
    looks_like_ruleset,
    read_bytes,
    resolve,
)
from converge_rules.language.diagnostics.core import Diagnostic, Related, Severity, define
from converge_rules.language.syntax.nodes import Import, Module, Test
from converge_rules.language.syntax.parser import ParseResult, parse
from converge_rules.language.syntax.span import Span

IMPORT_NOT_FOUND = define(
    "CVG601", "import-not-found", Severity.ERROR, "Imported file not found",
    "An `import` names a file that does not exist. Paths are relative to the importing "
    "file.",
    wrong='ruleset main\nimport "lib/facts.cvg"\n',
    right='ruleset main\nimport "facts.cvg"\n',
    extra_files={"facts.cvg": "ruleset facts\nfact Cost { key sku: str, amount: float }\n"},
)
IMPORT_CYCLE = define(
    "CVG602", "import-cycle", Severity.ERROR, "Import cycle",
    "Files import each other in a loop. Move what both need into a third file that "
    "both import.",
    wrong='ruleset main\nimport "a.cvg"\n',
    right='ruleset main\nimport "shared.cvg"\n',
    extra_files={
        "a.cvg": 'ruleset a\nimport "b.cvg"\n',
        "b.cvg": 'ruleset b\nimport "a.cvg"\n',
        "shared.cvg": "ruleset shared\nfact Cost { key sku: str, amount: float }\n",
    },
)
IMPORT_UNREADABLE = define(
    "CVG603", "import-unreadable", Severity.ERROR, "File cannot be read",
    "A ruleset file exists but cannot be read as UTF-8 text: it is a directory, a "
    "device, a FIFO or a socket (only regular files are read; a FIFO is not even "
    "opened), a symbolic link loop, not readable, larger than 10 MiB, or not UTF-8.",
    wrong='ruleset main\nimport "rules.cvg"\n',
    right='ruleset main\nimport "rules.cvg/base.cvg"\n',
    extra_files={"rules.cvg/base.cvg": "ruleset base\n"},
)
IMPORT_SELF = define(
    "CVG604", "import-self", Severity.ERROR, "File imports itself",
    "An `import` names the file it is written in. Remove the line.",
    wrong='ruleset main\nimport "main.cvg"\nfact Cost { key sku: str }\n',
    right="ruleset main\nfact Cost { key sku: str }\n",
)
IMPORT_OUTSIDE = define(
    "CVG605", "import-outside-folder", Severity.ERROR, "Import outside the ruleset's folder",
    "An `import` names a file that resolves (after `..` and symbolic links) outside the "
    "folder of the entry ruleset. A ruleset reads only files below its own folder, so "
    "that checking or testing a ruleset from elsewhere cannot make converge read, or "
    "print, any file on the machine. Move the file below the entry ruleset's folder, or "
    "allow its folder explicitly: `converge check --allow-path DIR` (check, test, run, "
    "compile, graph, explain and replay take it), `allow_paths=[DIR]` in the Python API.",
    wrong='ruleset main\nimport "../shared/facts.cvg"\n',
    right='ruleset main\nimport "shared/facts.cvg"\n',
    extra_files={"shared/facts.cvg": "ruleset facts\nfact Cost { key sku: str }\n"},
)
NOT_A_RULESET = define(
    "CVG606", "not-a-ruleset", Severity.ERROR, "File is not a ruleset",
    "A file given as a ruleset, or imported, does not begin like one (with `ruleset "
    "NAME`, or an item such as `fact`), for instance a CSV or JSON file or a system "
    "file. It is named, but none of its lines are shown: they are someone else's data. "
    "Import `.cvg` rulesets only; table rows go in `cases \"rows.csv\"` inside a test.",
    wrong='ruleset main\nimport "costs.csv"\n',
    right='ruleset main\nimport "costs.cvg"\n',
    extra_files={"costs.csv": "sku,amount\nA1,10.0\n",
                 "costs.cvg": "ruleset costs\nfact Cost { key sku: str, amount: float }\n"},
)
IMPORT_DUPLICATE = define(
    "CVG607", "import-duplicate", Severity.WARNING, "File imported twice",
    "A file imports the same file twice (perhaps written two ways, `facts.cvg` and "
    "`./facts.cvg`). The second import adds nothing: a file is loaded once. Remove it; "
    "the warning points at it and names the line of the first.",
    wrong='ruleset main\nimport "facts.cvg"\nimport "./facts.cvg"\n',
    right='ruleset main\nimport "facts.cvg"\n',
    extra_files={"facts.cvg": "ruleset facts\nfact Cost { key sku: str, amount: float }\n"},
)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Every module of a ruleset and what went wrong loading it.

    ``modules`` lists imports before their importers, the entry file last (absent if it
    could not be read or parsed). ``sources`` maps each file path, as written in spans,
    to its text; ``entry`` is the entry file's path as spans name it. ``access`` holds
    the folders the ruleset may read from (its ``cases`` files are confined to them
    too); ``files`` the resolved path of every file the ruleset names (the entry file,
    every import and every ``cases`` file, whether it could be read or not), entry
    first: what a command must never write over. ``links`` pairs the path of each
    import and ``cases`` file as written (relative to its importer's resolved folder)
    with the path it resolved to: a symbolic link pointed elsewhere later changes what
    the same text loads (the program cache checks these).
    """

    modules: tuple[Module, ...]
    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, str] = field(default_factory=dict)
    entry: str = ""
    access: FileAccess = field(default_factory=lambda: FileAccess((Path.cwd(),)))
    files: tuple[Path, ...] = ()
    links: tuple[tuple[Path, Path], ...] = ()

    @property
    def ok(self) -> bool:
        """True when no diagnostic is an error."""
        return not any(d.is_error for d in self.diagnostics)


def display_path(path: Path) -> str:
    """How a file is named in spans: relative to the working directory when it lies
    below it, otherwise absolute."""
    resolved = path.resolve()
    try:
        rel = os.path.relpath(resolved)
    except ValueError:  # another drive on Windows
        return _printable(str(resolved))
    except FileNotFoundError:  # the working directory was deleted: nothing is below it
        return _printable(str(resolved))
    return _printable(str(resolved) if rel.startswith("..") else rel)


def _printable(name: str) -> str:
    """A file name that can be printed, encoded and written on one line (spans end up
    in messages, reports and comments of generated code): bytes that are not UTF-8
    (which Python keeps as lone surrogates) become U+FFFD, control characters such as a
    newline become ``\\xNN``."""
    if name.isascii() and name.isprintable():
        return name
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" for c in name)


def decode_source(data: bytes, name: str) -> tuple[str | None, Diagnostic | None]:
    """A ruleset file's bytes as text, or None and a CVG603 diagnostic: at the line and
    column of the first byte that is not UTF-8, or saying the file is binary."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        before = data[data.rfind(b"\n", 0, exc.start) + 1:exc.start]
        column = len(before.decode("utf-8", errors="replace")) + 1
        where = Span(name, line, column, line, column + 1)
        if b"\0" in data[:8192]:
            return None, Diagnostic(
                IMPORT_UNREADABLE, Severity.ERROR, f"`{name}` is a binary file, not a ruleset",
                where, "name a .cvg ruleset (a UTF-8 text file)")
        return None, Diagnostic(
            IMPORT_UNREADABLE, Severity.ERROR,
            f"`{name}` is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, "
            f"column {column})",
            where, "save the file as UTF-8 (in most editors: Save with Encoding, UTF-8), or "
                   "convert it: `iconv -f latin1 -t utf-8`")


def load_file(path: str | Path, *, source: str | None = None,
              allow_paths: Iterable[str | os.PathLike[str]] = (),
              overlay: Mapping[Path, str] | None = None,
              parser: Callable[[str, str], ParseResult] | None = None) -> LoadResult:
    """Parse ``path`` and every file it imports, transitively.

    ``source``, when given, is the entry file's text (the file need not exist; imports
    are then resolved relative to ``path``'s directory). Imports must resolve inside the
    entry file's folder or one of ``allow_paths``. Never raises for bad input: missing,
    unreadable, oversized or non-UTF-8 files, devices, files outside the allowed
    folders, files that are not rulesets, import cycles and self-imports are
    diagnostics.

    ``overlay`` maps resolved paths of imported files to their text, read instead of
    the file (an editor's unsaved buffers); ``parser`` parses each file's text, by
    default :func:`~converge_rules.language.syntax.parser.parse` (an editor passes one
    that reuses the items of the last parse that did not change).
    """
    path = Path(path)
    return _Loader(FileAccess.for_entry(path, allow_paths), overlay or {},
                   parser or parse).run(path, source)


class _Loader:
    def __init__(self, access: FileAccess, overlay: Mapping[Path, str],
                 parser: Callable[[str, str], ParseResult]) -> None:
        self.access = access
        self.overlay = overlay
        self.parse = parser
        self.modules: list[Module] = []
        self.diagnostics: list[Diagnostic] = []
        self.sources: dict[str, str] = {}
        self.done: set[Path] = set()
        self.names: dict[Path, str] = {}
        self.files: list[Path] = []
        self.links: dict[Path, Path] = {}
        self.via: dict[Path, Span] = {}  # the import that loaded each imported file

    def run(self, path: Path, source: str | None) -> LoadResult:
        try:
            resolved = resolve(path)
        except FileRefused as exc:  # a symbolic link loop
            name = _printable(str(path))
            self._error(IMPORT_UNREADABLE, Span(name, 1, 1, 1, 1),
                        f"cannot read `{name}`: {exc.reason}", exc.help)
            return self._result(name)
        self.names[resolved] = display_path(path) if resolved.exists() or not path.exists() \
            else _printable(str(path))  # /dev/stdin: not by the pipe it resolves to
        self._named(resolved)
        # The entry file is read by the name given: /dev/stdin resolves to a pipe
        # that cannot be opened again by its resolved name.
        text = source if source is not None else self._read(resolved, None, path)
        if text is not None:
            self._load(resolved, text, [resolved])
        return self._result(self.names[resolved])

    def _result(self, entry: str) -> LoadResult:
        return LoadResult(tuple(self.modules), tuple(self.diagnostics), dict(self.sources),
                          entry, self.access, tuple(self.files),
                          tuple(self.links.items()))

    def _name(self, path: Path) -> str:
        if path not in self.names:
            self.names[path] = display_path(path)
        return self.names[path]

    def _read(self, path: Path, imp: tuple[Import, Span] | None,
              given: Path | None = None) -> str | None:
        name = self._name(path)
        where = imp[1] if imp else Span(name, 1, 1, 1, 1)
        try:
            # The entry file may be a pipe (/dev/stdin); an import is a regular file.
            data = read_bytes(given or path, self.access.max_ruleset_bytes,
                              what="ruleset file", streams=imp is None)
        except FileRefused as exc:
            self._error(IMPORT_UNREADABLE, where, f"cannot read `{name}`: {exc.reason}",
                        exc.help)
            return None
        except FileNotFoundError:
            if imp is None:
                self._error(IMPORT_NOT_FOUND, where, f"ruleset file `{name}` not found",
                            "check the path (it is relative to the working directory)")
            else:
                self._error(IMPORT_NOT_FOUND, where,
                            f"imported file `{imp[0].path}` not found (looked for `{name}`)",
                            "import paths are relative to the importing file; fix the "
                            "path or create the file")
            return None
        except OSError as exc:
            reason = "it is a directory" if path.is_dir() else (exc.strerror or str(exc))
            self._error(IMPORT_UNREADABLE, where, f"cannot read `{name}`: {reason}",
                        "import a readable .cvg file")
            return None
        text, problem = decode_source(data, name)
        if problem is not None:
            if imp is not None:  # reported at the import line, not inside the file
                problem = replace(problem, span=where)
            self.diagnostics.append(problem)
            return None
        assert text is not None
        if not looks_like_ruleset(text):
            # Parsing it would quote its lines in the messages: name it, show nothing.
            what = f"imported file `{imp[0].path}`" if imp is not None else f"`{name}`"
            self._error(NOT_A_RULESET, where,
                        f"{what} is not a ruleset: it does not begin with `ruleset NAME`"
                        + (f" (looked at `{name}`)" if imp is not None else ""),
                        "import .cvg rulesets only; rows of data belong in a test's "
                        '`cases "FILE.csv"`' if imp is not None else
                        "give a .cvg ruleset (its first line is `ruleset NAME`)")
            return None
        return text

    def _load(self, path: Path, text: str, chain: list[Path]) -> None:
        name = self._name(path)
        self.sources[name] = text
        self.done.add(path)
        result = self.parse(text, name)
        self.diagnostics.extend(result.diagnostics)
        module = result.module
        if module is None:
            return
        imported: dict[Path, Import] = {}  # this file's imports, by the file each names
        for item in module.items:
            if isinstance(item, Import):
                self._import(path, item, chain, imported)
            elif isinstance(item, Test) and item.cases is not None and item.cases.file:
                try:  # read by the checker and the test runner, confined as imports are
                    written = path.parent / item.cases.file
                    self.links[written] = resolve(written)
                    self._named(self.links[written])
                except (FileRefused, OSError):
                    continue
        self.modules.append(module)

    def _named(self, path: Path) -> None:
        if path not in self.files:
            self.files.append(path)

    def _import(self, importer: Path, imp: Import, chain: list[Path],
                imported: dict[Path, Import]) -> None:
        try:
            written = importer.parent / imp.path
            target = resolve(written)
            self.links[written] = target
            self._named(target)
            self.access.check(target, imp.path, "an imported file")
        except FileRefused as exc:
            code = IMPORT_OUTSIDE if exc.outside else IMPORT_UNREADABLE
            self._error(code, imp.span, f"cannot import `{imp.path}`: {exc.reason}",
                        exc.help)
            return
        first = imported.setdefault(target, imp)
        if first is not imp:
            line = first.span.line
            self.diagnostics.append(Diagnostic(
                IMPORT_DUPLICATE, Severity.WARNING,
                f"`{self._name(target)}` is already imported on line {line}", imp.span,
                f'remove `import "{imp.path}"`: the file is loaded once',
                (Related(first.span, "first imported here"),)))
            return
        if target == importer:
            self._error(IMPORT_SELF, imp.span, f"`{self._name(importer)}` imports itself",
                        f'remove `import "{imp.path}"`')
            return
        if target in chain:
            loop = [*chain[chain.index(target):], target]
            names = " -> ".join(self._name(p) for p in loop)
            # the imports that lead here from the entry file: an editor checking the
            # entry shows the cycle at its own import line (else no file showed it)
            steps = tuple(Related(self.via[p], f"`{self._name(p)}` is imported here")
                          for p in chain[1:] if p in self.via)
            self._error(IMPORT_CYCLE, imp.span, f"import cycle: {names}",
                        "move what these files share into a file that imports none of "
                        "them, and import that instead", steps)
            return
        if target in self.done:
            return
        text = self.overlay.get(target)
        if text is None:
            text = self._read(target, (imp, imp.span))
        if text is None:
            self.done.add(target)
            return
        self.via[target] = imp.span
        self._load(target, text, [*chain, target])

    def _error(self, code: str, span: Span, message: str, help: str,
               related: tuple[Related, ...] = ()) -> None:
        self.diagnostics.append(Diagnostic(code, Severity.ERROR, message, span, help, related))
