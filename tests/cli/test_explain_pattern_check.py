"""``converge explain`` checks its pattern against the ruleset as rule text is checked
(issue 10, item 4): an unknown type said "can only be given as input", an unknown field
was ignored and an unquoted value (``Assessment(claim: C2)``, the shell ate the quotes)
matched anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main

CLAIMS = """\
ruleset claims

enum Verdict { approve, deny }

fact Claim { key id: str, amount: float }
fact Assessment { key claim: str, verdict: Verdict, score: float }

agent assess {
  when Claim(id, amount)
  emit Assessment(claim: id, verdict: if amount < 1000.0 then approve else deny,
                  score: 0.5)
}
"""

INPUTS = """\
{"Claim": {"id": "C1", "amount": 100.0}}
{"Claim": {"id": "C2", "amount": 5000.0}}
"""


@pytest.fixture(autouse=True)
def _files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("claims.cvg").write_text(CLAIMS, encoding="utf-8")
    Path("in.jsonl").write_text(INPUTS, encoding="utf-8")


def _explain(pattern: str, *, why_not: bool = False) -> Result:
    args = ["explain", "-r", "claims.cvg", "--facts", "in.jsonl"]
    args += ["--why-not", pattern] if why_not else [pattern]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("why_not", [False, True])
def test_an_unquoted_value_is_an_error_that_suggests_the_string(why_not: bool) -> None:
    result = _explain("Assessment(claim: C2)", why_not=why_not)
    assert result.exit_code == 2, result.output
    out = result.output
    assert "`C2` is a bare name, and a pattern here has no variables" in out
    assert "<pattern>:1:19" in out
    assert 'did you mean the string "C2"?' in out
    assert "'Assessment(claim: \"C2\")'" in out
    assert "Traceback" not in out and isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("why_not", [False, True])
def test_an_unknown_type_is_an_error_with_did_you_mean(why_not: bool) -> None:
    result = _explain('Assesment(claim: "C2")', why_not=why_not)
    assert result.exit_code == 2, result.output
    assert "unknown type `Assesment`" in result.output
    assert "did you mean `Assessment`?" in result.output
    assert "can only be given as input" not in result.output


def test_an_unknown_field_is_an_error_with_did_you_mean() -> None:
    result = _explain('Assessment(claimm: "C2")')
    assert result.exit_code == 2, result.output
    assert "Assessment has no field `claimm`" in result.output
    assert "did you mean `claim`?" in result.output
    assert "<pattern>:1:12" in result.output


def test_a_value_of_the_wrong_type_is_an_error() -> None:
    result = _explain("Assessment(claim: 2)")
    assert result.exit_code == 2, result.output
    assert "field `claim` is str, matched against int" in result.output


def test_a_misspelt_enum_member_is_an_error_with_did_you_mean() -> None:
    result = _explain("Assessment(verdict: deni)")
    assert result.exit_code == 2, result.output
    assert "did you mean `deny`?" in result.output


def test_a_bare_name_in_a_float_field_asks_for_a_value() -> None:
    result = _explain("Claim(amount: big)")
    assert result.exit_code == 2, result.output
    assert "write a value of type float, or `_` for any value" in result.output


def test_good_patterns_still_explain() -> None:
    for pattern in ('Assessment(claim: "C2", verdict: deny)',
                    "Assessment(verdict: Verdict.deny)", "Assessment(claim: _)"):
        result = _explain(pattern)
        assert result.exit_code == 0, (pattern, result.output)
        assert 'Assessment(claim: "C2", verdict: deny, score: 0.5)' in result.output
