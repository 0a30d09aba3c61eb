"""``converge fmt``: in place, --check, --diff, stdin, directories, syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main

UGLY = 'ruleset   t\nfact A{x:int}\nprune A when (x)>1   # old\n'
CANONICAL = "ruleset t\n\nfact A { x: int }\nprune A when x > 1                       # old\n"
BROKEN = "ruleset t\nfact A { x: }\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVERGE_DEBUG", raising=False)
    return tmp_path


def fmt(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["fmt", *args], input=stdin)


def test_rewrites_files_in_place(workdir: Path) -> None:
    (workdir / "a.cvg").write_text(UGLY)
    result = fmt("a.cvg")
    assert result.exit_code == 0, result.output
    assert (workdir / "a.cvg").read_text() == CANONICAL
    assert "reformatted a.cvg" in result.output
    again = fmt("a.cvg")
    assert again.exit_code == 0
    assert "1 unchanged" in again.output


def test_check_lists_files_that_would_change_and_writes_nothing(workdir: Path) -> None:
    (workdir / "ugly.cvg").write_text(UGLY)
    (workdir / "clean.cvg").write_text(CANONICAL)
    result = fmt("--check", "ugly.cvg", "clean.cvg")
    assert result.exit_code == 1
    assert "would reformat ugly.cvg" in result.output
    assert "clean.cvg" not in result.output.replace("1 unchanged", "")
    assert (workdir / "ugly.cvg").read_text() == UGLY


def test_check_passes_on_canonical_files(workdir: Path) -> None:
    (workdir / "clean.cvg").write_text(CANONICAL)
    result = fmt("--check", "clean.cvg")
    assert result.exit_code == 0, result.output
    assert "would reformat" not in result.output


def test_diff_prints_a_unified_diff_and_writes_nothing(workdir: Path) -> None:
    (workdir / "a.cvg").write_text(UGLY)
    result = fmt("--diff", "a.cvg")
    assert result.exit_code == 0
    assert "--- a.cvg (original)" in result.output
    assert "+++ a.cvg (formatted)" in result.output
    assert "-fact A{x:int}" in result.output
    assert "+fact A { x: int }" in result.output
    assert (workdir / "a.cvg").read_text() == UGLY


def test_check_with_diff_exits_1(workdir: Path) -> None:
    (workdir / "a.cvg").write_text(UGLY)
    result = fmt("--check", "--diff", "a.cvg")
    assert result.exit_code == 1
    assert "+fact A { x: int }" in result.output


def test_stdin_to_stdout() -> None:
    result = fmt("-", stdin=UGLY)
    assert result.exit_code == 0
    assert result.stdout == CANONICAL


def test_stdin_check() -> None:
    assert fmt("--check", "-", stdin=UGLY).exit_code == 1
    assert fmt("--check", "-", stdin=CANONICAL).exit_code == 0


def test_stdin_cannot_mix_with_paths(workdir: Path) -> None:
    (workdir / "a.cvg").write_text(UGLY)
    result = fmt("-", "a.cvg", stdin=UGLY)
    assert result.exit_code == 2
    assert "standard input" in result.output


def test_a_directory_is_searched_recursively(workdir: Path) -> None:
    nested = workdir / "rules" / "deep"
    nested.mkdir(parents=True)
    (workdir / "rules" / "one.cvg").write_text(UGLY)
    (nested / "two.cvg").write_text(UGLY)
    (nested / "notes.txt").write_text("not a ruleset")
    result = fmt("rules")
    assert result.exit_code == 0, result.output
    assert (workdir / "rules" / "one.cvg").read_text() == CANONICAL
    assert (nested / "two.cvg").read_text() == CANONICAL
    assert (nested / "notes.txt").read_text() == "not a ruleset"


def test_syntax_error_exits_2_with_diagnostics_and_no_traceback(workdir: Path) -> None:
    (workdir / "bad.cvg").write_text(BROKEN)
    (workdir / "ugly.cvg").write_text(UGLY)
    result = fmt("bad.cvg", "ugly.cvg")
    assert result.exit_code == 2
    assert "bad.cvg:2:" in result.output
    assert "CVG0" in result.output
    assert "Traceback" not in result.output
    assert (workdir / "bad.cvg").read_text() == BROKEN
    # The other file is still formatted.
    assert (workdir / "ugly.cvg").read_text() == CANONICAL


def test_syntax_error_on_stdin_exits_2() -> None:
    result = fmt("-", stdin=BROKEN)
    assert result.exit_code == 2
    assert "<stdin>:2:" in result.output
    assert result.stdout == ""


def test_missing_path_is_a_usage_error(workdir: Path) -> None:
    result = fmt("nowhere.cvg")
    assert result.exit_code == 2
    assert "nowhere.cvg" in result.output


def test_no_path_is_a_usage_error() -> None:
    assert fmt().exit_code == 2


def test_a_file_that_is_not_utf8_exits_2(workdir: Path) -> None:
    (workdir / "latin.cvg").write_bytes(b'ruleset t "caf\xe9"\n')
    result = fmt("latin.cvg")
    assert result.exit_code == 2
    assert "UTF-8" in result.output
    assert "Traceback" not in result.output


def test_help_teaches_with_examples() -> None:
    result = fmt("--help")
    assert result.exit_code == 0
    assert "converge fmt --check rulesets/" in result.output
    assert "converge fmt -" in result.output
