"""The example corpora under ``grammar/examples``.

Each ``invalid/check_*.cvg`` and ``invalid/syntax_*.cvg`` starts with lines
``# expect: CODE line L [col C] [in FILE]`` (FILE relative to ``invalid/``, for a
finding in an imported file); loading and checking the file must produce exactly those
diagnostics (errors and warnings), no more and no fewer. Every ``valid/*.cvg`` except
the parse-only ``valid/syntax_*.cvg`` checks with no error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from converge_rules.language.checks.checker import check_file
from converge_rules.language.diagnostics.core import Severity

EXAMPLES = Path(__file__).resolve().parents[2] / "grammar" / "examples"
INVALID = EXAMPLES / "invalid"
EXPECT = re.compile(r"#\s*expect:\s*(CVG\d{3})\s+line\s+(\d+)(?:\s+col\s+(\d+))?"
                    r"(?:\s+in\s+(\S+))?\s*$")

Finding = tuple[str, Path, int, int | None]


def _invalid_files() -> list[Path]:
    return sorted([*INVALID.glob("check_*.cvg"), *INVALID.glob("syntax_*.cvg")])


def _expected(path: Path) -> list[Finding]:
    found: list[Finding] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        m = EXPECT.match(line)
        if m:
            where = (INVALID / m.group(4)).resolve() if m.group(4) else path.resolve()
            col = int(m.group(3)) if m.group(3) else None
            found.append((m.group(1), where, int(m.group(2)), col))
    return found


def test_corpus_is_large_enough() -> None:
    assert len(list(INVALID.glob("check_*.cvg"))) >= 30


@pytest.mark.parametrize("path", _invalid_files(), ids=lambda p: p.name)
def test_invalid_example_reports_exactly_what_it_expects(path: Path) -> None:
    expected = _expected(path)
    assert expected, f"{path.name} has no `# expect:` line"
    checked = check_file(path)
    actual: list[Finding] = [
        (d.code, Path(d.span.file).resolve(), d.span.line, d.span.column)
        for d in checked.diagnostics
        if d.span is not None and d.severity is not Severity.NOTE
    ]
    missing: list[Finding] = []
    for code, where, line, col in expected:
        match = next((a for a in actual if a[:3] == (code, where, line)
                      and (col is None or a[3] == col)), None)
        if match is None:
            missing.append((code, where, line, col))
        else:
            actual.remove(match)
    shown = "\n".join(f"  {d.code} {d.span}: {d.message}" for d in checked.diagnostics)
    assert not missing and not actual, (
        f"missing {missing}, unexpected {actual}; all diagnostics:\n{shown}")


# ``valid/syntax_*.cvg`` only promise to parse (the parser's corpus); the others check.
@pytest.mark.parametrize("path", sorted(p for p in (EXAMPLES / "valid").glob("*.cvg")
                                        if not p.name.startswith("syntax_")),
                         ids=lambda p: p.name)
def test_valid_example_checks_clean(path: Path) -> None:
    checked = check_file(path)
    errors = [f"{d.code} {d.span}: {d.message}" for d in checked.diagnostics if d.is_error]
    assert not errors, "\n".join(errors)
