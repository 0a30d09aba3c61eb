"""Values read from a ``cases`` fixture are checked against how the test uses them
before the row runs: a value that does not fit fails that case, naming the row and the
column — never a crash, a hang or memory exhausted in the test interpreter.

Found by an adversarial pass: ``s * k`` with ``s = "ab"`` and ``k = 3000000000`` from a
CSV fixture made the interpreter build a 6 GB string. That command runs in a child
process with a memory limit and a timeout, so this test fails rather than takes the
machine down should the check break.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main

CONSOLE_SCRIPT = Path(sys.executable).with_name("converge")

HEAD = """\
ruleset shop
enum Channel { web, store }
fact A { key s: str, n: int, x: float, c: Channel, tags: list[str] }
fact B { key s: str, n: int }
agent copy tier 1 {
  when A(s, n)
  emit B(s: s, n: n)
}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _converge(tmp_path: Path, test: str, fixture: str, data: str, *,
              limited: bool = False, timeout: float = 60) -> tuple[int, str]:
    """``converge test -v`` of the test with its fixture; ``limited``: in a child
    process with 1 GiB of memory at most, that must finish within ``timeout``."""
    (tmp_path / "shop.cvg").write_text(HEAD + test, encoding="utf-8")
    (tmp_path / fixture).write_text(data, encoding="utf-8")
    if not limited:
        result = CliRunner().invoke(main, ["test", "shop.cvg", "-v"])
        assert "internal error" not in result.output, result.output
        return result.exit_code, result.output

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    try:
        done = subprocess.run([str(CONSOLE_SCRIPT), "test", "shop.cvg", "-v"], cwd=tmp_path,
                              capture_output=True, timeout=timeout, preexec_fn=limit,
                              check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"converge test hung (more than {timeout}s)")
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert "internal error" not in output and "Traceback" not in output, output
    return done.returncode, output


def test_a_string_where_arithmetic_needs_a_number_fails_its_row(tmp_path: Path) -> None:
    test = ('test "repeat" {\n  cases "rows.csv"\n'
            '  given A(s: "a", n: s * k, x: 1.0, c: web, tags: [])\n'
            '  expect B(s: "a", n: s * k)\n}\n')
    code, output = _converge(tmp_path, test, "rows.csv", "s,k\n2,3\nab,3000000000\n",
                             limited=True)
    assert code == 1, output
    assert "PASSED shop.cvg::repeat[case 1]" in output
    assert "FAILED shop.cvg::repeat[case 2]" in output
    assert "case 2: column `s` is 'ab' (a str)" in output
    assert "an operand of `*`" in output


@pytest.mark.parametrize(("row", "expected"), [
    ('{"s": "a", "n": "one", "x": 1.0, "c": "web", "tags": []}',
     "column `n` is 'one' (a str), but the test uses `n` as field `A.n`, which needs int"),
    ('{"s": "a", "n": 1.5, "x": 1.0, "c": "web", "tags": []}',
     "column `n` is 1.5 (a float)"),
    ('{"s": "a", "n": true, "x": 1.0, "c": "web", "tags": []}',
     "column `n` is True (a bool)"),
    ('{"s": "a", "n": 1, "x": "1.0", "c": "web", "tags": []}',
     "column `x` is '1.0' (a str), but the test uses `x` as field `A.x`, which needs float"),
    ('{"s": "a", "n": 1, "x": 1.0, "c": "online", "tags": []}',
     "column `c` is 'online' (a str), but the test uses `c` as field `A.c`, which needs "
     "Channel"),
    ('{"s": "a", "n": 1, "x": 1.0, "c": "web", "tags": [1, 2]}',
     "column `tags` is (1, 2) (a list)"),
    ('{"s": 5, "n": 1, "x": 1.0, "c": "web", "tags": []}',
     "column `s` is 5 (an int), but the test uses `s` as field `A.s`, which needs str"),
])
def test_a_value_that_does_not_fit_its_field_fails_its_row(tmp_path: Path, row: str,
                                                          expected: str) -> None:
    test = ('test "fields" {\n  cases "rows.jsonl"\n'
            "  given A(s: s, n: n, x: x, c: c, tags: tags)\n"
            "  expect B(s: s, n: n)\n}\n")
    good = '{"s": "a", "n": 1, "x": 2, "c": "store", "tags": ["t"]}'
    code, output = _converge(tmp_path, test, "rows.jsonl", good + "\n" + row + "\n")
    assert code == 1, output
    assert "PASSED shop.cvg::fields[case 1]" in output  # an int fits a float field
    assert "FAILED shop.cvg::fields[case 2]" in output
    assert f"case 2: {expected}" in output


