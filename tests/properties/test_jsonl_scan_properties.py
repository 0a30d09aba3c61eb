"""The JSON Lines reader's fast scans (a line that is one object from its first
character to its last, scanned at once; a batch of such lines, read at once as one
JSON array) are an optimisation, never semantics: on
lines with odd whitespace, escapes, a BOM, a ``\\r``, repeated keys, NaN, nesting,
several keys, extra data or none, ``read_facts`` gives the same facts (value for
value, -0.0 and 0.0, 1 and 1.0 told apart) or the same error, at the same line, as
the careful path alone (every line read by ``raw_decode``, as before the scan)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import inputs
from converge_rules.engine.inputs import read_facts
from converge_rules.errors import InputError
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program

PROFILE = settings(deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])

TEXT = """\
ruleset lines
fact A { key id: str, n: int?, x: float?, l: list[int]? }
fact B { s: str, b: bool? }
"""

SPACE = st.sampled_from(("", "", " ", "\t", "  ", "\u00a0", "\f", "\v"))
NAMES = st.sampled_from(("A", "B", "C", "a", "A ", "\\u0041"))
ATOMS = st.sampled_from((
    '"k"', '"\\u00e9"', '"\\ud83d\\ude00"', '"\\ud800"', '"a\\nb"', '"x\\"y"', "1", "-0",
    "1.0", "-0.0", "1e2", "1E-400", "1e400", "NaN", "-Infinity", "true", "false", "null",
    "[]", "[1, 2]", "[1.5]", '{"z": 1}', "01", "1.", ".5", "[1,]", '"\u2028"',
    "9223372036854775808", "-9223372036854775808", "[{}]", '"{"', '":"', '"}, {"',
    '"a:b"'))
FIELDS = st.sampled_from(("id", "n", "x", "l", "s", "b", "q", "i\\u0064"))


@st.composite
def objects(draw: st.DrawFn) -> str:
    def sp() -> str:
        return draw(SPACE)

    pairs = [f'{sp()}"{draw(FIELDS)}"{sp()}:{sp()}{draw(ATOMS)}{sp()}'
             for _ in range(draw(st.integers(0, 4)))]
    body = "{" + ",".join(pairs) + "}"
    facts = [f'{sp()}"{draw(NAMES)}"{sp()}:{sp()}{body}{sp()}'
             for _ in range(draw(st.sampled_from((1, 1, 1, 1, 0, 2))))]
    return "{" + ",".join(facts) + "}"


GOOD = {  # values each field of the types takes
    "A": {"id": ('"k"', '"\\u00e9"', '"a\\tb"', '"\\ud83d\\ude00"', '"\u00e9"', '"x\\"y"'),
          "n": ("1", "-0", "0", "9223372036854775807", "null"),
          "x": ("1.0", "-0.0", "0.0", "1", "-0", "1e2", "2.5E-3", "null"),
          "l": ("[]", "[1, -0]", "[ 1 ,2 ]", "null")},
    "B": {"s": ('""', '"s"', '"\\/"', '"\u2028"'), "b": ("true", "false", "null")},
}


@st.composite
def facts(draw: st.DrawFn) -> str:
    """A fact that is mostly valid: the type's fields (the key always) in any order,
    with JSON's space around every token."""
    def sp() -> str:
        return draw(st.sampled_from(("", "", "", " ", "\t", " \t ")))

    name = draw(st.sampled_from(sorted(GOOD)))
    fields = GOOD[name]
    chosen = [f for f in fields if f in ("id", "s") or draw(st.booleans())]
    chosen = draw(st.permutations(chosen))
    if draw(st.integers(0, 5)) == 0:  # a key twice
        chosen = [*chosen, draw(st.sampled_from(chosen))]
    pairs = [f'{sp()}"{f}"{sp()}:{sp()}{draw(st.sampled_from(fields[f]))}{sp()}'
             for f in chosen]
    return "{" + sp() + f'"{name}"{sp()}:{sp()}' + "{" + ",".join(pairs) + "}" + sp() + "}"


