"""The language server: LSP over stdio with pygls, for ``.cvg`` files.

Each open file is checked as a ruleset together with the files it imports (their open,
unsaved text when they are open too) by the checker ``converge check`` runs, with the
installed plugins' tools, functions, resolvers and pruners. Diagnostics are published
on open and save at once, and on change at once too when nothing happened in the
last :data:`DEBOUNCE_SECONDS`; a change that follows another change, or a check, more
quickly than that waits that long for the next one, so a burst of changes (a held key,
an editor sending one change per cursor) is checked once when it stops and never queues
a check per change. An edit re-parses only the items it touched
(:class:`~converge_rules.language.syntax.incremental.IncrementalParser`). When the
server starts, the ``.cvg`` files of the workspace folders are checked too, so their
problems show before they are opened and find-references sees every ruleset.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import inspect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from converge_rules import __version__
from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.checks.checker import check
from converge_rules.language.checks.root import BUDGETS
from converge_rules.language.diagnostics.core import Diagnostic, Related, Severity
from converge_rules.language.loader import decode_source, display_path, load_file
from converge_rules.language.syntax.incremental import IncrementalParser
from converge_rules.language.syntax.span import Span
from converge_rules.lsp.complete import Candidate, Known, complete
from converge_rules.lsp.index import (
    Outline,
    RulesetIndex,
    Symbol,
    build,
    describe,
    outline,
)
from converge_rules.lsp.rename import (
    RenameRefused,
    check_new_name,
    edits,
    no_name_at,
    refusal,
    related,
    texts_after,
    unparsed,
    verify,
)

DEBOUNCE_SECONDS = 0.04
"""How long the server waits for the next change before checking, when a change came
within this time of the last change or check (a key held down repeats every 30-40 ms)."""

WORKSPACE_LIMIT = 500
"""At most this many ``.cvg`` files of the workspace folders are checked at start."""

SEMANTIC_TYPES = ("type", "property", "enumMember", "function", "variable", "method",
                  "namespace")
_SEMANTIC_OF = {"type": 0, "field": 1, "member": 2, "agent": 3, "function": 5,
                "tool": 5, "variable": 4, "budget": 1}

_SEVERITY = {Severity.ERROR: t.DiagnosticSeverity.Error,
             Severity.WARNING: t.DiagnosticSeverity.Warning,
             Severity.NOTE: t.DiagnosticSeverity.Information}
_KIND = {"type": t.CompletionItemKind.Class, "field": t.CompletionItemKind.Field,
         "member": t.CompletionItemKind.EnumMember, "agent": t.CompletionItemKind.Module,
         "tool": t.CompletionItemKind.Method, "function": t.CompletionItemKind.Function,
         "budget": t.CompletionItemKind.Property, "keyword": t.CompletionItemKind.Keyword,
         "variable": t.CompletionItemKind.Variable,
         "resolver": t.CompletionItemKind.Reference,
         "pruner": t.CompletionItemKind.Reference}
_SYMBOL = {"ruleset": t.SymbolKind.Package, "fact": t.SymbolKind.Struct,
           "intent": t.SymbolKind.Interface, "enum": t.SymbolKind.Enum,
           "member": t.SymbolKind.EnumMember, "field": t.SymbolKind.Field,
           "agent": t.SymbolKind.Function, "policy": t.SymbolKind.Object,
           "prune": t.SymbolKind.Object, "root": t.SymbolKind.Namespace,
           "test": t.SymbolKind.Method, "import": t.SymbolKind.File,
           "uses": t.SymbolKind.Module, "invariant": t.SymbolKind.Boolean,
           "gate": t.SymbolKind.Event}
_DID_YOU_MEAN = re.compile(r"did you mean ((?:`[^`]+`(?:, | or )?)+)")


@dataclass
class _Entry:
    """The last check of one ruleset (an entry file and its imports)."""

    path: Path
    checked: CheckedRuleset | None = None
    files: frozenset[Path] = frozenset()  # every file it read
    _index: RulesetIndex | None = None

    @property
    def index(self) -> RulesetIndex | None:
        """The names of the last check, indexed when first asked for: diagnostics are
        published without waiting for it."""
        if self._index is None and self.checked is not None:
            self._index = build(self.checked)
        return self._index


class ConvergeServer(LanguageServer):
    """The server and what it keeps between requests: the last check of every open or
    workspace ruleset, the parser that reuses unchanged items, and the plugins."""

    def __init__(self) -> None:
        super().__init__("converge", __version__,
                         text_document_sync_kind=t.TextDocumentSyncKind.Incremental)
        self.entries: dict[Path, _Entry] = {}
        self.parser = IncrementalParser()
        self.pending: dict[Path, asyncio.Task[None]] = {}
        self.busy_at = float("-inf")  # the loop time of the last change or check
        self.registries: Any = None
        self.checker_kwargs: dict[str, Any] = {}
        self.known = Known()
        self.plugin_problem = ""
        self.formatted: dict[str, tuple[str, list[t.TextEdit] | None]] = {}  # per URI

    # -------------------------------------------------------------- plugins

    def load_plugins(self) -> None:
        """The installed plugins' registries; the built-ins alone (and a message) when
        one fails to load."""
        from converge_rules.cli._common import load_plugins

        try:
            registries = load_plugins()
        except Exception as exc:
            self.plugin_problem = f"converge: plugins not loaded ({exc}); checking " \
                                  "with the built-ins only"
            registries = load_plugins(no_plugins=True)
        self.registries = registries
        try:
            self.checker_kwargs = registries.checker_kwargs()
        except Exception as exc:
            self.plugin_problem = f"converge: a plugin's signatures are invalid ({exc})"
            self.checker_kwargs = {}
        self.known = Known(
            tools=self.checker_kwargs.get("tools", {}),
            tool_docs={n: tool.description for n, tool in registries.tools.items()},
            functions=self.checker_kwargs.get("functions", {}),
            function_docs={n: f.description for n, f in registries.functions.items()},
            resolvers=tuple(sorted(registries.resolvers)),
            pruners=tuple(sorted(registries.pruners)),
        )

    # -------------------------------------------------------------- checking

    def open_texts(self) -> dict[Path, str]:
        out: dict[Path, str] = {}
        for uri, doc in self.workspace.text_documents.items():
            path = _path_of(uri)
            if path is not None:
                out[path] = doc.source
        return out

    def check_path(self, path: Path) -> None:
        """Check the ruleset whose entry is ``path`` and publish its diagnostics."""
        texts = self.open_texts()
        loaded = load_file(path, source=texts.get(path), overlay=texts, parser=self.parser)
        checked = check(loaded, **self.checker_kwargs)
        found = self.findings(checked)
        entry = self.entries.setdefault(path, _Entry(path))
        entry.files = frozenset(loaded.files)
        entry.checked, entry._index = checked, None
        self.publish(entry, found, checked)

    def findings(self, checked: CheckedRuleset) -> list[Diagnostic]:
        """What ``converge check`` reports for ``checked``: the checker's diagnostics,
        and the installed plugins' checks of a ruleset without errors."""
        found = list(checked.diagnostics)
        if self.registries is not None and checked.ok:
            with contextlib.suppress(Exception):  # a plugin's lint bug is not the user's
                found += self.registries.run_checks(checked)
        return found

    def publish(self, entry: _Entry, found: Sequence[Diagnostic],
                checked: CheckedRuleset) -> None:
        """Publish the entry file's diagnostics (an imported file's own problems are
        published when that file is open or in the workspace; a problem in it that
        makes the import fail is reported at the ``import`` line)."""
        paths: dict[str, Path] = {}  # each span's file, resolved once

        def path_of(span: Span) -> Path:
            if span.file not in paths:
                paths[span.file] = _span_path(span)
            return paths[span.file]

        mine = [d for d in found if d.span is None or path_of(d.span) == entry.path]
        for d in found:  # an import cycle closes in another file: shown at the import
            if d.code == "CVG602" and d.span is not None and path_of(d.span) != entry.path:
                here = next((r.span for r in d.related
                             if path_of(r.span) == entry.path), None)
                if here is not None:
                    mine.append(replace(
                        d, span=here, related=(Related(d.span, "the cycle closes here"),
                                               *d.related)))
        doc = self.open_document(entry.path)
        lines = (doc.source if doc else checked.sources.get(display_path(entry.path), ""))
        text_lines = _lines(lines)
        split: dict[str, tuple[list[str], str]] = {}  # each related file's lines and URI
        converted = [self.to_lsp(d, text_lines, checked, split) for d in mine]
        uri = self.uri_of(entry.path)
        self.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
            uri=uri, diagnostics=converted, version=doc.version if doc else None))

    def to_lsp(self, d: Diagnostic, lines: list[str], checked: CheckedRuleset,
               split: dict[str, tuple[list[str], str]] | None = None) -> t.Diagnostic:
        """``d`` as an LSP diagnostic; ``lines`` are its file's. ``split`` keeps the
        lines and URI of the files related places are in, for the next diagnostic (a
        file with a thousand duplicate declarations would otherwise be split and its
        path resolved a thousand times)."""
        span = d.span or Span("", 1, 1, 1, 1)
        related = []
        split = {} if split is None else split
        for r in d.related:
            known = split.get(r.span.file)
            if known is None:
                known = split[r.span.file] = (
                    _lines(checked.sources.get(r.span.file, "")),
                    self.uri_of(_span_path(r.span)))
            source, target = known
            related.append(t.DiagnosticRelatedInformation(
                t.Location(target, _range(r.span, source)), r.message))
        fixes = fixes_of(d, lines)
        return t.Diagnostic(
            range=_range(span, lines), message=d.message + (f"\nhelp: {d.help}" if d.help
                                                             else ""),
            severity=_SEVERITY.get(d.severity, t.DiagnosticSeverity.Error),
            code=d.code, source="converge", related_information=related or None,
            data={"fixes": fixes} if fixes else None)

    def pause_after_change(self, path: Path) -> float:
        """How long to wait before checking ``path`` after a change to it: nothing when
        the change comes on its own (no change or check in the last
        :data:`DEBOUNCE_SECONDS`, none waiting), else :data:`DEBOUNCE_SECONDS`. Measured
        from the end of the last check too: changes that arrived while a check ran are
        read just after it, close together, although they were typed further apart."""
        now = asyncio.get_running_loop().time()
        alone = now - self.busy_at >= DEBOUNCE_SECONDS and path not in self.pending
        self.busy_at = now
        return 0.0 if alone else DEBOUNCE_SECONDS

    def schedule(self, path: Path, delay: float) -> None:
        """Check ``path``'s ruleset, and the rulesets that read it, after ``delay``
        seconds unless another change comes first."""
        old = self.pending.pop(path, None)
        if old is not None:
            old.cancel()
        self.pending[path] = asyncio.get_running_loop().create_task(self._later(path, delay))

    async def _later(self, path: Path, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self.pending.pop(path, None)
        self.safely(self.check_path, path)
        for other in list(self.entries.values()):
            if other.path != path and path in other.files:
                self.safely(self.check_path, other.path)
        self.busy_at = asyncio.get_running_loop().time()

    def safely(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self.window_log_message(t.LogMessageParams(
                t.MessageType.Error, f"converge: internal error: {type(exc).__name__}: {exc}"))

    # -------------------------------------------------------------- lookups

    def index_for(self, path: Path) -> RulesetIndex | None:
        """The index of the ruleset ``path`` belongs to, checked first when a change to
        it is still waiting out its pause (a request sees the text it was made on)."""
        waiting = self.pending.pop(path, None)
        if waiting is not None:
            waiting.cancel()
            self.safely(self.check_path, path)
        entry = self.entries.get(path)
        if entry is not None and entry.index is not None:
            return entry.index
        return next((e.index for e in self.entries.values()
                     if e.index is not None and path in e.files), None)

    def symbol_at(self, uri: str, position: t.Position) -> tuple[RulesetIndex, Symbol,
                                                                   Span] | None:
        path = _path_of(uri)
        if path is None:
            return None
        index = self.index_for(path)
        if index is None:
            return None
        doc = self.workspace.get_text_document(uri)
        lines = _lines(doc.source)
        line = lines[position.line] if position.line < len(lines) else ""
        column = _column(line, position.character)
        found = index.at(display_path(path), position.line + 1, column)
        return None if found is None else (index, found.symbol, found.span)

    def format_edits(self, uri: str, source: str, path: str) -> list[t.TextEdit] | None:
        """The edit that formats ``source`` (none when it is formatted already, ``None``
        when it does not parse: the diagnostics say why). Kept for the text it is for,
        so asking again before the next change does not parse it again (a 50,000-term
        line takes most of a second to parse)."""
        from converge_rules.errors import RulesSyntaxError
        from converge_rules.language.format.formatter import format_source

        last = self.formatted.get(uri)
        if last is not None and last[0] == source:
            return last[1]
        edits: list[t.TextEdit] | None
        try:
            formatted = format_source(source, path)
        except RulesSyntaxError:
            edits = None
        else:
            lines = _lines(source)
            end = t.Position(len(lines) - 1, _utf16(lines[-1], len(lines[-1]) + 1))
            edits = [] if formatted == source else [
                t.TextEdit(t.Range(t.Position(0, 0), end), formatted)]
        self.formatted[uri] = (source, edits)
        return edits

    def open_document(self, path: Path) -> Any:
        """The editor's open document of ``path`` (resolved), or None."""
        for uri, doc in self.workspace.text_documents.items():
            if _path_of(uri) == path:
                return doc
        return None

    def uri_of(self, path: Path) -> str:
        """The URI of ``path`` (resolved) as the editor names it: its open document's
        own URI, else the path's file URI with its characters escaped as editors escape
        them (a space is ``%20``: pygls' ``from_fs_path`` escapes nothing, and
        diagnostics published under it never reached a file in ``my rules/``)."""
        doc = self.open_document(path)
        return str(doc.uri) if doc is not None else path.as_uri()

    def all_indexes(self) -> list[RulesetIndex]:
        return [e.index for e in self.entries.values() if e.index is not None]

    # -------------------------------------------------------------- rename

    def settle(self) -> None:
        """Run the checks still waiting out a change's pause now, and those of the
        rulesets that read the changed files: an edit spanning rulesets is computed on
        the texts the editor has."""
        for path in list(self.pending):
            task = self.pending.pop(path)
            task.cancel()
            self.safely(self.check_path, path)
            for other in list(self.entries.values()):
                if other.path != path and path in other.files:
                    self.safely(self.check_path, other.path)
        # a file no editor has open may have changed on disk without a notice (not
        # every client watches files): edits computed on its old text would land at
        # the wrong places
        open_paths = set(self.open_texts())
        for entry in list(self.entries.values()):
            if entry.checked is not None and any(
                    _file_path(file) not in open_paths and _disk_text(file) != text
                    for file, text in entry.checked.sources.items()):
                self.safely(self.check_path, entry.path)

    def rename_target(self, uri: str, position: t.Position) -> tuple[RulesetIndex, Symbol,
                                                                       Span]:
        """The name at ``position`` that a rename would rename; raises
        :class:`RenameRefused` saying why when there is none or it cannot be."""
        found = self.symbol_at(uri, position)
        if found is None:
            # (not get_text_document: for a document the editor has not open it reads
            # the file, which may not exist)
            doc = self.workspace.text_documents.get(uri)
            lines = _lines(doc.source) if doc is not None else []
            line = lines[position.line] if position.line < len(lines) else ""
            raise RenameRefused(no_name_at(line, _column(line, position.character)))
        why = refusal(found[1], found[0].checked) or unparsed([found[0]])
        if why is not None:
            raise RenameRefused(why)
        return found

    def rename(self, uri: str, position: t.Position, new: str) -> t.WorkspaceEdit:
        """The edit renaming the name at ``position`` to ``new`` in every file of every
        ruleset that declares it where this one does, checked first: raises
        :class:`RenameRefused` when the name cannot be renamed, ``new`` is not valid or
        taken, or a ruleset would fail ``converge check`` afterwards."""
        self.settle()
        here, symbol, _ = self.rename_target(uri, position)
        if new == symbol.name:
            return t.WorkspaceEdit(changes={})
        indexes = related(symbol, here, self.all_indexes())
        why = unparsed(indexes)
        if why is not None:
            raise RenameRefused(why)
        check_new_name(symbol, new, indexes)
        edited = edits(symbol, new, indexes)
        sources: dict[str, str] = {}
        for index in reversed(indexes):  # this ruleset's text of a file wins
            sources.update(index.checked.sources)
        open_docs = {file: self.open_document(_file_path(file)) for file in edited}
        # before the renamed texts go through the editor's parser: the edits must be
        # for the texts the editor has
        for file, doc in open_docs.items():
            if doc is not None and doc.source != sources[file]:
                raise RenameRefused(f"`{file}` changed since it was last checked; rename "
                                    "again")
        after = texts_after(edited, sources)
        overlay = {**self.open_texts(), **{_file_path(f): text for f, text in after.items()}}
        entries = [e for e in self.entries.values() if any(e.index is i for i in indexes)]

        def again(path: Path) -> list[Diagnostic]:
            # the editor's parser: only the renamed items are parsed (a rename adds no
            # line, so no kept item of the last check moves)
            return self.findings(check(load_file(path, source=overlay.get(path),
                                                 overlay=overlay, parser=self.parser),
                                       **self.checker_kwargs))

        verify(symbol, new, [(self.findings(e.checked), functools.partial(again, e.path))
                             for e in entries if e.checked is not None])
        versioned = self.client_capabilities.workspace is not None and bool(
            self.client_capabilities.workspace.workspace_edit is not None
            and self.client_capabilities.workspace.workspace_edit.document_changes)
        changes: dict[str, list[t.TextEdit]] = {}
        document_changes: list[t.TextDocumentEdit] = []
        for file, file_edits in edited.items():
            uri_of = self.uri_of(_file_path(file))
            doc = open_docs[file]
            lines = _lines(sources[file])
            text_edits = [t.TextEdit(_range(e.span, lines), e.text) for e in file_edits]
            changes[uri_of] = text_edits
            document_changes.append(t.TextDocumentEdit(
                t.OptionalVersionedTextDocumentIdentifier(
                    uri_of, doc.version if doc is not None else None), list(text_edits)))
        if versioned:
            return t.WorkspaceEdit(document_changes=list(document_changes))
        return t.WorkspaceEdit(changes=changes)


def _path_of(uri: str) -> Path | None:
    fs = to_fs_path(uri)
    return None if fs is None else Path(fs).resolve()


def _span_path(span: Span) -> Path:
    return _file_path(span.file)


def _disk_text(file: str) -> str | None:
    """The text of a file as spans name it, as the loader reads it (None when it
    cannot be read)."""
    try:
        return decode_source(_file_path(file).read_bytes(), file)[0]
    except OSError:
        return None


def _file_path(file: str) -> Path:
    """The resolved path of a file as spans name it (relative to the working
    directory)."""
    path = Path(file)
    return (path if path.is_absolute() else Path.cwd() / path).resolve()


def _lines(source: str) -> list[str]:
    """The lines of ``source`` as the language counts them (spans' lines), split at LF
    only: not at U+2028, form feed or the other breaks of ``str.splitlines`` (which
    pygls's ``TextDocument.lines`` uses), which LSP clients do not count either."""
    return source.split("\n")


def _offset(source: str, position: t.Position) -> int:
    """The index in ``source`` of LSP ``position`` (a line and a UTF-16 offset)."""
    start = 0
    for _ in range(position.line):
        found = source.find("\n", start)
        if found < 0:
            return len(source)
        start = found + 1
    end = source.find("\n", start)
    line = source[start:] if end < 0 else source[start:end]
    return start + min(_column(line, position.character) - 1, len(line))


def _utf16(line: str, column: int) -> int:
    """The UTF-16 offset of 1-based character ``column`` of ``line``."""
    prefix = line[:max(column - 1, 0)]
    if prefix.isascii():
        return len(prefix) + max(column - 1 - len(line), 0)
    return len(prefix.encode("utf-16-le")) // 2


def _column(line: str, character: int) -> int:
    """The 1-based character column of UTF-16 offset ``character`` of ``line``."""
    if line.isascii():
        return character + 1
    units = 0
    for i, ch in enumerate(line):
        if units >= character:
            return i + 1
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line) + 1


def _range(span: Span, lines: list[str]) -> t.Range:
    def at(line: int, column: int) -> t.Position:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return t.Position(max(line - 1, 0), _utf16(text, column))

    return t.Range(at(span.line, span.column), at(span.end_line, span.end_column))


def fixes_of(d: Diagnostic, lines: list[str]) -> list[dict[str, Any]]:
    """The edits a diagnostic's ``help`` proposes, as quick fixes: each name of a "did
    you mean `x`?" replaces the misspelt name; "remove `import …`" deletes the line; a
    bidirectional control character (CVG011) is deleted."""
    if d.span is None or d.help is None:
        return []
    s = d.span
    if d.code == "CVG011" and s.line == s.end_line and 0 < s.line <= len(lines):
        line = lines[s.line - 1]  # the invisible character: deleted, the text kept
        char = line[s.column - 1:s.end_column - 1]
        if len(char) == 1:
            return [{"title": f"Remove the bidirectional control character U+{ord(char):04X}",
                     "line": s.line - 1, "start": _utf16(line, s.column),
                     "end_line": s.line - 1, "end": _utf16(line, s.end_column), "text": ""}]
        return []
    if d.help.startswith("remove `import ") and s.line == s.end_line:
        return [{"title": d.help[0].upper() + d.help[1:], "line": s.line - 1,
                 "start": 0, "end_line": s.line, "end": 0, "text": ""}]
    m = _DID_YOU_MEAN.search(d.help)
    if m is None or s.line != s.end_line or not 0 < s.line <= len(lines):
        return []
    written = lines[s.line - 1][s.column - 1:s.end_column - 1]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", written):
        return []
    out = []
    for name in re.findall(r"`([^`]+)`", m.group(1)):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            line = lines[s.line - 1]
            out.append({"title": f"Change `{written}` to `{name}`", "line": s.line - 1,
                        "start": _utf16(line, s.column), "end_line": s.line - 1,
                        "end": _utf16(line, s.end_column), "text": name})
    return out


def _location(span: Span, index: RulesetIndex, server: ConvergeServer) -> t.Location:
    path = _span_path(span)
    uri = server.uri_of(path)
    doc = server.workspace.text_documents.get(uri)
    text = doc.source if doc else index.checked.sources.get(span.file, "")
    return t.Location(uri, _range(span, _lines(text)))


def _tool_location(registries: Any, name: str) -> t.Location | None:
    """Where a plugin's tool function is defined, without importing a module the
    plugin names by reference."""
    tool = getattr(registries, "tools", {}).get(name) if registries is not None else None
    if tool is None:
        return None
    fn = tool.fn
    try:
        if isinstance(fn, str):
            module, _, attr = fn.partition(":")
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                return None
            file = Path(spec.origin)
            lines = _lines(file.read_text(encoding="utf-8"))
            at = next((i for i, line in enumerate(lines)
                       if re.match(rf"\s*(async\s+)?def\s+{re.escape(attr)}\b", line)), 0)
        else:
            file = Path(inspect.getsourcefile(fn) or "")
            at = inspect.getsourcelines(fn)[1] - 1
    except (OSError, TypeError, ValueError, ImportError):
        return None
    position = t.Position(at, 0)
    return t.Location(Path(file).resolve().as_uri(), t.Range(position, position))


def _outline_symbols(entries: Iterable[Outline], lines: list[str]) -> list[t.DocumentSymbol]:
    return [t.DocumentSymbol(
        name=o.name, kind=_SYMBOL.get(o.kind, t.SymbolKind.Object),
        range=_range(o.span, lines), selection_range=_range(o.selection, lines),
        detail=o.detail or None,
        children=_outline_symbols(o.children, lines) or None) for o in entries]


def _candidate(c: Candidate, edit_range: t.Range) -> t.CompletionItem:
    return t.CompletionItem(
        label=c.label, kind=_KIND.get(c.kind, t.CompletionItemKind.Text),
        detail=c.detail or None,
        documentation=t.MarkupContent(t.MarkupKind.Markdown, c.documentation)
        if c.documentation else None,
        text_edit=t.TextEdit(edit_range, c.label))


def make_server() -> ConvergeServer:
    """A server with every feature registered."""
    server = ConvergeServer()

    @server.feature(t.INITIALIZED)
    def initialized(ls: ConvergeServer, params: t.InitializedParams) -> None:
        ls.load_plugins()
        if ls.plugin_problem:
            ls.window_show_message(t.ShowMessageParams(t.MessageType.Warning,
                                                       ls.plugin_problem))
        folders = [_path_of(f.uri) for f in (ls.workspace.folders or {}).values()]
        found = 0
        for folder in folders:
            if folder is None or not folder.is_dir() or folder == Path(folder.anchor):
                continue
            for path in sorted(folder.rglob("*.cvg")):
                if found >= WORKSPACE_LIMIT:
                    return
                if any(part.startswith(".") or part == "node_modules"
                       for part in path.relative_to(folder).parts):
                    continue
                found += 1
                ls.safely(ls.check_path, path.resolve())

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: ConvergeServer, params: t.DidOpenTextDocumentParams) -> None:
        path = _path_of(params.text_document.uri)
        if path is not None:
            if ls.registries is None:
                ls.load_plugins()
            ls.schedule(path, 0)

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: ConvergeServer, params: t.DidChangeTextDocumentParams) -> None:
        path = _path_of(params.text_document.uri)
        if path is not None:
            ls.schedule(path, ls.pause_after_change(path))

    @server.feature(t.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: ConvergeServer, params: t.DidSaveTextDocumentParams) -> None:
        path = _path_of(params.text_document.uri)
        if path is not None:
            ls.schedule(path, 0)

    @server.feature(t.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files_changed(ls: ConvergeServer,
                              params: t.DidChangeWatchedFilesParams) -> None:
        """A file changed on disk, not in the editor (a checkout, another tool, a
        missing import created): the rulesets that read it are checked again."""
        for change in params.changes:
            path = _path_of(change.uri)
            if path is None or change.uri in ls.workspace.text_documents:
                continue  # an open file: its text in the editor is what is checked
            if change.type == t.FileChangeType.Deleted or path.suffix != ".cvg":
                if change.type == t.FileChangeType.Deleted and \
                        ls.entries.pop(path, None) is not None:
                    ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
                        uri=change.uri, diagnostics=[]))
                for other in list(ls.entries.values()):
                    if path in other.files:
                        ls.schedule(other.path, 0)
            else:
                ls.schedule(path, 0)

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: ConvergeServer, params: t.DidCloseTextDocumentParams) -> None:
        path = _path_of(params.text_document.uri)
        if path is None:
            return
        ls.formatted.pop(params.text_document.uri, None)
        task = ls.pending.pop(path, None)
        if task is not None:
            task.cancel()
        if path.exists():  # back to what is on disk
            ls.schedule(path, 0)
        else:
            ls.entries.pop(path, None)
            ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
                uri=params.text_document.uri, diagnostics=[]))

    @server.feature(t.TEXT_DOCUMENT_CODE_ACTION, t.CodeActionOptions(
        code_action_kinds=[t.CodeActionKind.QuickFix]))
    def code_action(ls: ConvergeServer, params: t.CodeActionParams) -> list[t.CodeAction]:
        out = []
        for d in params.context.diagnostics:
            data = d.data if isinstance(d.data, dict) else {}
            for fix in data.get("fixes", []):
                edit = t.TextEdit(t.Range(t.Position(fix["line"], fix["start"]),
                                          t.Position(fix["end_line"], fix["end"])),
                                  fix["text"])
                out.append(t.CodeAction(
                    title=fix["title"], kind=t.CodeActionKind.QuickFix, diagnostics=[d],
                    is_preferred=len(data["fixes"]) == 1,
                    edit=t.WorkspaceEdit(changes={params.text_document.uri: [edit]})))
        return out

    @server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(
        trigger_characters=[".", "(", "[", ",", " ", ":"]))
    def completion(ls: ConvergeServer, params: t.CompletionParams) -> t.CompletionList:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        path = _path_of(params.text_document.uri)
        index = ls.index_for(path) if path is not None else None
        if ls.registries is None:
            ls.load_plugins()
        text = doc.source
        offset = _offset(text, params.position)
        found = complete(text, offset, index, ls.known)
        word = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", text[:offset])
        start = params.position
        if word:
            at = offset - len(word.group())
            if text.count("\n", 0, at) == params.position.line:
                line_start = text.rfind("\n", 0, at) + 1
                line_end = text.find("\n", at)
                line = text[line_start:line_end if line_end >= 0 else len(text)]
                start = t.Position(params.position.line, _utf16(line, at - line_start + 1))
        edit_range = t.Range(start, params.position)
        seen: set[str] = set()
        items = []
        for c in found:
            if c.label not in seen:
                seen.add(c.label)
                items.append(_candidate(c, edit_range))
        return t.CompletionList(is_incomplete=False, items=items)

    @server.feature(t.TEXT_DOCUMENT_HOVER)
    def hover(ls: ConvergeServer, params: t.HoverParams) -> t.Hover | None:
        found = ls.symbol_at(params.text_document.uri, params.position)
        if found is None:
            return None
        index, symbol, span = found
        text = describe(index, symbol, tools=ls.known.tools, tool_docs=ls.known.tool_docs,
                        functions={**index.checked.functions, **ls.known.functions},
                        function_docs=_function_docs(ls), budgets=BUDGETS)
        if text is None:
            return None
        doc = ls.workspace.get_text_document(params.text_document.uri)
        return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, text),
                       _range(span, _lines(doc.source)))

    @server.feature(t.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: ConvergeServer, params: t.DefinitionParams) -> list[t.Location]:
        found = ls.symbol_at(params.text_document.uri, params.position)
        if found is None:
            return []
        index, symbol, _ = found
        if symbol.kind == "file":
            start = t.Position(0, 0)
            return [t.Location(ls.uri_of(Path(symbol.name)), t.Range(start, start))]
        if symbol.kind == "tool":
            where = _tool_location(ls.registries, symbol.name)
            return [where] if where else []
        return [_location(s, index, ls) for s in index.declarations(symbol)]

    @server.feature(t.TEXT_DOCUMENT_REFERENCES)
    def references(ls: ConvergeServer, params: t.ReferenceParams) -> list[t.Location]:
        found = ls.symbol_at(params.text_document.uri, params.position)
        if found is None:
            return []
        _, symbol, _ = found
        seen: dict[tuple[str, int, int], t.Location] = {}
        for index in ls.all_indexes():
            for s in index.references(
                    symbol, declarations=params.context.include_declaration):
                loc = _location(s, index, ls)
                seen.setdefault((loc.uri, loc.range.start.line, loc.range.start.character),
                                loc)
        return sorted(seen.values(), key=lambda x: (x.uri, x.range.start.line,
                                                    x.range.start.character))

    @server.feature(t.TEXT_DOCUMENT_PREPARE_RENAME)
    def prepare_rename(ls: ConvergeServer,
                       params: t.PrepareRenameParams) -> t.PrepareRenamePlaceholder:
        """The name a rename would rename; a refusal, as a request error the editor
        shows, when there is none or it is declared outside the ruleset."""
        try:
            _, symbol, span = ls.rename_target(params.text_document.uri, params.position)
        except RenameRefused as exc:
            raise _refused(exc) from None
        doc = ls.workspace.get_text_document(params.text_document.uri)
        return t.PrepareRenamePlaceholder(_range(span, _lines(doc.source)), symbol.name)

    @server.feature(t.TEXT_DOCUMENT_RENAME, t.RenameOptions(prepare_provider=True))
    def rename(ls: ConvergeServer, params: t.RenameParams) -> t.WorkspaceEdit:
        try:
            return ls.rename(params.text_document.uri, params.position, params.new_name)
        except RenameRefused as exc:
            raise _refused(exc) from None

    @server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(ls: ConvergeServer,
                        params: t.DocumentSymbolParams) -> list[t.DocumentSymbol]:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        path = _path_of(params.text_document.uri)
        if path is None:
            return []
        module = ls.parser(doc.source, display_path(path)).module
        return [] if module is None else _outline_symbols(outline(module),
                                                                   _lines(doc.source))

    @server.feature(t.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: ConvergeServer,
                   params: t.DocumentFormattingParams) -> list[t.TextEdit] | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        return ls.format_edits(params.text_document.uri, doc.source, doc.path)

    @server.feature(t.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
                    t.SemanticTokensLegend(token_types=list(SEMANTIC_TYPES),
                                           token_modifiers=["declaration"]))
    def semantic_tokens(ls: ConvergeServer, params: t.SemanticTokensParams) -> t.SemanticTokens:
        path = _path_of(params.text_document.uri)
        index = ls.index_for(path) if path is not None else None
        if index is None or path is None:
            return t.SemanticTokens(data=[])
        doc = ls.workspace.get_text_document(params.text_document.uri)
        lines = _lines(doc.source)
        data: list[int] = []
        last_line = last_start = 0
        for o in index.occurrences.get(display_path(path), []):
            s = o.span
            kind = _SEMANTIC_OF.get(o.symbol.kind)
            if kind is None or s.line != s.end_line or s.line > len(lines):
                continue
            text = lines[s.line - 1]
            start, end = _utf16(text, s.column), _utf16(text, s.end_column)
            line = s.line - 1
            delta_start = start - last_start if line == last_line else start
            if data and line == last_line and delta_start <= 0:
                continue  # tokens may not overlap
            data += [line - last_line, delta_start, end - start, kind, int(o.declaration)]
            last_line, last_start = line, start
        return t.SemanticTokens(data=data)

    return server


BUILTINS_MODULE = "converge_rules.language.builtins"


def _refused(exc: RenameRefused) -> JsonRpcException:
    """A refused rename as the request's error (LSP's RequestFailed): VS Code shows its
    message where the rename was asked for."""
    return JsonRpcException(f"converge: {exc}", code=int(t.LSPErrorCodes.RequestFailed))


def _function_docs(ls: ConvergeServer) -> dict[str, str]:
    """The first paragraph of each built-in's docstring (those written for the language,
    not Python's own ``abs`` or ``len``) and each plugin function's description."""
    from converge_rules.language.builtins import BUILTINS

    docs = {name: (inspect.getdoc(b.implementation) or "").split("\n\n")[0]
            for name, b in BUILTINS.items()
            if getattr(b.implementation, "__module__", "") == BUILTINS_MODULE}
    return {**docs, **ls.known.function_docs}


def serve() -> None:
    """Speak LSP over stdin and stdout until the client says exit."""
    make_server().start_io()
