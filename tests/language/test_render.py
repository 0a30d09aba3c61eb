"""The diagnostic renderers, on hand-made diagnostics."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converge_rules.language.diagnostics.core import CodeInfo, Diagnostic, Related, Severity
from converge_rules.language.diagnostics.render import FORMATS, Summary, render, summarize
from converge_rules.language.diagnostics.render_ci import (
    escape_data,
    escape_property,
    render_github,
)
from converge_rules.language.diagnostics.render_human import render_human
from converge_rules.language.diagnostics.render_json import file_uri, render_json, render_sarif
from converge_rules.language.syntax.span import Span

SOURCE = (
    "ruleset pricing\n"
    "fact Price { key sku: str }\n"
    "agent undercut {\n"
    "  when Pricee(sku)\n"
    "  emit Price(sku: sku)\n"
    "}\n"
)
SOURCES = {"pricing.cvg": SOURCE}

UNKNOWN = Diagnostic(
    code="CVG101",
    severity=Severity.ERROR,
    message='unknown fact type "Pricee"',
    span=Span("pricing.cvg", 4, 8, 4, 14),
    help='did you mean "Price"?',
    related=(Related(Span("pricing.cvg", 2, 6, 2, 11), "first declared here"),),
)
WARNING = Diagnostic(
    code="CVG401",
    severity=Severity.WARNING,
    message="Price has no policy",
    span=Span("pricing.cvg", 2, 1, 2, 28),
)
NOTE = Diagnostic(code="CVG999", severity=Severity.NOTE, message="just saying",
                  span=Span("other.cvg", 1, 1, 1, 2))
RUNWIDE = Diagnostic(code="CVG901", severity=Severity.ERROR, message="no files", span=None,
                     help="pass a path")

ALL = [UNKNOWN, WARNING, NOTE, RUNWIDE]

CODES = {
    "CVG101": CodeInfo("CVG101", "unknown-name", Severity.ERROR, "Unknown name",
                       "A name that is not declared.", "wrong", "right"),
}


# -------------------------------------------------------------------------- human


def test_human_shows_header_location_snippet_underline_help_and_note() -> None:
    text = render_human([UNKNOWN], SOURCES, files=["pricing.cvg"])
    assert text == (
        'error[CVG101]: unknown fact type "Pricee"\n'
        " --> pricing.cvg:4:8\n"
        "  |\n"
        "4 |   when Pricee(sku)\n"
        "  |        ^^^^^^\n"
        "  |\n"
        '  = help: did you mean "Price"?\n'
        "note: first declared here\n"
        " --> pricing.cvg:2:6\n"
        "  |\n"
        "2 | fact Price { key sku: str }\n"
        "  |      -----\n"
        "\n"
        "1 error in 1 file\n"
    )


def test_human_has_no_ansi_codes_unless_colour_is_asked_for() -> None:
    plain = render_human(ALL, SOURCES)
    coloured = render_human(ALL, SOURCES, color=True)
    assert "\x1b[" not in plain
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_text_format_is_human_without_colour() -> None:
    assert render("text", ALL, SOURCES, color=True) == render("human", ALL, SOURCES)


def test_human_is_sorted_and_independent_of_input_order() -> None:
    assert render_human(ALL, SOURCES) == render_human(list(reversed(ALL)), SOURCES)
    text = render_human(ALL, SOURCES)
    # No file first, then by file and line.
    assert text.index("CVG901") < text.index("CVG999") < text.index("CVG401")
    assert text.index("CVG401") < text.index("CVG101")


def test_human_without_source_still_gives_the_location() -> None:
    text = render_human([NOTE], {})
    assert "note[CVG999]: just saying\n --> other.cvg:1:1\n" in text
    assert "|" not in text


def test_human_diagnostic_without_span_shows_message_and_help() -> None:
    text = render_human([RUNWIDE], {})
    assert text.startswith("error[CVG901]: no files\n")
    assert "help: pass a path" in text
    assert "-->" not in text


@pytest.mark.parametrize(
    ("diagnostics", "files", "expected"),
    [
        ([], ["a.cvg", "b.cvg"], "no problems in 2 files"),
        ([UNKNOWN, WARNING], ["a.cvg"], "1 error, 1 warning in 1 file"),
        ([UNKNOWN, UNKNOWN, WARNING, NOTE], ["a", "b", "c"],
         "2 errors, 1 warning, 1 note in 3 files"),
    ],
)
def test_summary_line(diagnostics: list[Diagnostic], files: list[str], expected: str) -> None:
    assert render_human(diagnostics, {}, files=files).endswith(expected + "\n")


def test_summary_counts_files_from_sources_and_spans_when_not_given() -> None:
    assert summarize(ALL, SOURCES) == Summary(errors=2, warnings=1, notes=1, files=2)


def test_human_underlines_tabs_and_wide_characters_at_the_right_column() -> None:
    source = "\tx = \"価格\" + y\n"
    y_column = source.index("y") + 1
    diagnostic = Diagnostic("CVG201", Severity.ERROR, "bad y",
                            Span("t.cvg", 1, y_column, 1, y_column + 1))
    text = render_human([diagnostic], {"t.cvg": source})
    shown, underline = [line for line in text.splitlines() if line.startswith(("1 |", "  |"))][1:3]
    assert shown == '1 |     x = "価格" + y'
    # Each of the two CJK characters takes two terminal columns.
    assert underline.index("^") == shown.index("y") + 2


def test_human_error_at_end_of_file_and_zero_width_span_get_one_caret() -> None:
    diagnostic = Diagnostic("CVG001", Severity.ERROR, "unexpected end of file",
                            Span("e.cvg", 2, 1, 2, 1))
    text = render_human([diagnostic], {"e.cvg": "agent a {\n"})
    assert "2 |\n  | ^\n" in text


def test_human_multi_line_span_underlines_each_line_and_elides_long_ones() -> None:
    source = "".join(f"line{i}\n" for i in range(1, 21))
    short = Diagnostic("CVG301", Severity.ERROR, "cycle", Span("m.cvg", 2, 3, 3, 4))
    text = render_human([short], {"m.cvg": source})
    assert "2 | line2\n  |   ^^^\n3 | line3\n  | ^^^\n" in text
    long = Diagnostic("CVG301", Severity.ERROR, "cycle", Span("m.cvg", 1, 1, 20, 6))
    text = render_human([long], {"m.cvg": source})
    assert "...\n" in text
    assert "line10" not in text
    assert "20 | line20" in text


def test_human_escapes_control_characters_from_the_ruleset() -> None:
    diagnostic = Diagnostic("CVG101", Severity.ERROR, "unknown name \x1b[31mX",
                            Span("c.cvg", 1, 1, 1, 2))
    text = render_human([diagnostic], {"c.cvg": "\x1b[2Jboom\n"})
    assert "\x1b" not in text
    assert "\\x1b[31mX" in text


# --------------------------------------------------------------------------- json


def test_json_shape() -> None:
    document = json.loads(render_json(ALL, SOURCES, files=["pricing.cvg", "other.cvg"]))
    assert document["format_version"] == 1
    assert document["summary"] == {"errors": 2, "warnings": 1, "notes": 1, "files": 2}
    first = next(d for d in document["diagnostics"] if d["code"] == "CVG101")
    assert first == {
        "code": "CVG101",
        "severity": "error",
        "message": 'unknown fact type "Pricee"',
        "help": 'did you mean "Price"?',
        "file": "pricing.cvg",
        "line": 4,
        "column": 8,
        "end_line": 4,
        "end_column": 14,
        "related": [{"message": "first declared here", "file": "pricing.cvg", "line": 2,
                     "column": 6, "end_line": 2, "end_column": 11}],
    }
    runwide = next(d for d in document["diagnostics"] if d["code"] == "CVG901")
    assert runwide["file"] is None and runwide["line"] is None


def test_every_format_is_deterministic_and_order_independent() -> None:
    for fmt in FORMATS:
        assert render(fmt, ALL, SOURCES) == render(fmt, list(reversed(ALL)), dict(SOURCES))


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render("xml", ALL, SOURCES)


# -------------------------------------------------------------------------- SARIF


def _check_sarif_structure(log: dict[str, Any]) -> None:
    """The parts of the SARIF 2.1.0 schema that consumers rely on."""
    assert set(log) >= {"$schema", "version", "runs"}
    assert log["version"] == "2.1.0"
    assert "sarif-2.1.0" in log["$schema"]
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert isinstance(driver["name"], str) and driver["name"]
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert isinstance(rule["shortDescription"]["text"], str)
        assert rule["defaultConfiguration"]["level"] in {"none", "note", "warning", "error"}
    for result in run["results"]:
        assert isinstance(result["message"]["text"], str) and result["message"]["text"]
        assert result["level"] in {"none", "note", "warning", "error"}
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        for location in result.get("locations", []) + result.get("relatedLocations", []):
            physical = location["physicalLocation"]
            assert isinstance(physical["artifactLocation"]["uri"], str)
            region = physical["region"]
            for key in ("startLine", "startColumn", "endLine", "endColumn"):
                assert isinstance(region[key], int) and region[key] >= 1
            assert (region["endLine"], region["endColumn"]) >= (
                region["startLine"], region["startColumn"])
        for related in result.get("relatedLocations", []):
            assert isinstance(related["id"], int) and related["id"] >= 0


def test_sarif_structure_rules_and_results() -> None:
    log = json.loads(render_sarif(ALL, SOURCES, codes=CODES))
    _check_sarif_structure(log)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "converge"
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert set(rules) == {"CVG101", "CVG401", "CVG901", "CVG999"}
    assert rules["CVG101"]["name"] == "unknown-name"
    assert rules["CVG101"]["shortDescription"] == {"text": "Unknown name"}
    assert rules["CVG101"]["helpUri"] == "docs/diagnostics.md#cvg101"
    result = next(r for r in run["results"] if r["ruleId"] == "CVG101")
    assert result["level"] == "error"
    assert result["message"]["text"].startswith('unknown fact type "Pricee"')
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "pricing.cvg"},
        "region": {"startLine": 4, "startColumn": 8, "endLine": 4, "endColumn": 14},
    }
    assert result["relatedLocations"][0]["message"] == {"text": "first declared here"}
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"CVG101": "error", "CVG401": "warning", "CVG999": "note",
                      "CVG901": "error"}
    assert "locations" not in next(r for r in run["results"] if r["ruleId"] == "CVG901")


def test_sarif_with_no_findings_is_still_a_valid_log() -> None:
    log = json.loads(render_sarif([], {}, codes=CODES))
    _check_sarif_structure(log)
    assert log["runs"][0]["results"] == []


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("rules/pricing.cvg", "rules/pricing.cvg"),
        ("./pricing.cvg", "pricing.cvg"),
        ("my rules/a#b.cvg", "my%20rules/a%23b.cvg"),
        ("/abs/p.cvg", "file:///abs/p.cvg"),
    ],
)
def test_sarif_file_uris(path: str, uri: str) -> None:
    assert file_uri(path) == uri


# -------------------------------------------------------------------------- JUnit


def test_junit_is_well_formed_with_a_suite_per_file() -> None:
    text = render("junit", ALL, SOURCES, files=["pricing.cvg", "other.cvg", "clean.cvg"])
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert set(suites) == {"pricing.cvg", "other.cvg", "clean.cvg", "converge"}
    pricing = suites["pricing.cvg"]
    assert pricing.get("tests") == "2" and pricing.get("failures") == "1"
    failures = pricing.findall("testcase/failure")
    assert len(failures) == 1
    assert failures[0].get("type") == "CVG101"
    assert failures[0].get("message") == 'unknown fact type "Pricee"'
    assert "pricing.cvg:4:8" in (failures[0].text or "")
    clean = suites["clean.cvg"].findall("testcase")
    assert len(clean) == 1 and clean[0].find("failure") is None
    assert root.get("tests") == "5" and root.get("failures") == "2"


def test_junit_strict_makes_warnings_failures() -> None:
    lenient = ET.fromstring(render("junit", [WARNING], SOURCES))
    strict = ET.fromstring(render("junit", [WARNING], SOURCES, strict=True))
    assert lenient.find(".//failure") is None
    assert "Price has no policy" in (lenient.findtext(".//system-out") or "")
    assert strict.find(".//failure") is not None


def test_junit_survives_characters_xml_cannot_hold() -> None:
    nasty = Diagnostic("CVG001", Severity.ERROR, "bad byte \x00 and <&>",
                       Span("n\x01.cvg", 1, 1, 1, 2))
    root = ET.fromstring(render("junit", [nasty], {}))
    assert "<&>" in (root.find(".//failure").get("message") or "")  # type: ignore[union-attr]


# ------------------------------------------------------------------------- GitHub


def test_github_escaping_rules() -> None:
    assert escape_data("50% off\r\nnext: a,b") == "50%25 off%0D%0Anext: a,b"
    assert escape_property("a:b,c%d\ne") == "a%3Ab%2Cc%25d%0Ae"


def test_github_workflow_commands() -> None:
    lines = render_github(ALL, SOURCES).splitlines()
    assert len(lines) == 4
    assert lines[0] == "::error title=CVG901::no files%0Ahelp: pass a path"
    unknown = next(line for line in lines if "CVG101" in line)
    assert unknown == (
        "::error file=pricing.cvg,line=4,col=8,endLine=4,endColumn=13,title=CVG101::"
        'unknown fact type "Pricee"%0Ahelp: did you mean "Price"?'
        "%0Anote: first declared here (pricing.cvg:2:6)"
    )
    assert any(line.startswith("::warning file=pricing.cvg,") for line in lines)
    assert any(line.startswith("::notice file=other.cvg,") for line in lines)


def test_github_escapes_file_names_and_messages() -> None:
    diagnostic = Diagnostic("CVG101", Severity.ERROR, "100% wrong\nreally",
                            Span("a,b:c.cvg", 1, 1, 3, 2), "first\r\nsecond")
    (line,) = render_github([diagnostic], {}).splitlines()
    # A span over several lines: GitHub takes no columns then. A message is one line
    # whatever it holds (a newline in it may come from a test name); a help may span
    # lines.
    assert line == ("::error file=a%2Cb%3Ac.cvg,line=1,endLine=3,title=CVG101::"
                    "100%25 wrong\\nreally%0Ahelp: first\\r%0Asecond")


# ------------------------------------------------------------------- properties

_positions = st.integers(min_value=0, max_value=12)
_spans = st.builds(Span, st.sampled_from(["a.cvg", "b.cvg", "x,y:z.cvg"]), _positions,
                   _positions, _positions, _positions)
_diagnostics = st.builds(
    Diagnostic,
    code=st.sampled_from(["CVG001", "CVG101", "CVG401"]),
    severity=st.sampled_from(list(Severity)),
    message=st.text(max_size=30),
    span=st.none() | _spans,
    help=st.none() | st.text(max_size=20),
    related=st.lists(st.builds(Related, _spans, st.text(max_size=10)), max_size=2).map(tuple),
)
_sources = st.dictionaries(st.sampled_from(["a.cvg", "b.cvg"]), st.text(max_size=80),
                           max_size=2)


@settings(max_examples=60, deadline=None)
@given(diagnostics=st.lists(_diagnostics, max_size=4), sources=_sources)
def test_every_format_renders_any_diagnostics_without_failing(
    diagnostics: list[Diagnostic], sources: dict[str, str]
) -> None:
    for fmt in FORMATS:
        text = render(fmt, diagnostics, sources, color=True)
        assert text.endswith("\n") or (fmt == "github" and not diagnostics)
    ET.fromstring(render("junit", diagnostics, sources))
    json.loads(render("json", diagnostics, sources))
    assert "\x1b" not in render("text", diagnostics, sources)
    # One command per diagnostic: newlines in the text are all escaped.
    assert render_github(diagnostics, sources).count("\n") == len(diagnostics)


def _unescape(text: str) -> str:
    return (text.replace("%2C", ",").replace("%3A", ":").replace("%0A", "\n")
            .replace("%0D", "\r").replace("%25", "%"))


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_github_escaping_is_reversible_and_leaves_no_separators(text: str) -> None:
    assert _unescape(escape_property(text)) == text
    assert _unescape(escape_data(text)) == text
    assert not set(escape_property(text)) & {",", ":", "\n", "\r"}
    assert not set(escape_data(text)) & {"\n", "\r"}
