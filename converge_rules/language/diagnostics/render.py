"""Diagnostic renderers: one list of diagnostics, many output formats.

Every renderer is a pure function of the diagnostics and the source texts (``file path
as used in spans → text``) and returns a string; the same input always gives the same
bytes. Diagnostics are rendered in :meth:`Diagnostic.sort_key` order whatever order they
arrive in.

Formats: ``human`` (rustc-like, optionally coloured), ``text`` (``human`` without
colour), ``json``, ``sarif`` (SARIF 2.1.0), ``junit`` (JUnit XML) and ``github``
(GitHub Actions workflow commands). :func:`render` picks one by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from converge_rules.language.diagnostics.core import Diagnostic, Severity

FORMATS: tuple[str, ...] = ("human", "text", "json", "sarif", "junit", "github")
"""The format names :func:`render` accepts, in the order ``--help`` lists them."""


@dataclass(frozen=True, slots=True)
class Summary:
    """How many diagnostics of each severity were found in how many files."""

    errors: int
    warnings: int
    notes: int
    files: int

    def text(self) -> str:
        """``2 errors, 1 warning in 3 files``, or ``no problems in 3 files``."""
        parts = [
            _plural(n, word)
            for n, word in ((self.errors, "error"), (self.warnings, "warning"),
                            (self.notes, "note"))
            if n
        ]
        found = ", ".join(parts) if parts else "no problems"
        return f"{found} in {_plural(self.files, 'file')}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def sorted_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics in a stable order: file, line, column, code, message."""
    return sorted(diagnostics, key=Diagnostic.sort_key)


def checked_files(
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, str],
    files: Sequence[str] | None,
) -> list[str]:
    """The files a report covers: ``files`` when given, else every file that has a
    source text or a diagnostic, sorted."""
    if files is not None:
        return list(dict.fromkeys(files))
    found = set(sources)
    for diagnostic in diagnostics:
        if diagnostic.span is not None:
            found.add(diagnostic.span.file)
    return sorted(found)


def summarize(
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, str],
    files: Sequence[str] | None = None,
) -> Summary:
    """Count diagnostics by severity; ``files`` as in :func:`checked_files`."""
    diagnostics = list(diagnostics)
    counts = {severity: 0 for severity in Severity}
    for diagnostic in diagnostics:
        counts[diagnostic.severity] += 1
    return Summary(
        errors=counts[Severity.ERROR],
        warnings=counts[Severity.WARNING],
        notes=counts[Severity.NOTE],
        files=len(checked_files(diagnostics, sources, files)),
    )


def render(
    fmt: str,
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, str] | None = None,
    *,
    files: Sequence[str] | None = None,
    color: bool = False,
    strict: bool = False,
) -> str:
    """Render ``diagnostics`` in format ``fmt`` (one of :data:`FORMATS`).

    ``sources`` maps a file name, as the diagnostics' spans give it, to that file's
    text: the source snippets under each diagnostic are cut from it. A file it leaves
    out, and every file when it is None, is rendered without a snippet (files are never
    read here: a diagnostic may name a file that must not be shown, CVG606).
    ``files`` lists
    the files that were checked (clean ones included) for summaries and JUnit suites;
    ``color`` applies to ``human`` only; ``strict`` makes warnings count as JUnit
    failures, as ``converge check --strict`` makes them fail the run.
    """
    # Each renderer is imported only for its format: `converge check` runs on every save
    # in editors, and the JSON and XML libraries are start-up time the human format
    # never uses.
    items = list(diagnostics)
    sources = {} if sources is None else sources
    if fmt in ("human", "text"):
        from converge_rules.language.diagnostics import render_human

        return render_human.render_human(items, sources, files=files,
                                         color=color and fmt == "human")
    if fmt in ("json", "sarif"):
        from converge_rules.language.diagnostics import render_json

        if fmt == "json":
            return render_json.render_json(items, sources, files=files)
        return render_json.render_sarif(items, sources)
    if fmt in ("junit", "github"):
        from converge_rules.language.diagnostics import render_ci

        if fmt == "junit":
            return render_ci.render_junit(items, sources, files=files, strict=strict)
        return render_ci.render_github(items, sources)
    raise ValueError(f"unknown format {fmt!r}: want one of {', '.join(FORMATS)}")