@st.composite
def lines(draw: st.DrawFn) -> str:
    line = draw(facts() | facts() | facts() | facts() | objects()
                | st.sampled_from(("", " ", "[]", "{", "}", "{}}", "{}{}", "\"A\"",
                                   # halves of a fact, and two facts on one line: read
                                   # as a JSON array, lines joined, they could pair up
                                   '{"A": {"id": "k", "l": [{}', '{}]}}',
                                   '{"A": {"id": "k"}}, {"B": {"s": ""}}',
                                   '{"A": {"id": "}', '{"}}, {"B": {"s": ""}}')))
    if draw(st.integers(0, 9)) == 0:
        line = draw(SPACE) + line + draw(SPACE)
    if draw(st.integers(0, 9)) == 0:
        line += draw(st.sampled_from(("\r", " \r", "\r\r", " x")))
    return line


def _program() -> Program:
    checked = check_file("lines.cvg", source=TEXT)
    assert not [d for d in checked.diagnostics if d.is_error]
    return compile_ruleset(checked)


PROGRAM = _program()


def _read(path: Path) -> Any:
    try:
        facts = read_facts(PROGRAM, path)
    except InputError as exc:
        return ("error", str(exc), exc.line, exc.help)
    return [(t, tuple(map(repr, v))) for t, v in facts.rows]


def _careful_raw_decode(scan: Any) -> Any:
    def raw_decode(s: str, idx: int = 0) -> tuple[Any, int]:  # as JSONDecoder's
        try:
            obj, end = scan(s, idx)
        except StopIteration as err:
            raise json.JSONDecodeError("Expecting value", s, err.value) from None
        return obj, end
    return raw_decode


def _no_scan(s: str, idx: int) -> Any:
    raise ValueError("the fast scan is off")


@settings(PROFILE, max_examples=400)
@given(rows=st.lists(lines(), min_size=1, max_size=6), bom=st.booleans(),
       end=st.sampled_from(("", "\n", "\r\n")))
def test_the_fast_scan_reads_as_the_careful_path(rows: list[str], bom: bool,
                                                   end: str) -> None:
    data = ("\ufeff" if bom else "") + "\n".join(rows) + end
    note(repr(data))
    _reads_as_the_careful_path(data)


def _reads_as_the_careful_path(data: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.jsonl"
        path.write_bytes(data.encode("utf-8", errors="surrogatepass"))
        fast = _read(path)
        scan = inputs._DECODER.scan_once  # type: ignore[attr-defined]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(inputs._DECODER, "raw_decode", _careful_raw_decode(scan))
            patch.setattr(inputs._DECODER, "scan_once", _no_scan)
            patch.setattr(inputs._SCANNER, "scan_once", _no_scan)
            careful = _read(path)
    assert fast == careful


@pytest.mark.parametrize("rows", [
    # a fact over two lines and two facts on one: as many facts as lines, joined
    ['{"A": {"id": "k", "l": [{}', '{}]}}', '{"A": {"id": "j"}}, {"B": {"s": ""}}'],
    ['{"A": {"id": "}', '{"}}, {"B": {"s": ""}}'],
    ['{"A": {"id": "k"}}', '{"A": {"id": "j", "id": "i"}}'],
    ['{"A": {"id": "k"}}', '{"A": {"id": "j"}}', ""],
])
def test_usual_lines_read_at_once_are_read_as_one_by_one(rows: list[str]) -> None:
    _reads_as_the_careful_path("\n".join(rows) + "\n")


def test_a_file_too_large_says_so_after_a_bad_line_read_before(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the batch is read before its lines are: a limit passed further on is said only
    # once the lines before it are read, as when they were read one at a time
    path = tmp_path / "in.jsonl"
    path.write_text('{"A": {"id": "k"}}\n{"A": {"id": 1}}\n{"A" {}}\n'
                    + f'{{"A": {{"id": "{"k" * 40}"}}}}\n' * 4000, encoding="utf-8")
    monkeypatch.setattr(inputs, "MAX_FACTS_BYTES", 100_000)  # (past the first 64 kB)
    with pytest.raises(InputError) as err:
        read_facts(PROGRAM, path)
    assert err.value.line == 2 and "A.id must be str" in str(err.value)
