"""The loader: imports resolved relative to the importer, each file once, imports before
importers, and every problem a diagnostic rather than an exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from converge_rules.language.loader import LoadResult, load_file


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")


def _names(result: LoadResult) -> list[str]:
    return [m.header.name.name for m in result.modules if m.header is not None]


def _codes(result: LoadResult) -> list[str]:
    return [d.code for d in result.diagnostics]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_imports_come_before_importers_and_each_file_loads_once(tmp_path: Path) -> None:
    _write(tmp_path, {
        "main.cvg": 'ruleset main\nimport "lib/a.cvg"\nimport "lib/b.cvg"\n',
        "lib/a.cvg": 'ruleset a\nimport "base.cvg"\n',
        "lib/b.cvg": 'ruleset b\nimport "base.cvg"\n',
        "lib/base.cvg": "ruleset base\n",
    })
    result = load_file("main.cvg")
    assert result.diagnostics == ()
    assert _names(result) == ["base", "a", "b", "main"]
    assert result.entry == "main.cvg"
    assert set(result.sources) == {"main.cvg", "lib/a.cvg", "lib/b.cvg", "lib/base.cvg"}
    assert [m.span.file for m in result.modules] == [
        "lib/base.cvg", "lib/a.cvg", "lib/b.cvg", "main.cvg"]


def test_import_paths_are_relative_to_the_importing_file(tmp_path: Path) -> None:
    _write(tmp_path, {
        "rules/main.cvg": 'ruleset main\nimport "../shared/facts.cvg"\n',
        "shared/facts.cvg": "ruleset facts\n",
    })
    result = load_file(tmp_path / "rules" / "main.cvg", allow_paths=[tmp_path / "shared"])
    assert result.ok
    assert _names(result) == ["facts", "main"]
    assert "shared/facts.cvg" in result.sources


def test_missing_import_points_at_the_import_line(tmp_path: Path) -> None:
    _write(tmp_path, {"main.cvg": 'ruleset main\n\nimport "nope.cvg"\n'})
    result = load_file("main.cvg")
    [diag] = result.diagnostics
    assert diag.code == "CVG601" and diag.is_error
    assert diag.span is not None
    assert (diag.span.file, diag.span.line, diag.span.column) == ("main.cvg", 3, 1)
    assert "nope.cvg" in diag.message and diag.help
    assert _names(result) == ["main"]


def test_import_cycle_names_the_chain(tmp_path: Path) -> None:
    _write(tmp_path, {
        "main.cvg": 'ruleset main\nimport "a.cvg"\n',
        "a.cvg": 'ruleset a\nimport "b.cvg"\n',
        "b.cvg": 'ruleset b\nimport "a.cvg"\n',
    })
    result = load_file("main.cvg")
    [diag] = result.diagnostics
    assert diag.code == "CVG602"
    assert "a.cvg -> b.cvg -> a.cvg" in diag.message
    assert diag.span is not None and diag.span.file == "b.cvg"
    assert _names(result) == ["b", "a", "main"]


def test_a_file_importing_itself(tmp_path: Path) -> None:
    _write(tmp_path, {"main.cvg": 'ruleset main\nimport "./main.cvg"\n'})
    result = load_file("main.cvg")
    assert _codes(result) == ["CVG604"]
    assert _names(result) == ["main"]


def test_non_utf8_and_directory_imports_are_unreadable(tmp_path: Path) -> None:
    _write(tmp_path, {
        "main.cvg": 'ruleset main\nimport "latin.cvg"\nimport "dir.cvg"\n',
        "latin.cvg": "ruleset latin\n# café\n".encode("latin-1"),
        "dir.cvg/inner.cvg": "ruleset inner\n",
    })
    result = load_file("main.cvg")
    assert _codes(result) == ["CVG603", "CVG603"]
    assert "UTF-8" in result.diagnostics[0].message
    assert "directory" in result.diagnostics[1].message
    assert [d.span.line for d in result.diagnostics if d.span] == [2, 3]


def test_missing_entry_file_is_a_diagnostic(tmp_path: Path) -> None:
    result = load_file("absent.cvg")
    assert result.modules == ()
    assert _codes(result) == ["CVG601"]
    assert result.diagnostics[0].span is not None
    assert result.diagnostics[0].span.file == "absent.cvg"


def test_source_overrides_the_entry_file(tmp_path: Path) -> None:
    _write(tmp_path, {"lib.cvg": "ruleset lib\n"})
    result = load_file("virtual.cvg", source='ruleset v\nimport "lib.cvg"\n')
    assert result.ok
    assert _names(result) == ["lib", "v"]
    assert result.sources["virtual.cvg"].startswith("ruleset v")


def test_syntax_errors_in_an_import_are_reported_and_the_rest_loads(tmp_path: Path) -> None:
    _write(tmp_path, {
        "main.cvg": 'ruleset main\nimport "bad.cvg"\nfact Cost { key sku: str }\n',
        "bad.cvg": "ruleset bad\nfact Broken { sku str }\n",
    })
    result = load_file("main.cvg")
    assert not result.ok
    assert all(d.span is not None and d.span.file == "bad.cvg" for d in result.diagnostics)
    assert all(d.code.startswith("CVG0") for d in result.diagnostics)
    assert "main" in _names(result)


def test_paths_outside_the_working_directory_are_absolute(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    _write(tmp_path, {"x/main.cvg": "ruleset main\n", "y/.keep": ""})
    monkeypatch.chdir(tmp_path / "y")
    result = load_file(tmp_path / "x" / "main.cvg")
    assert result.entry == str((tmp_path / "x" / "main.cvg").resolve())


def test_a_file_imported_twice_is_warned_about_at_the_second_import(tmp_path: Path) -> None:
    # found (r27): a duplicate `import` of the same file (written alike or not) got no
    # word; the second adds nothing, the file being loaded once
    _write(tmp_path, {
        "main.cvg": 'ruleset main\nimport "facts.cvg"\nimport "other.cvg"\n'
                    'import "./facts.cvg"\n',
        "facts.cvg": "ruleset facts\n", "other.cvg": 'ruleset other\nimport "facts.cvg"\n',
    })
    result = load_file("main.cvg")
    assert result.ok and _codes(result) == ["CVG607"]  # other.cvg's import is its own
    d = result.diagnostics[0]
    assert d.severity == "warning" and d.span is not None
    assert (d.span.file, d.span.line, d.span.column) == ("main.cvg", 4, 1)
    assert d.message == "`facts.cvg` is already imported on line 2"
    assert d.help == 'remove `import "./facts.cvg"`: the file is loaded once'
    assert [(r.span.line, r.message) for r in d.related] == [(2, "first imported here")]
    assert _names(result) == ["facts", "other", "main"]


def test_the_duplicate_import_warning_offers_to_delete_the_line(tmp_path: Path) -> None:
    pytest.importorskip("pygls")
    from converge_rules.lsp.server import fixes_of

    _write(tmp_path, {"main.cvg": 'ruleset main\nimport "f.cvg"\nimport "f.cvg"\n',
                      "f.cvg": "ruleset f\n"})
    (d,) = load_file("main.cvg").diagnostics
    assert fixes_of(d, (tmp_path / "main.cvg").read_text().splitlines()) == [{
        "title": 'Remove `import "f.cvg"`: the file is loaded once',
        "line": 2, "start": 0, "end_line": 3, "end": 0, "text": ""}]
