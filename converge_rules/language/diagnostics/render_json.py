"""The machine-readable formats: ``json`` (our own, versioned) and ``sarif`` (SARIF 2.1.0,
for GitHub code scanning and other static-analysis dashboards)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PureWindowsPath
from typing import Any
from urllib.parse import quote

from converge_rules.jsontext import dumps
from converge_rules.language.diagnostics.core import CodeInfo, Diagnostic, Severity, all_codes
from converge_rules.language.diagnostics.render import sorted_diagnostics, summarize
from converge_rules.language.syntax.span import Span

JSON_FORMAT_VERSION = 1
"""Bumped whenever the shape of the ``json`` output changes incompatibly."""

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
DIAGNOSTICS_DOC = "docs/diagnostics.md"
"""Where each rule's ``helpUri`` points (``docs/diagnostics.md#cvg101``)."""


def render_json(
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, str],
    *,
    files: Sequence[str] | None = None,
) -> str:
    """``{"format_version": 1, "diagnostics": [...], "summary": {...}}``, indented, with a
    trailing newline. A diagnostic without a span has ``null`` file and positions."""
    items = sorted_diagnostics(diagnostics)
    summary = summarize(items, sources, files)
    document = {
        "format_version": JSON_FORMAT_VERSION,
        "diagnostics": [_json_diagnostic(d) for d in items],
        "summary": {
            "errors": summary.errors,
            "warnings": summary.warnings,
            "notes": summary.notes,
            "files": summary.files,
        },
    }
    return dumps(document, indent=2) + "\n"


def _json_position(span: Span | None) -> dict[str, Any]:
    return {
        "file": span.file if span else None,
        "line": span.line if span else None,
        "column": span.column if span else None,
        "end_line": span.end_line if span else None,
        "end_column": span.end_column if span else None,
    }


def _json_diagnostic(diagnostic: Diagnostic) -> dict[str, Any]:
    return {
        "code": diagnostic.code,
        "severity": diagnostic.severity.value,
        "message": diagnostic.message,
        "help": diagnostic.help,
        **_json_position(diagnostic.span),
        "related": [
            {"message": related.message, **_json_position(related.span)}
            for related in diagnostic.related
        ],
    }


# --------------------------------------------------------------------------- SARIF

_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def render_sarif(
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, str],
    *,
    help_base: str = DIAGNOSTICS_DOC,
    codes: Mapping[str, CodeInfo] | None = None,
) -> str:
    """A SARIF 2.1.0 log with one run of the ``converge`` tool.

    ``tool.driver.rules`` describes every code the results use (``id`` = the code,
    ``name`` = its kebab-case name, ``helpUri`` = ``{help_base}#cvgNNN``); ``codes``
    defaults to every registered code. Columns count Unicode code points and
    ``endColumn`` is exclusive, as our spans are.
    """
    from converge_rules import __version__

    items = sorted_diagnostics(diagnostics)
    known = all_codes() if codes is None else codes
    used = sorted({d.code for d in items})
    rule_index = {code: i for i, code in enumerate(used)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "converge",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [_sarif_rule(code, known.get(code), items, help_base)
                          for code in used],
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": [_sarif_result(d, rule_index[d.code]) for d in items],
    }
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return dumps(log, indent=2) + "\n"


def _sarif_rule(
    code: str, info: CodeInfo | None, items: Sequence[Diagnostic], help_base: str
) -> dict[str, Any]:
    if info is None:  # a code a plugin reports without defining it
        first = next(d for d in items if d.code == code)
        name, title, explanation, severity = code.lower(), first.message, first.message, (
            first.severity)
    else:
        name, title, explanation, severity = (info.name, info.title, info.explanation,
                                              info.severity)
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": title},
        "fullDescription": {"text": explanation},
        "helpUri": f"{help_base}#{code.lower()}",
        "help": {"text": explanation},
        "defaultConfiguration": {"level": _SARIF_LEVEL[severity]},
    }


def _sarif_result(diagnostic: Diagnostic, index: int) -> dict[str, Any]:
    text = diagnostic.message
    if diagnostic.help:
        text += f"\nhelp: {diagnostic.help}"
    result: dict[str, Any] = {
        "ruleId": diagnostic.code,
        "ruleIndex": index,
        "level": _SARIF_LEVEL[diagnostic.severity],
        "message": {"text": text},
    }
    if diagnostic.span is not None:
        result["locations"] = [{"physicalLocation": _physical_location(diagnostic.span)}]
    if diagnostic.related:
        result["relatedLocations"] = [
            {
                "id": i,
                "physicalLocation": _physical_location(related.span),
                "message": {"text": related.message},
            }
            for i, related in enumerate(diagnostic.related)
        ]
    return result


def _physical_location(span: Span) -> dict[str, Any]:
    return {
        "artifactLocation": {"uri": file_uri(span.file)},
        "region": {
            "startLine": max(span.line, 1),
            "startColumn": max(span.column, 1),
            "endLine": max(span.end_line, span.line, 1),
            "endColumn": max(span.end_column, 1),
        },
    }


def file_uri(path: str) -> str:
    """A SARIF artifact URI for ``path``: an absolute path becomes a ``file://`` URI, a
    relative one a relative URI with forward slashes (code-scanning tools resolve it
    against the repository root). Characters that are not URI-safe are percent-encoded."""
    posix = path.replace(os.sep, "/") if os.sep != "/" else path
    if os.name == "nt" and PureWindowsPath(path).is_absolute():  # pragma: no cover
        return "file:///" + quote(posix, safe="/:")
    if posix.startswith("/"):
        return "file://" + quote(posix, safe="/")
    return quote(posix, safe="/").removeprefix("./")
