"""The CI formats: ``junit`` (JUnit XML, for test-report dashboards) and ``github``
(GitHub Actions workflow commands, which annotate the pull-request diff)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence

from converge_rules.language.diagnostics.core import Diagnostic, Severity
from converge_rules.language.diagnostics.render import checked_files, sorted_diagnostics
from converge_rules.language.syntax.span import Span
from converge_rules.text import printable, xml_text

RUN_SUITE = "converge"
"""The JUnit suite that holds diagnostics about the whole run (no file)."""


# --------------------------------------------------------------------------- JUnit


def render_junit(
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, str],
    *,
    files: Sequence[str] | None = None,
    strict: bool = False,
) -> str:
    """JUnit XML: one ``<testsuite>`` per file, one ``<testcase>`` per diagnostic (a
    ``<failure>`` for an error, and for a warning when ``strict``; other findings pass
    and carry their text in ``<system-out>``), and one passing ``check`` testcase for a
    file with no findings. ``files`` as in
    :func:`~converge_rules.language.diagnostics.render.checked_files`."""
    items = sorted_diagnostics(diagnostics)
    by_file: dict[str, list[Diagnostic]] = {
        name: [] for name in checked_files(items, sources, files)
    }
    for diagnostic in items:
        name = diagnostic.span.file if diagnostic.span else RUN_SUITE
        by_file.setdefault(name, []).append(diagnostic)

    root = ET.Element("testsuites", name="converge check")
    total_tests = total_failures = 0
    for name, found in by_file.items():
        suite = ET.SubElement(root, "testsuite", name=xml_text(name))
        failures = 0
        if not found:
            ET.SubElement(suite, "testcase", classname=xml_text(name), name="check")
        for diagnostic in found:
            failed = diagnostic.is_error or (
                strict and diagnostic.severity is Severity.WARNING)
            failures += failed
            _testcase(suite, name, diagnostic, failed)
        tests = max(len(found), 1)
        suite.attrib.update(tests=str(tests), failures=str(failures), errors="0",
                            skipped="0")
        total_tests += tests
        total_failures += failures
    root.attrib.update(tests=str(total_tests), failures=str(total_failures), errors="0")
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _testcase(suite: ET.Element, file: str, diagnostic: Diagnostic, failed: bool) -> None:
    where = f"{diagnostic.span.line}:{diagnostic.span.column}" if diagnostic.span else "run"
    case = ET.SubElement(suite, "testcase", classname=xml_text(file),
                         name=f"{diagnostic.code} at {where}")
    text = xml_text(_plain(diagnostic))
    if failed:
        failure = ET.SubElement(case, "failure",
                                message=xml_text(printable(diagnostic.message)),
                                type=diagnostic.code)
        failure.text = text
    else:
        ET.SubElement(case, "system-out").text = text


def _plain(diagnostic: Diagnostic) -> str:
    where = f"{diagnostic.span}: " if diagnostic.span else ""
    return f"{where}{diagnostic.severity.value}[{diagnostic.code}]: " + _plain_message(diagnostic)


# -------------------------------------------------------------------------- GitHub

_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning",
                   Severity.NOTE: "notice"}


def render_github(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    """One workflow command per diagnostic, e.g.
    ``::error file=a.cvg,line=3,col=5,endLine=3,endColumn=10,title=CVG101::message``.

    The message carries the help and related notes on further lines (escaped as
    ``%0A``). GitHub only accepts columns for a span on one line, so ``col`` and
    ``endColumn`` (inclusive) are sent only then.
    """
    out = []
    for diagnostic in sorted_diagnostics(diagnostics):
        props: list[tuple[str, str]] = []
        if diagnostic.span is not None:
            props.extend(_github_position(diagnostic.span))
        props.append(("title", diagnostic.code))
        text = _plain_message(diagnostic)
        rendered = ",".join(f"{key}={escape_property(value)}" for key, value in props)
        out.append(f"::{_GITHUB_COMMAND[diagnostic.severity]} {rendered}::"
                   f"{escape_data(text)}\n")
    return "".join(out)


def _github_position(span: Span) -> list[tuple[str, str]]:
    props = [("file", span.file), ("line", str(span.line))]
    if span.end_line == span.line:
        props += [("col", str(span.column)),
                  ("endLine", str(span.end_line)),
                  ("endColumn", str(max(span.column, span.end_column - 1)))]
    else:
        props.append(("endLine", str(span.end_line)))
    return props


def _plain_message(diagnostic: Diagnostic) -> str:
    """The message, help and notes on lines of their own, control characters escaped:
    the message and each note are one line whatever they hold (a test name, a value),
    only the help may span lines. (A GitHub command then escapes the newlines between
    them, see :func:`escape_data`.)"""
    lines = [printable(diagnostic.message)]
    if diagnostic.help:
        lines.append("help: " + printable(diagnostic.help, keep="\n"))
    lines.extend(f"note: {printable(r.message)} ({printable(str(r.span))})"
                 for r in diagnostic.related)
    return "\n".join(lines)


def escape_data(text: str) -> str:
    """Escape a workflow command's message: ``%``, ``\\r`` and ``\\n``."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value: as :func:`escape_data`, plus ``:``
    and ``,``, which would otherwise end the value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
