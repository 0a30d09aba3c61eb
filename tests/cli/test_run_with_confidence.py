"""``converge run --format json --with-confidence`` (issue 10, item 13): the results
carry what policies rank facts by (the confidence a fact was emitted with and its
evaluation scores), which the plain JSON result has no room for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import converge_rules
from converge_rules.cli import main

ROUTES = """\
ruleset routes

fact Trip { key id: str }
fact Plan { key id: str, route: str }

agent plan {
  when Trip(id)
  emit Plan(id: id, route: "direct") confidence 0.7
}

agent judge {
  when p: Plan(route: "direct")
  evaluate p score 0.9 reason "short"
}
"""


@pytest.fixture(autouse=True)
def _files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("routes.cvg").write_text(ROUTES, encoding="utf-8")
    Path("in.jsonl").write_text('{"Trip": {"id": "t1"}}\n', encoding="utf-8")


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["run", "routes.cvg", "-f", "in.jsonl", *args])


def test_json_with_confidence_carries_confidence_and_scores() -> None:
    rich = _run("--format", "json", "--with-confidence")
    assert rich.exit_code == 0, rich.output
    facts = json.loads(rich.output)["facts"]
    assert facts["Plan"] == [{
        "id": "t1", "route": "direct", "@confidence": 0.7, "@score": 0.9,
        "@evaluations": [{"agent": "judge", "score": 0.9, "reason": "short"}]}]
    assert facts["Trip"] == [{"id": "t1", "@confidence": 1.0, "@score": None,
                              "@evaluations": []}]


def test_plain_json_is_unchanged() -> None:
    plain = _run("--format", "json")
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.output)["facts"]["Plan"] == [{"id": "t1", "route": "direct"}]


def test_with_confidence_needs_the_json_format() -> None:
    result = _run("--with-confidence")
    assert result.exit_code == 2
    assert "give --format json too" in result.output


def test_the_api_gives_the_same() -> None:
    ruleset = converge_rules.loads(ROUTES, plugins=False)
    result = converge_rules.run(ruleset, [("Trip", {"id": "t1"})])
    assert result.decisions("Plan") == [{
        "@confidence": 0.7, "@score": 0.9,
        "@evaluations": [{"agent": "judge", "score": 0.9, "reason": "short"}]}]
    assert result.to_dict(with_confidence=True)["facts"]["Plan"][0]["@score"] == 0.9
    assert "@score" not in result.to_dict()["facts"]["Plan"][0]
