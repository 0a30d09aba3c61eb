"""`Claim(id, note: none)` bound a variable called `none`, which matches any value: the
agent fired for every Claim, not for those without a note (found by a review writing a
property test that expected it to mean none)."""

from __future__ import annotations

from pathlib import Path

import pytest

import converge_rules
from converge_rules.language.checks.checker import check_file

RULESET = """ruleset r
fact Claim {{ key id: str, note: str? }}
fact Bare {{ key id: str }}
agent a {{
  when Claim(id, note: {word})
  emit Bare(id: id)
}}
"""


@pytest.mark.parametrize("word", ["none", "null", "nil", "None"])
def test_none_in_a_pattern_is_an_error_not_a_variable(tmp_path: Path, word: str) -> None:
    checked = check_file(tmp_path / "r.cvg", source=RULESET.format(word=word))
    (diag,) = [d for d in checked.diagnostics if d.is_error]
    assert diag.code == "CVG116"
    assert diag.span is not None and (diag.span.line, diag.span.column) == (5, 24)
    assert "note: _" in (diag.help or "")


def test_a_name_that_is_not_a_none_word_still_binds() -> None:
    ruleset = converge_rules.loads(RULESET.format(word="n"), plugins=False)
    result = converge_rules.run(ruleset, [("Claim", {"id": "a", "note": "x"}),
                                          ("Claim", {"id": "b"})])
    assert result.facts("Bare") == [{"id": "a"}, {"id": "b"}]
