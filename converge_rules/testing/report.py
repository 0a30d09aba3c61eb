"""Test reports in the formats people and CI systems read: ``text``, ``json``,
``junit`` (JUnit XML) and ``github`` (GitHub Actions workflow commands).

Every renderer is a pure function of the report, so the same run always gives the same
bytes. Ruleset diagnostics (a ruleset that does not check runs no tests) come first.
The text and github formats end with the line ``N passed, N failed`` (plus
``, N skipped`` when any were skipped).

Test names, expected values and what the run found come from rulesets, input files and
tools: in the text, junit and github formats each is escaped to one line of printable
characters (:func:`converge_rules.text.printable`), so that none can drive a terminal or
start a line of its own (``::error::…`` would be a GitHub Actions command). JSON escapes
them itself.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from converge_rules.jsontext import dumps
from converge_rules.language.diagnostics.render import render
from converge_rules.language.diagnostics.render_ci import escape_data, escape_property
from converge_rules.testing.outcome import Failure, Outcome, TestReport
from converge_rules.text import printable, xml_text

FORMATS = ("text", "json", "junit", "github")


def render_report(fmt: str, report: TestReport, *, verbose: bool = False) -> str:
    """Render ``report`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "text":
        return render_text(report, verbose=verbose)
    if fmt == "json":
        return render_json(report)
    if fmt == "junit":
        return render_junit(report)
    if fmt == "github":
        return render_github(report)
    raise ValueError(f"unknown format {fmt!r}: want one of {', '.join(FORMATS)}")


def render_text(report: TestReport, *, verbose: bool = False) -> str:
    """One line per test (``PASSED``/``FAILED``/``SKIPPED`` and its id), then every
    failure in full, then the summary line."""
    out: list[str] = []
    if report.diagnostics:
        out.append(render("text", report.diagnostics, report.sources).rstrip("\n"))
        out.append("")
    for outcome in report.outcomes:
        if outcome.status == "passed" and not verbose:
            continue
        line = f"{outcome.status.upper()} {printable(outcome.id)}"
        if outcome.status == "skipped" and outcome.reason:
            line += f" ({printable(outcome.reason)})"
        out.append(line)
    failed = [o for o in report.outcomes if o.status == "failed"]
    if failed:
        out.append("")
        for outcome in failed:
            out.append(f"___ {printable(outcome.id)} ___")
            out.append(_shown(outcome.failures))
            out.append("")
    out.append(report.summary())
    return "\n".join(out) + "\n"


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "id": outcome.id,
        "file": outcome.file,
        "name": outcome.name,
        "line": outcome.span.line if outcome.span else None,
        "status": outcome.status,
        "reason": outcome.reason or None,
        "failures": [
            {"message": f.message,
             "location": ({"file": f.span.file, "line": f.span.line,
                           "column": f.span.column} if f.span else None),
             "details": list(f.details)}
            for f in outcome.failures
        ],
    }


def render_json(report: TestReport) -> str:
    """``{"summary": {...}, "tests": [...], "diagnostics": [...]}``, sorted keys."""
    data = {
        "summary": {"passed": report.count("passed"), "failed": report.count("failed"),
                    "skipped": report.count("skipped"), "text": report.summary()},
        "tests": [outcome_json(o) for o in report.outcomes],
        "diagnostics": json.loads(render("json", report.diagnostics, report.sources))
        if report.diagnostics else None,
    }
    return dumps(data, indent=2, sort_keys=True) + "\n"


def _shown(failures: tuple[Failure, ...]) -> str:
    """The failures as :meth:`Outcome.text` gives them, each line made printable: a
    newline inside a message or a detail is shown as ``\\n``, never breaks the line."""
    return "\n".join(printable(line) for f in failures for line in f.lines())


def _xml(text: str) -> str:
    return xml_text(printable(text))


def render_junit(report: TestReport) -> str:
    """JUnit XML: one ``<testsuite>`` per ruleset file, one ``<testcase>`` per test
    (``classname`` the file, ``name`` the test name with its case), failures with the
    message and the full text; ruleset errors as ``<error>`` testcases."""
    root = ET.Element("testsuites", name="converge test")
    by_file: dict[str, list[Outcome]] = {f: [] for f in report.files}
    for outcome in report.outcomes:
        by_file.setdefault(outcome.file, []).append(outcome)
    errors_by_file: dict[str, list[str]] = {}
    for d in report.diagnostics:
        if d.is_error:
            file = d.span.file if d.span else "converge"
            errors_by_file.setdefault(file, []).append(
                f"{d.span}: {d.code} {d.message}" if d.span else f"{d.code} {d.message}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for file in sorted(set(by_file) | set(errors_by_file)):
        outcomes = by_file.get(file, [])
        suite = ET.SubElement(root, "testsuite", name=_xml(file))
        counts = {"tests": len(outcomes), "failures": 0, "errors": 0, "skipped": 0}
        for outcome in outcomes:
            case = ET.SubElement(suite, "testcase", classname=_xml(file),
                                 name=_xml(outcome.id.split("::", 1)[1]))
            if outcome.span is not None:
                case.set("file", _xml(outcome.span.file))
                case.set("line", str(outcome.span.line))
            if outcome.status == "failed":
                counts["failures"] += 1
                failure = ET.SubElement(case, "failure", message=_xml(outcome.message),
                                        type="converge.test")
                failure.text = xml_text(_shown(outcome.failures))
            elif outcome.status == "skipped":
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=_xml(outcome.reason))
        if file in errors_by_file:
            counts["tests"] += 1
            counts["errors"] += 1
            case = ET.SubElement(suite, "testcase", classname=_xml(file), name="ruleset")
            error = ET.SubElement(case, "error", message="the ruleset has errors",
                                  type="converge.check")
            error.text = xml_text("\n".join(printable(e) for e in errors_by_file[file]))
        suite.attrib.update({k: str(v) for k, v in counts.items()})
        for k in totals:
            totals[k] += counts[k]
    root.attrib.update({k: str(v) for k, v in totals.items()})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
        root, encoding="unicode") + "\n"


def render_github(report: TestReport) -> str:
    """Ruleset diagnostics as ``::error`` annotations, one ``::error`` per failure
    (at the failed ``expect`` line), then the summary line."""
    out = []
    if report.diagnostics:
        out.append(render("github", report.diagnostics, report.sources).rstrip("\n"))
    for outcome in report.outcomes:
        if outcome.status != "failed":
            continue
        for failure in outcome.failures:
            span = failure.span or outcome.span
            props = []
            if span is not None:
                props += [("file", span.file), ("line", str(span.line)),
                          ("col", str(span.column))]
            name = printable(outcome.id.split("::", 1)[1])
            props.append(("title", f"converge test: {name}"))
            text = "\n".join(printable(line) for line in [failure.message, *failure.details])
            rendered = ",".join(f"{k}={escape_property(v)}" for k, v in props)
            out.append(f"::error {rendered}::{escape_data(text)}")
    out.append(report.summary())
    return "\n".join(out) + "\n"
