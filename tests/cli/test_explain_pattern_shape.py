"""``converge explain`` reads its pattern as an ``expect`` step does, and nothing in it
is dropped or left to match anything.

Met as: ``explain 'Assessment(claim)'`` listed every Assessment (the bare field bound a
variable the query never used: a wildcard), and ``explain 'not Assessment(claim: "C2")'``
explained the Assessment of C2 as if the `not` were not there — with a ruleset or only
a trace alike.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main

CLAIMS = """\
ruleset claims

fact Claim { key id: str, amount: float }
fact Assessment { key claim: str, score: float }

agent assess {
  when Claim(id, amount)
  emit Assessment(claim: id, score: amount / 10000.0)
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
    ran = CliRunner().invoke(main, ["run", "claims.cvg", "--facts", "in.jsonl",
                                    "--trace", "run.jsonl"])
    assert ran.exit_code == 0, ran.output


SOURCES = {"ruleset": ["-r", "claims.cvg", "--facts", "in.jsonl"],
           "trace": ["--trace", "run.jsonl"]}


def _explain(pattern: str, source: str, *, why_not: bool = False) -> Result:
    args = ["explain", *SOURCES[source]]
    args += ["--why-not", pattern] if why_not else [pattern]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_a_bare_field_is_an_error_not_a_wildcard(source: str) -> None:
    result = _explain("Assessment(claim)", source)
    assert result.exit_code == 2, result.output
    assert "`claim` alone" in result.output
    assert "`claim: _`" in result.output
    assert 'Assessment(claim: "C1"' not in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_a_bare_field_in_why_not_is_an_error() -> None:
    result = _explain("Assessment(claim)", "ruleset", why_not=True)
    assert result.exit_code == 2, result.output
    assert "<pattern>:1:12" in result.output


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_not_is_an_error_that_points_to_why_not(source: str) -> None:
    result = _explain('not Assessment(claim: "C2")', source)
    assert result.exit_code == 2, result.output
    assert "--why-not" in result.output
    assert "by agent assess" not in result.output


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_a_binder_is_an_error(source: str) -> None:
    result = _explain('a: Assessment(claim: "C2")', source)
    assert result.exit_code == 2, result.output
    assert "remove `a:`" in result.output


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_a_field_with_a_value_still_explains(source: str) -> None:
    result = _explain('Assessment(claim: "C2")', source)
    assert result.exit_code == 0, result.output
    assert "by agent assess" in result.output and '"C1"' not in result.output


def test_none_is_not_taken_for_a_string() -> None:
    # Met as: 'Claim(note: none)' answered 'did you mean the string "none"?'.
    Path("claims.cvg").write_text(CLAIMS.replace("amount: float }",
                                                 "amount: float, note: str? }"),
                                  encoding="utf-8")
    result = _explain("Claim(note: none)", "ruleset")
    assert result.exit_code == 2, result.output
    assert "no literal for none" in result.output
    assert 'the string "none"' not in result.output


def test_no_match_of_an_input_type_says_why_not_in_words() -> None:
    # Met as: a "why not:" heading with nothing under it.
    result = _explain('Claim(id: "C9")', "ruleset")
    assert result.exit_code == 1, result.output
    assert result.output.rstrip().endswith(
        "no agent emits Claim: it can only be given as input"), result.output
