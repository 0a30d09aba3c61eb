"""Bad ruleset files given to every command: each gets a message naming the file, the
line and the column, and exit code 1 (check) or 2 (a command that needs a valid
ruleset) — never a traceback."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from converge_rules.language.syntax.parser import parse

Run = Callable[..., Any]  # the `converge` fixtures of conftest.py

GOOD = "ruleset x\nfact A { key s: str, n: int }\nfact B { key s: str, n: int }\n"


def _agent(expr: str) -> str:
    return GOOD + f"agent a tier 1 {{\n  when A(s, n)\n  emit B(s: s, n: {expr})\n}}\n"


NEEDS_VALID = ["run", "compile", "graph", "test"]


@pytest.mark.parametrize("expr", [
    "n+" * 150 + "n",                        # a long flat chain nests in the tree
    "-(" * 150 + "n" + ")" * 150,
    "abs(" * 300 + "n" + ")" * 300,
    "[" * 300 + "n" + "]" * 300,
])
def test_deep_expressions_are_a_diagnostic_with_a_line_and_column(
        converge: Run, tmp_path: Path, expr: str) -> None:
    (tmp_path / "deep.cvg").write_text(_agent(expr), encoding="utf-8")
    checked = converge("check", "deep.cvg", "--format", "text")
    assert checked.code == 1
    assert "deep.cvg:6:" in checked.out
    assert "nested more than 100 levels deep" in checked.out
    assert "split it into smaller expressions" in checked.out
    assert "CVG106" not in checked.out  # no follow-on noise from the refused expression
    for command in NEEDS_VALID:
        assert converge(command, "deep.cvg").code == 2, command


def test_nesting_just_below_the_limit_runs(converge: Run,
                                           tmp_path: Path) -> None:
    (tmp_path / "ok.cvg").write_text(_agent("n+" * 99 + "n"), encoding="utf-8")
    (tmp_path / "in.jsonl").write_text('{"A": {"s": "x", "n": 1}}\n', encoding="utf-8")
    done = converge("run", "ok.cvg", "-f", "in.jsonl", "--format", "json")
    assert done.code == 0, done.text
    assert '"n": 100' in done.out


def test_the_parser_never_recurses_out_on_deep_input() -> None:
    result = parse(GOOD + 'root "g" {\n  require ' + "-" * 20000 + "1 < 0\n}\n", "r.cvg")
    (diag,) = result.diagnostics
    assert diag.code == "CVG990"
    assert diag.span is not None and diag.span.line == 5 and diag.span.column > 1


def test_a_non_utf8_ruleset_names_the_line_and_column_of_the_bad_byte(
        converge: Run, tmp_path: Path) -> None:
    (tmp_path / "latin.cvg").write_bytes(b"ruleset x\n\n# caf\xe9\n")
    done = converge("check", "latin.cvg", "--format", "text")
    assert done.code == 1
    assert "latin.cvg:3:6" in done.out
    assert "byte 0xe9" in done.out and "save the file as UTF-8" in done.out


def test_a_binary_file_is_called_binary(converge: Run,
                                        tmp_path: Path) -> None:
    (tmp_path / "blob.cvg").write_bytes(b"\x7fELF\x00\x01\x02\xff\xfe")
    done = converge("check", "blob.cvg", "--format", "text")
    assert done.code == 1
    assert "is a binary file, not a ruleset" in done.out


def test_a_huge_line_is_shown_as_a_window_around_the_error(
        converge: Run, tmp_path: Path) -> None:
    line = 'root "g" { require ' + "1+" * 40 + "oops" + " " * 1_000_000 + " }"
    (tmp_path / "huge.cvg").write_text(GOOD + line + "\n", encoding="utf-8")
    done = converge("check", "huge.cvg", "--format", "text")
    assert done.code == 1
    assert "huge.cvg:4:100" in done.out
    assert len(done.out) < 2_000
    caret_line = next(x for x in done.out.splitlines() if x.strip().startswith("| ") and
                      x.strip().endswith("^^^^"))
    shown = done.out.splitlines()[done.out.splitlines().index(caret_line) - 1]
    start = caret_line.index("^")
    assert shown[start:start + 4] == "oops"


@pytest.mark.parametrize(("name", "data"), [
    ("bom.cvg", b"\xef\xbb\xbf" + GOOD.encode()),
    ("crlf.cvg", GOOD.replace("\n", "\r\n").encode()),
    ("tabs.cvg", GOOD.replace(" ", "\t", 3).encode()),
    ("long.cvg", b"ruleset x\nfact " + b"A" * 50_000 + b" { key s: str }\n"),
])
def test_harmless_variations_of_a_file_check_clean(
        converge: Run, tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    done = converge("check", name, "--format", "text")
    assert done.code == 0, done.text


@pytest.mark.parametrize(("text", "message"), [
    ("", "does not start with a `ruleset` line"),
    ("ruleset x\nagent a tier 1 {\n  when A(s)\n", "unexpected end of file in agent `a`"),
    ('ruleset x\nimport "x.cvg"\n', "imports itself"),
    ('ruleset x\nimport "missing.cvg"\n', "not found"),
    ('ruleset x\nimport "sub"\n', "it is a directory"),
    # classic Mac OS line ends: read as one line, the comment hid the fact after it
    ("ruleset x\r# note\rfact A { key s: str }\r",
     "a carriage return (U+000D) that does not end a line"),
])
def test_broken_files_name_the_problem(converge: Run, tmp_path: Path,
                                       text: str, message: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "x.cvg").write_text(text, encoding="utf-8")
    done = converge("check", "x.cvg", "--format", "text")
    assert done.code == 1
    assert message in done.out
    assert "x.cvg:" in done.out
    for command in NEEDS_VALID:
        assert converge(command, "x.cvg").code == 2, command


def test_the_console_script_reports_a_missing_path_as_usage(
        converge_script: Run) -> None:
    for command in ["check", "run"]:
        done = converge_script(command, "nowhere.cvg")
        assert done.code == 2, (command, done.text)
        assert "nowhere.cvg" in done.err, (command, done.text)


@pytest.mark.parametrize(("text", "where", "fix"), [
    ("ruleset x\nfact Prix { key cl\u00e9: str }\n", "x.cvg:2:19",
     "names use ASCII letters, digits and `_` only: write `cle` for `cl\u00e9`"),
    ('ruleset x\nroot \u201cg\u201d {\n  max_cycles = 3\n}\n', "x.cvg:2:6",
     "a typographic quote: strings use straight double quotes"),
    ("ruleset x\nroot \"g\" {\n  max_cycles\u00a0= 3\n}\n", "x.cvg:3:13",
     "an invisible non-standard space"),
    ("ruleset x\nfact A { key s: str, o: str? = none }\n", "x.cvg:2:32",
     "there is no literal for none"),
])
def test_characters_and_words_from_other_languages_get_a_specific_fix(
        converge: Run, tmp_path: Path, text: str, where: str, fix: str) -> None:
    (tmp_path / "x.cvg").write_text(text, encoding="utf-8")
    done = converge("check", "x.cvg", "--format", "text")
    assert done.code == 1
    assert where in done.out
    assert fix in done.out


@pytest.mark.parametrize("name", [b"bad\xffname.cvg", b"new\nline.cvg"])
def test_odd_file_names_are_shown_and_compiled_safely(converge: Run, tmp_path: Path,
                                                      name: bytes) -> None:
    ruleset = _agent("n + 1").encode()
    with open(os.path.join(os.fsencode(tmp_path), name), "wb") as handle:
        handle.write(ruleset)
    (tmp_path / "err.cvg").write_text("ruleset y\nfact A { key s: strr }\n", encoding="utf-8")
    for fmt in ("human", "json", "sarif", "junit", "github"):
        done = converge("check", ".", "--format", fmt)
        assert done.code == 1, (fmt, done.text)
    shown = os.fsdecode(name)
    assert converge("run", shown).code == 0
    assert converge("compile", shown, "--show", "all").code == 0
    assert converge("test", shown).code == 0


def test_an_agent_joining_too_many_patterns_is_named_not_an_internal_error(
        converge: Run, tmp_path: Path) -> None:
    patterns = " and ".join(f"A(s: s{i}, n)" for i in range(25))
    (tmp_path / "wide.cvg").write_text(
        GOOD + f"agent wide tier 1 {{\n  when {patterns}\n  emit B(s: s0, n: n)\n}}\n",
        encoding="utf-8")
    (tmp_path / "in.jsonl").write_text('{"A": {"s": "x", "n": 1}}\n', encoding="utf-8")
    for args in (["run", "wide.cvg", "-f", "in.jsonl"], ["compile", "wide.cvg"]):
        done = converge(*args)
        assert done.code == 2, done.text
        assert "wide.cvg:4:1: agent wide is too large for Python to compile" in done.err
        assert "split it into smaller agents" in done.err


def test_a_long_flat_chain_is_told_how_to_split_it(converge: Run, tmp_path: Path) -> None:
    # a flat `n + n + … + n` was told it is "nested" and to "flatten" it; the
    # parenthesised split the message now suggests is accepted
    (tmp_path / "flat.cvg").write_text(_agent("n+" * 150 + "n"), encoding="utf-8")
    checked = converge("check", "flat.cvg", "--format", "text")
    assert "each operator of a chain like `a + b + c` nests one level" in checked.out
    assert "`(a + b) + (c + d)`" in checked.out
    split = "+".join("(" + "+".join(["n"] * 15) + ")" for _ in range(10))
    (tmp_path / "split.cvg").write_text(_agent(split), encoding="utf-8")
    assert converge("check", "split.cvg").code == 0
