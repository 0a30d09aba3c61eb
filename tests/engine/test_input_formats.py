"""Reading input facts is linear in the size of the input for every format, and every
error still names the right line however deep in the file it is.

Timings belong to the bench (``converge bench``, bench/inputs/); these tests prove the
reading linear without a clock: the JSON-array reader counted the lines from the start
of the file again for every fact (100k facts took 275 s against 2 s as JSON Lines), so
they count the characters it scans and check the line numbers it reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, SupportsIndex

import pytest

import converge_rules
from converge_rules.engine import inputs, read_facts
from converge_rules.errors import InputError

RULESET = converge_rules.loads(
    'ruleset r "r"\nfact Quote { sku: str, amount: float, count: int }\n', plugins=False
)
PROGRAM = RULESET.program


def pretty_array(facts: list[dict[str, Any]]) -> str:
    """A JSON array as editors write it: one fact over several lines."""
    return json.dumps([{"Quote": f} for f in facts], indent=2) + "\n"


def quotes(n: int) -> list[dict[str, Any]]:
    return [{"sku": f"S{i}", "amount": i / 4, "count": i} for i in range(n)]


class ScanCounting(str):
    """Text that counts how many characters ``count``/``find``/``index`` scan: what
    reading it costs, without a clock."""

    scanned: int

    def _add(self, start: SupportsIndex | None, end: SupportsIndex | None) -> None:
        size = len(self)
        lo = 0 if start is None else min(max(int(start), 0), size)
        hi = size if end is None else min(max(int(end), 0), size)
        self.scanned = getattr(self, "scanned", 0) + max(hi - lo, 0)

    def count(self, sub: str, start: SupportsIndex | None = None,  # type: ignore[override]
              end: SupportsIndex | None = None) -> int:
        self._add(start, end)
        return str.count(self, sub, start, end)

    def find(self, sub: str, start: SupportsIndex | None = None,  # type: ignore[override]
             end: SupportsIndex | None = None) -> int:
        self._add(start, end)
        return str.find(self, sub, start, end)

    def index(self, sub: str, start: SupportsIndex | None = None,  # type: ignore[override]
              end: SupportsIndex | None = None) -> int:
        self._add(start, end)
        return str.index(self, sub, start, end)


@pytest.mark.parametrize("size", [200, 2_000])
def test_reading_a_json_array_scans_each_character_a_bounded_number_of_times(
    size: int,
) -> None:
    text = ScanCounting(pretty_array(quotes(size)))
    raws = inputs._read_json_array(text, "big.json")
    assert len(raws) == size
    # each fact's line is counted on from the previous one: the whole text once,
    # whatever its size (from the start every time it was size / 2 times the text)
    assert text.scanned <= 2 * len(text), (text.scanned, len(text))
    # and the lines counted that way are the facts' lines (line 1 is the `[`)
    assert [r.line for r in raws[:3]] == [2, 9, 16]
    assert raws[-1].line == 2 + 7 * (size - 1)


def test_a_bad_fact_deep_in_a_big_json_array_names_its_line(tmp_path: Path) -> None:
    facts = quotes(20_000)
    facts[17_500]["amount"] = "cheap"
    path = tmp_path / "big.json"
    text = pretty_array(facts)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_facts(PROGRAM, path)
    expected = text[:text.index('"cheap"')].count("\n") + 1 - 3  # the fact's `{` line
    assert (info.value.line, info.value.message) == (expected, 'Quote.amount must be '
                                                     'float, got "cheap"')


def test_bad_json_deep_in_a_big_array_names_the_line_of_the_error(tmp_path: Path) -> None:
    text = pretty_array(quotes(5_000))
    broken = text.replace('"sku": "S4321"', '"sku": "S4321",,', 1)
    path = tmp_path / "broken.json"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_facts(PROGRAM, path)
    assert info.value.line == broken[:broken.index(",,")].count("\n") + 1
    assert info.value.message.startswith("not valid JSON at column 22:")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_every_format_reads_the_same_facts(tmp_path: Path, fmt: str) -> None:
    facts = quotes(1_000)
    path = tmp_path / f"in.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"Quote": f}) + "\n" for f in facts))
    elif fmt == "json":
        path.write_text(pretty_array(facts))
    else:
        path.write_text("sku,amount,count\n" + "".join(
            f"{f['sku']},{f['amount']},{f['count']}\n" for f in facts))
    spec = f"Quote={path}" if fmt == "csv" else str(path)
    rows = read_facts(PROGRAM, spec).rows
    assert [vals for _, vals in rows] == [(f["sku"], f["amount"], f["count"]) for f in facts]


@pytest.mark.parametrize(("cell", "field"), [
    ("1_0", "count"), ("\u0661\u0660", "count"), ("1_000.5", "amount"),
    ("\u0661.5", "amount"), ("0x10", "count"),
])
def test_a_csv_number_is_written_as_json_writes_it(tmp_path: Path, cell: str,
                                                   field: str) -> None:
    # Found by review: Python's int() and float() read `1_0` as 10 and Arabic-Indic
    # `١٠` as 10, so a CSV input took what the same fact in JSON refuses.
    row = {"sku": "S1", "amount": "1.5", "count": "2", field: cell}
    path = tmp_path / "in.csv"
    path.write_text("sku,amount,count\n" + ",".join(row.values()) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_facts(PROGRAM, f"Quote={path}")
    assert "ASCII digits" in str(info.value)


def test_a_csv_number_may_have_blanks_a_sign_and_an_exponent(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("sku,amount,count\nS1, -1.5e2 , +7 \nS2,.5,-0\n", encoding="utf-8")
    rows = read_facts(PROGRAM, f"Quote={path}").rows
    assert [vals for _, vals in rows] == [("S1", -150.0, 7), ("S2", 0.5, 0)]


CHECKED = converge_rules.loads(
    'ruleset c "c"\nenum Color { red, green }\n'
    "fact P { key sku: str, price: float, color: Color, n: int }\n", plugins=False,
).program


@pytest.mark.parametrize(("csv", "message"), [
    ("sku,price,n,color\nA,1.5,3,red\nC,1,2,blue\n",
     ':3: P.color (column 4) must be Color, got "blue"'),
    ("sku,n,price,color\nB,99999999999999999999999,2,red\n",
     ":2: P.n (column 2) is outside the 64-bit range"),
])
def test_a_csv_value_refused_by_its_type_names_the_column(tmp_path: Path, csv: str,
                                                          message: str) -> None:
    # found (r27): errors from type validation (an enum member, an integer's range)
    # named the file, line and field but not the CSV column, as parse errors do
    path = tmp_path / "in.csv"
    path.write_text(csv, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_facts(CHECKED, f"P={path}")
    assert f"{path}{message}" in str(info.value)
    assert "help: " in str(info.value)


def test_a_csv_header_without_a_required_field_says_so_on_line_1(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("sku,price,n\nA,1.5,3\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_facts(CHECKED, f"P={path}")
    assert str(info.value).startswith(
        f"{path}:1: P is missing the required field `color`: the CSV header has no column "
        "`color`\n  help: add a column `color` (Color) to the header and a cell to every row")
