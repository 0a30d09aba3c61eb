"""Bad input facts for ``converge run`` and ``converge_rules.read_facts``: each is
refused before anything runs, with the file, the line (and the column or field where it
applies) and a fix; exit code 2; never a traceback, never a value silently dropped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules.errors import InputError

Run = Callable[..., Any]  # the `converge` fixtures of conftest.py

RULESET = """\
ruleset t
enum Color { red, green }
fact A { key s: str, n: int, f: float = 1.0, b: bool = false, c: Color = red,
         l: list[int] = [], o: str? }
fact B { key s: str, n: int }
agent a tier 1 {
  when A(s, n)
  emit B(s: s, n: n)
}
"""


@pytest.fixture
def ruleset(tmp_path: Path) -> Path:
    path = tmp_path / "t.cvg"
    path.write_text(RULESET, encoding="utf-8")
    return path


def _refused(converge: Run, tmp_path: Path, name: str, data: bytes, *spec: str) -> str:
    (tmp_path / name).write_bytes(data)
    done = converge("run", "t.cvg", "-f", *(spec or (name,)))
    assert done.code == 2, done.text
    assert "nothing was run" in done.err
    assert done.out == ""
    return str(done.err)


@pytest.mark.usefixtures("ruleset")
@pytest.mark.parametrize(("data", "expected"), [
    (b'{"A": {"s": "x", "n": 1, "n": 2}}\n', "in.jsonl:1: the key `n` appears twice"),
    (b'\n{"A": {"s": "x", "n": 1, "f": NaN}}\n', "in.jsonl:2: at column 31: `NaN` is not a number"),
    (b'{"A": {"s": "x", "n": 1, "f": Infinity}}\n', "`Infinity` is not a number"),
    (b'{"A": {"s": "x", "n": 1}} trailing\n', "in.jsonl:1: not valid JSON at column 27"),
    (b'{"A": {"s": "x", "n": 1, "l": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}\n",
     "in.jsonl:1: JSON nested too deeply"),
    (b'{"A": {"s": "x", "n": 1}}\n{"A": {"s": "caf\xe9", "n": 1}}\n',
     "in.jsonl:2: not UTF-8 text: byte 0xe9 at column 17"),
    (b'{"A": {"s": "x", "n": 1}, "B": {"s": "x", "n": 1}}\n',
     "found an object with 2 keys (A, B)"),
    (b"42\n", "found a JSON number"),
    # lines that open with `{` and close with `}` but hold no one fact
    (b'{"A": {"s": "x", "n": 1}} {"A": {"s": "y", "n": 2}}\r\n',
     "in.jsonl:1: not valid JSON at column 27: extra data"),
    (b'{"A": {"s": "x", "n": 1}}{}\n', "in.jsonl:1: not valid JSON at column 26: extra data"),
    # lines ending in CR alone (classic Mac OS) read as one line: the CR is named
    (b'{"A": {"s": "x", "n": 1}}\r{"A": {"s": "y", "n": 2}}\r',
     "in.jsonl:1: a carriage return (U+000D) at column 26 does not end the line: JSON Lines "
     "end each line in LF (or CRLF)\n  help: save the file with LF line ends"),
    (b'{}\n', "found an empty object"),
    (b'{"A": {"s": "x", "n": 1' + b"0" * 4_301 + b'}}\n', "an integer of 4,302 digits"),
    (b'{"A": {"s": "x", "n": 1}, "A": {"s": "y", "n": 2}}\n', "the key `A` appears twice"),
    (b'{"A": {"s": "x", "n": 1}\n', "in.jsonl:1: not valid JSON at column 25"),
    (b'{"A": {"s": "x", "n": 1, "f": null}}\n', "or leave `f` out to use its default"),
    (b'{"A": {"s": "x", "n": "1"}}\n', "A.n must be int, got \"1\""),
    (b'{"A": {"s": "x", "n": 1.5}}\n', "give `n` an int value"),
    (b'{"A": {"s": "x", "n": true}}\n', "A.n must be int, got true"),
    (b'{"A": {"s": "x", "n": 1, "c": "blue"}}\n', "A.c must be Color, got \"blue\""),
    # an item of a list is named with its index and type; pydantic's words for a
    # tuple and its "Value error, " prefix are not shown
    (b'{"A": {"s": "x", "n": 1, "l": [[1]]}}\n', "A.l[0] must be int, got [1]"),
    (b'{"A": {"s": "x", "n": 1, "l": [1, "x"]}}\n', 'A.l[1] must be int, got "x"'),
    (b'{"A": {"s": "x", "n": 1, "l": "x"}}\n',
     "A.l must be list[int], got \"x\"\n  help: give `l` a list[int] value (Input should be "
     "a list (a JSON array))"),
    (b'{"A": {"s": "x", "n": 1, "zz": 1}}\n', "A has no field `zz`"),
    (b'{"A": {"s": "x"}}\n', "A is missing the required field `n`"),
    (b'{"Aa": {"s": "x"}}\n', "did you mean `A`?"),
    (b'{"A": {"s": "x", "n": 1, "c": "Color.red"}}\n', 'write "red": enum members are given'),
])
def test_bad_json_lines(converge: Run, tmp_path: Path, data: bytes, expected: str) -> None:
    assert expected in _refused(converge, tmp_path, "in.jsonl", data)


@pytest.mark.usefixtures("ruleset")
@pytest.mark.parametrize(("data", "expected"), [
    (b'[{"A": {"s": "x", "n": 1}},\n\n {"A": {"s": "x", "s": 1}}]', "in.json:3: the key `s`"),
    (b'[{"A": {"s": "x", "n": 1}},\n 5]', "in.json:2: expected an object"),
    (b'[{"A": {"s": "x", "n": 1}},\n]', "in.json:2: not valid JSON at column 1"),
])
def test_bad_json_arrays(converge: Run, tmp_path: Path, data: bytes, expected: str) -> None:
    assert expected in _refused(converge, tmp_path, "in.json", data)


@pytest.mark.usefixtures("ruleset")
@pytest.mark.parametrize(("data", "spec", "expected"), [
    (b"s,n,n\nx,1,2\n", "A=in.csv", "in.csv:1: CSV column `n` appears twice"),
    (b"s,n\nx,1.5\n", "A=in.csv", "in.csv:2: A.n (column 2) must be int, got '1.5'"),
    (b"s,n,f\nx,1,nan\n", "A=in.csv", "NaN and infinity cannot be facts"),
    (b"s,n\nx,\n", "A=in.csv", "in.csv:2: A.n (column 2) is empty"),
    (b"s,n,l\nx,1,[1\n", "A=in.csv", "A.l (column 3) must be list[int]"),
    (b"s,n,zz\nx,1,3\n", "A=in.csv", "CSV column `zz` is not a field of A"),
    (b"s,n\nx,1,2\n", "A=in.csv", "in.csv:2: expected 2 cells, found 3"),
    (b's,n\n"x\ny",1\nz,oops\n', "A=in.csv", "in.csv:4: A.n (column 2)"),
    (b"s,n\nx,1\n", "=in.csv", "names no fact type"),
    (b"s,n\nx,1\n", "Zz=in.csv", "unknown fact type `Zz`"),
    (b"s,n\nx,1\n", "A=missing.csv", "missing.csv: cannot read the file"),
    (b"s,n,b\nx,1,maybe\n", "A=in.csv", "A.b (column 3) must be bool, got 'maybe'\n"
                                        "  help: write true or false"),
    (b"s;n\nx;1\n", "A=in.csv", "the file looks separated by semicolons"),
    (b"s\tn\nx\t1\n", "A=in.csv", "the file looks separated by tabs"),
])
def test_bad_csv(converge: Run, tmp_path: Path, data: bytes, spec: str, expected: str) -> None:
    assert expected in _refused(converge, tmp_path, "in.csv", data, spec)


@pytest.mark.usefixtures("ruleset")
@pytest.mark.parametrize(("name", "data", "spec"), [
    ("in.jsonl", b'\xef\xbb\xbf{"A": {"s": "x", "n": 1}}\n', "in.jsonl"),
    ("in.csv", b"\xef\xbb\xbfs,n\nx,1\n", "A=in.csv"),
    ("in.csv", b's,n\n"x,y",1\n', "A=in.csv"),
    ("in.csv", b"s , n\nx,1\n", "A=in.csv"),  # padded header cells
])
def test_byte_order_marks_and_quoted_commas_are_read(
        converge: Run, tmp_path: Path, name: str, data: bytes, spec: str) -> None:
    (tmp_path / name).write_bytes(data)
    done = converge("run", "t.cvg", "-f", spec, "--format", "json")
    assert done.code == 0, done.text
    assert '"B": [' in done.out


def test_the_api_raises_input_error_with_file_and_line(ruleset: Path, tmp_path: Path) -> None:
    loaded = converge_rules.load(ruleset)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"A": {"s": "x", "n": 1}}\n{"A": {"s": "x", "n": 1, "n": 3}}\n')
    with pytest.raises(InputError) as caught:
        converge_rules.read_facts(loaded, bad)
    assert caught.value.line == 2
    assert caught.value.source == str(bad)
    with pytest.raises(InputError, match="it is a directory"):
        converge_rules.read_facts(loaded, tmp_path)


def test_a_bad_date_says_why_in_its_own_words(tmp_path: Path) -> None:
    ruleset = converge_rules.loads("ruleset d\nfact D { key d: date }\n", plugins=False)
    path = tmp_path / "in.jsonl"
    path.write_text('{"D": {"d": "2026-02-30"}}\n', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        converge_rules.read_facts(ruleset, path)
    assert caught.value.help == ('give `d` a date value ("2026-02-30" is not a date: day '
                                 "is out of range for month)")


def test_standard_input_that_is_a_device_is_named(ruleset: Path, tmp_path: Path) -> None:
    """Found: `converge run R -f /dev/stdin < /dev/null` said "/dev/stdin: … it is a
    device" with the help "give --facts a file, a pipe or /dev/stdin" — which it was."""
    import subprocess
    import sys

    console = Path(sys.executable).with_name("converge")
    done = subprocess.run([str(console), "run", str(ruleset), "-f", "/dev/stdin"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 2
    assert ("/dev/stdin: cannot read the file: it is the device /dev/null here, not a "
            "file of facts\n  help: pipe the facts in") in done.stderr
