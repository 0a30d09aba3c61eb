"""Test names, expected values and run values are shown escaped in every report of
``converge test`` (and in ``converge check`` and ``converge explain``): a newline in a
name cannot start a line of its own (``::error::…`` would be a GitHub Actions command,
which the runner recognises after leading blanks too) and an escape sequence cannot
reach the terminal (``\\x1b[2J`` clears it)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main

FORGED = "x\n::error::forged"

RULESET = (
    "ruleset r\n"
    "fact Note { key id: str, text: str }\n"
    'test "x\\n::error::forged" {\n'
    '  given Note(id: "a", text: "b")\n'
    '  expect Note(id: "a", text: "c")\n}\n'
    'test "clears" {\n'
    '  given Note(id: "a", text: "b")\n'
    '  expect Note(id: "a", text: "\x1b[2J")\n}\n'
    'test "rows" {\n'
    '  cases "rows.jsonl"\n'
    '  given Note(id: id, text: "b")\n'
    "  expect Note(id: id, text: text)\n}\n"
)
ROWS = '{"id": "a\\u001b[31m", "text": "\\u009b2J\\r\\n::error::row"}\n'


@pytest.fixture(autouse=True)
def _files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.cvg").write_text(RULESET, encoding="utf-8")
    Path("rows.jsonl").write_text(ROWS, encoding="utf-8")


def converge(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_nothing_forged(out: str) -> None:
    """No control character but the newlines ending lines, and no line of the reader's
    choosing."""
    assert not [c for c in out if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
    assert not [line for line in out.splitlines() if line.lstrip().startswith("::error::")]


@pytest.mark.parametrize("fmt", ["text", "github", "junit"])
def test_every_test_report_escapes_names_and_values(fmt: str) -> None:
    result = converge("test", "r.cvg", "--format", fmt)
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert_nothing_forged(out)
    assert "\\x1b[2J" in out  # the expected value, as written


def test_the_text_report_shows_each_failing_test_on_one_line() -> None:
    out = converge("test", "r.cvg").stdout
    assert "FAILED r.cvg::x\\n::error::forged\n" in out
    assert "___ r.cvg::x\\n::error::forged ___\n" in out
    assert out.rstrip("\n").endswith("0 passed, 3 failed")


def test_the_github_report_has_one_command_per_failure() -> None:
    lines = converge("test", "r.cvg", "--format", "github").stdout.splitlines()
    assert len(lines) == 4 and lines[-1] == "0 passed, 3 failed"
    assert all(line.startswith("::error file=r.cvg,") for line in lines[:3])
    assert "title=converge test%3A x\\n%3A%3Aerror%3A%3Aforged::" in lines[0]


def test_the_junit_report_is_xml_with_one_line_names() -> None:
    root = ET.fromstring(converge("test", "r.cvg", "--format", "junit").stdout)
    names = [case.get("name") for case in root.iter("testcase")]
    assert names == ["x\\n::error::forged", "clears", "rows[case 1]"]


def test_the_json_report_keeps_the_exact_text() -> None:
    data = json.loads(converge("test", "r.cvg", "--format", "json").stdout)
    assert [t["name"] for t in data["tests"]] == [FORGED, "clears", "rows"]


@pytest.mark.parametrize("fmt", ["human", "text", "github", "junit"])
def test_check_reports_escape_test_names(fmt: str) -> None:
    Path("dup.cvg").write_text(
        "ruleset r\n" + 'test "x\\n::error::forged" {\n  expect status converged\n}\n' * 2,
        encoding="utf-8")
    result = converge("check", "dup.cvg", "--format", fmt, "--color", "never")
    assert result.exit_code == 1, result.output
    assert "CVG704" in result.stdout
    assert_nothing_forged(result.stdout)
    assert "second test named" in result.stdout and "x\\n" in result.stdout


def test_explain_escapes_the_pattern_and_the_values() -> None:
    Path("in.jsonl").write_text('{"Note": {"id": "a", "text": "\\u001b[2J\\n::error::x"}}\n',
                                encoding="utf-8")
    found = converge("explain", "-r", "r.cvg", "--facts", "in.jsonl", 'Note(id: "a")')
    assert found.exit_code == 0, found.output
    assert_nothing_forged(found.stdout)
    missing = converge("explain", "-r", "r.cvg", "--facts", "in.jsonl",
                       "--why-not", 'Note(text: "\x1b[2J")')
    assert_nothing_forged(missing.stdout)
    assert "\\x1b[2J" in missing.stdout


def test_printable_escapes_every_control_character_but_those_kept() -> None:
    from converge_rules.text import printable, xml_text

    assert printable("plain text, ünïcödé") == "plain text, ünïcödé"
    assert printable("a\nb\tc\rd\x1b[2J\x07\x7f\x9b") == "a\\nb\\tc\\rd\\x1b[2J\\x07\\x7f\\x9b"
    assert printable("a\nb\tc\x1b", keep="\n\t") == "a\nb\tc\\x1b"
    assert xml_text("a\x1b\x00b\nc\ud800") == "a\\x1b\\x00b\nc\\xd800"
