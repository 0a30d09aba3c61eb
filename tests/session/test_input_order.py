"""Input order decides `resolve by latest` (and `earliest`) among input facts: of two
input facts for one key, the later line is the latest (it used to be a tie)."""

from __future__ import annotations

import json
from pathlib import Path

import converge_rules

RULESET = """ruleset readings "the newest reading of a sensor wins"

fact Reading {{ key sensor: str, value: float }}

policy Reading {{ resolve by {criterion} }}
"""


def _load(criterion: str) -> converge_rules.Ruleset:
    return converge_rules.loads(RULESET.format(criterion=criterion), plugins=False)


def test_the_later_of_two_input_facts_for_one_key_is_the_latest() -> None:
    result = converge_rules.run(_load("latest"), [
        ("Reading", {"sensor": "s1", "value": 1.0}),
        ("Reading", {"sensor": "s1", "value": 2.0}),
        ("Reading", {"sensor": "s1", "value": 3.0}),
    ])
    assert result.status == "converged"
    assert [f["value"] for f in result.facts("Reading")] == [3.0]
    [conflict] = result.conflicts
    assert conflict["reason"] == "resolve by latest"


def test_earliest_keeps_the_first_input_fact() -> None:
    result = converge_rules.run(_load("earliest"), [
        ("Reading", {"sensor": "s1", "value": 1.0}),
        ("Reading", {"sensor": "s1", "value": 2.0}),
    ])
    assert result.status == "converged"
    assert [f["value"] for f in result.facts("Reading")] == [1.0]


def test_a_value_repeated_on_a_later_line_is_the_later_input(tmp_path: Path) -> None:
    facts = tmp_path / "readings.jsonl"
    facts.write_text("".join(json.dumps({"Reading": {"sensor": "s1", "value": v}}) + "\n"
                             for v in (1.0, 2.0, 1.0)))
    ruleset = _load("latest")
    result = converge_rules.run(ruleset, converge_rules.read_facts(ruleset, facts))
    assert [f["value"] for f in result.facts("Reading")] == [1.0]
