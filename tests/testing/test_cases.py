"""Table-test fixtures: rows from CSV and JSON Lines files."""

from __future__ import annotations

from pathlib import Path

import pytest

from converge_rules.testing.cases import CaseError, case_id, cell_value, read_fixture


def test_ids() -> None:
    assert case_id("a.cvg", "t") == "a.cvg::t"
    assert case_id("a.cvg", "t", 2) == "a.cvg::t[case 2]"


@pytest.mark.parametrize(("cell", "value"), [
    ("10", 10), ("-3", -3), ("1.5", 1.5), ("1e3", 1000.0), ("true", True),
    ("false", False), ("", None), ("  ", None), ("A1", "A1"), ("web", "web"),
])
def test_cell_values(cell: str, value: object) -> None:
    assert cell_value(cell) == value
    assert type(cell_value(cell)) is type(value)


def test_csv_rows(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text("cost,theirs,sku\n10.0,12,A1\n\n5,5.5,\"B,2\"\n", encoding="utf-8")
    assert read_fixture(path) == [
        {"cost": 10.0, "theirs": 12, "sku": "A1"},
        {"cost": 5, "theirs": 5.5, "sku": "B,2"},
    ]


def test_jsonl_rows(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"cost": 10.0, "tags": ["a", "b"]}\n\n{"cost": 5}\n', encoding="utf-8")
    assert read_fixture(path) == [{"cost": 10.0, "tags": ("a", "b")}, {"cost": 5}]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("c.csv", "cost,bad name\n1,2\n", "column `bad name` is not a variable name"),
    # (was "1 cells", with no fix)
    ("c.csv", "a,b\n1\n", "c.csv:2: 1 cell, but the header has 2 columns"),
    ("c.csv", "a\n1,2\n", "c.csv:2: 2 cells, but the header has 1 column"),
    ("c.jsonl", "{nope\n", "c.jsonl:1: not JSON"),
    ("c.jsonl", "[1, 2]\n", "c.jsonl:1: each line must be a JSON object"),
    # lines ending in CR alone read as one line: the CR is named (was "not JSON (Extra
    # data)", and the checker's warning said the file holds no JSON object)
    ("c.jsonl", '{"a": 1}\r{"a": 2}\r',
     "c.jsonl:1: a carriage return \\(U\\+000D\\) at column 9 does not end the line"),
    ("c.jsonl", '{"a": 1} \r {"a": 2}\n', "c.jsonl:1: a carriage return .* at column 10 "),
    ("c.jsonl", '{"a": 1} {"a": 2}\n', "c.jsonl:1: not JSON \\(Extra data\\)"),
    ("c.txt", "a\n", "must end in .csv or .jsonl"),
])
def test_bad_fixtures(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseError, match=message.replace("[", r"\[")):
        read_fixture(path)


def test_missing_fixture(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="cannot read the cases file"):
        read_fixture(tmp_path / "nope.csv")
