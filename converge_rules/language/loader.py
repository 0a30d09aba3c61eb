"""Load a ruleset: the entry file and, transitively, every file it imports.

Imports are resolved relative to the importing file. Each file is parsed once, however
many files import it; the result lists imports before their importers, entry file last.
Problems with imports (a missing or unreadable file, a cycle, a file importing itself)
are diagnostics, never exceptions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from converge_rules.language.diagnostics.core import Diagnostic, Related, Severity, define
from converge_rules.language.syntax.nodes import Import, Module
from converge_rules.language.syntax.parser import parse
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
    "A ruleset file exists but cannot be read as UTF-8 text (it is a directory, it is "
    "not readable, or it is not UTF-8).",
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


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Every module of a ruleset and what went wrong loading it.

    ``modules`` lists imports before their importers, the entry file last (absent if it
    could not be read or parsed). ``sources`` maps each file path, as written in spans,
    to its text; ``entry`` is the entry file's path as spans name it.
    """

    modules: tuple[Module, ...]
    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, str] = field(default_factory=dict)
    entry: str = ""

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


def load_file(path: str | Path, *, source: str | None = None) -> LoadResult:
    """Parse ``path`` and every file it imports, transitively.

    ``source``, when given, is the entry file's text (the file need not exist; imports
    are then resolved relative to ``path``'s directory). Never raises for bad input:
    missing, unreadable or non-UTF-8 files, import cycles and self-imports are
    diagnostics.
    """
    return _Loader().run(Path(path), source)


class _Loader:
    def __init__(self) -> None:
        self.modules: list[Module] = []
        self.diagnostics: list[Diagnostic] = []
        self.sources: dict[str, str] = {}
        self.done: set[Path] = set()
        self.names: dict[Path, str] = {}

    def run(self, path: Path, source: str | None) -> LoadResult:
        resolved = path.resolve()
        self.names[resolved] = display_path(path) if resolved.exists() or not path.exists() \
            else _printable(str(path))  # /dev/stdin: not by the pipe it resolves to
        # The entry file is read by the name given: /dev/stdin resolves to a pipe
        # that cannot be opened again by its resolved name.
        text = source if source is not None else self._read(resolved, None, path)
        if text is not None:
            self._load(resolved, text, [resolved])
        return LoadResult(tuple(self.modules), tuple(self.diagnostics), dict(self.sources),
                          self.names[resolved])

    def _name(self, path: Path) -> str:
        if path not in self.names:
            self.names[path] = display_path(path)
        return self.names[path]

    def _read(self, path: Path, imp: tuple[Import, Span] | None,
              given: Path | None = None) -> str | None:
        name = self._name(path)
        where = imp[1] if imp else Span(name, 1, 1, 1, 1)
        try:
            data = (given or path).read_bytes()
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
        return text

    def _load(self, path: Path, text: str, chain: list[Path]) -> None:
        name = self._name(path)
        self.sources[name] = text
        self.done.add(path)
        result = parse(text, name)
        self.diagnostics.extend(result.diagnostics)
        module = result.module
        if module is None:
            return
        for item in module.items:
            if isinstance(item, Import):
                self._import(path, item, chain)
        self.modules.append(module)

    def _import(self, importer: Path, imp: Import, chain: list[Path]) -> None:
        target = (importer.parent / imp.path).resolve()
        if target == importer:
            self._error(IMPORT_SELF, imp.span, f"`{self._name(importer)}` imports itself",
                        f'remove `import "{imp.path}"`')
            return
        if target in chain:
            loop = [*chain[chain.index(target):], target]
            names = " -> ".join(self._name(p) for p in loop)
            self._error(IMPORT_CYCLE, imp.span, f"import cycle: {names}",
                        "move what these files share into a file that imports none of "
                        "them, and import that instead")
            return
        if target in self.done:
            return
        text = self._read(target, (imp, imp.span))
        if text is None:
            self.done.add(target)
            return
        self._load(target, text, [*chain, target])

    def _error(self, code: str, span: Span, message: str, help: str,
               related: tuple[Related, ...] = ()) -> None:
        self.diagnostics.append(Diagnostic(code, Severity.ERROR, message, span, help, related))