def test_rows_that_fit_pass(tmp_path: Path) -> None:
    test = ('test "t" {\n  cases "rows.csv"\n'
            "  given A(s: s, n: n + 1, x: x, c: c, tags: [s])\n"
            "  expect B(s: s, n: n + 1)\n}\n")
    code, output = _converge(tmp_path, test, "rows.csv", "s,n,x,c\na,1,2,web\nb,2,2.5,store\n")
    assert code == 0, output
    assert "2 passed" in output


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deep_json_in_a_fixture_fails_the_test_naming_the_line(tmp_path: Path,
                                                              depth: int) -> None:
    test = ('test "deep" {\n  cases "rows.jsonl"\n'
            '  given A(s: "a", n: 1, x: 1.0, c: web, tags: tags)\n'
            '  expect B(s: "a", n: 1)\n}\n')
    deep = '{"tags": ' + "[" * depth + "]" * depth + "}"
    code, output = _converge(tmp_path, test, "rows.jsonl", '{"tags": []}\n' + deep + "\n")
    assert code == 1, output
    assert "rows.jsonl:2: a value nested more than 100 levels deep" in output


def test_a_csv_cell_of_digits_used_as_text_is_the_text_written(tmp_path: Path) -> None:
    # Met as: `column `s` is 7 (an int), but the test uses `s` as field `A.s`, which
    # needs str` for a code 007: no CSV cell could give a str of digits, where an input
    # fact's CSV (typed by its fields) reads `007` as "007".
    test = ('test "codes" {\n  cases "rows.csv"\n'
            '  given A(s: s, n: n, x: 1.0, c: web, tags: [])\n'
            '  expect B(s: s, n: n)\n'
            '  expect no B(s: other)\n}\n')
    code, output = _converge(tmp_path, test, "rows.csv",
                             "s,n,other\n007,7,7\n1e5,1,100000.0\ntrue,2,True\n")
    assert code == 0, output
    assert "3 passed, 0 failed" in output
    # a column used as a number is still a number
    typed = ('test "numbers" {\n  cases "rows.csv"\n'
             '  given A(s: "a", n: n, x: 1.0, c: web, tags: [])\n'
             '  expect B(s: "a", n: n)\n}\n')
    code, output = _converge(tmp_path, typed, "rows.csv", "n\n007\n")
    assert code == 0, output


@pytest.mark.parametrize(("fixture", "data", "says"), [
    ("rows.csv", "x\n2.5\n1e-400\n",
     "rows.csv:3: `x` is `1e-400`, below the smallest float (about 5e-324), and would be 0.0"),
    ("rows.jsonl", '{"x": 2.5}\n{"x": 1e-400}\n',
     "rows.jsonl:2: `x` is `1e-400`, below the smallest float (about 5e-324), and would be 0.0"),
])
def test_a_float_below_the_smallest_fails_its_row(tmp_path: Path, fixture: str, data: str,
                                                  says: str) -> None:
    # found: read as 0.0 without a word (an input fact's 1e-400 is an error), so a
    # case expecting 0.0 passed
    test = (f'test "tiny" {{\n  cases "{fixture}"\n'
            '  given A(s: "a", n: 1, x: x, c: web, tags: [])\n'
            '  expect A(s: "a", x: x)\n}\n')
    code, output = _converge(tmp_path, test, fixture, data)
    assert code == 1, output
    assert says in output


@pytest.mark.parametrize(("fixture", "data"), [
    ("rows.csv", ""), ("rows.jsonl", ""), ("rows.jsonl", "\n\n"),
])
def test_an_empty_fixture_is_a_warning_and_the_test_has_no_cases(
    tmp_path: Path, fixture: str, data: str
) -> None:
    # found: `converge check` said each name the test uses was unknown (a test binds
    # names only in the rows of its cases), and `converge test` stopped on those errors
    # (exit 2), where a CSV of a header only fails that test with "has no cases"
    test = (f'test "none" {{\n  cases "{fixture}"\n'
            '  given A(s: s, n: 1, x: 1.0, c: web, tags: [])\n'
            '  expect B(s: s, n: 1)\n}\n')
    code, output = _converge(tmp_path, test, fixture, data)
    assert code == 1, output
    assert f"warning[CVG705]: the cases file `{fixture}` binds no names" in output
    assert "unknown name" not in output
    assert 'table test "none" has no cases' in output


@pytest.mark.parametrize(("fixture", "data", "where"), [
    # after a blank line the failing row (case 2) is the file's 4th line
    ("rows.csv", "s,n\na,1\n\nb,one\n", "rows.csv:4"),
    ("rows.jsonl", '{"s": "a", "n": 1}\n\n{"s": "b", "n": "one"}\n', "rows.jsonl:3"),
])
def test_a_row_that_does_not_fit_is_named_by_its_file_and_line(
        tmp_path: Path, fixture: str, data: str, where: str) -> None:
    # It said "fix the row in the cases file (rows count from 1)": the reader had to
    # count rows, skipping the blank lines the reader skips.
    test = (f'test "lines" {{\n  cases "{fixture}"\n'
            '  given A(s: s, n: n, x: 1.0, c: web, tags: [])\n'
            "  expect B(s: s, n: n)\n}\n")
    code, output = _converge(tmp_path, test, fixture, data)
    assert code == 1, output
    assert "case 2: column `n` is 'one' (a str)" in output
    assert f"fix this row of the cases file: {where}" in output
