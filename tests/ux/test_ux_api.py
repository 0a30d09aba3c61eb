"""The Python API given bad arguments: a ConvergeError (CheckError, InputError) for bad
rulesets and facts, naming where; a TypeError or ValueError naming the argument for a
programming mistake — never an IndexError or AttributeError from deep inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules.errors import CheckError, InputError

RULESET = "ruleset t\nfact A { key s: str, n: int }\n"


@pytest.fixture
def ruleset() -> converge_rules.Ruleset:
    return converge_rules.loads(RULESET, plugins=False)


@pytest.mark.parametrize(("facts", "message"), [
    (["A"], r"<facts>:1: expected a \(type name, fields\) pair, got 'A'"),
    ([("A", {"s": "x", "n": 1}), ("A", {"s": "y", "n": 2}, 3)], r"<facts>:2: expected a"),
    ([(3, {"s": "x", "n": 1})], "expected a"),
    ({"A": {"s": "x", "n": 1}}, "not one mapping"),
    # found: a file name was read as facts, a character each ("got 'i'")
    ("in.jsonl", r"<facts>: facts must be \(type name, fields\) pairs, not 'in.jsonl'\n"
                 r"  help: to read a file of facts, pass read_facts\(ruleset, PATH\)"),
    (Path("in.jsonl"), "pairs, not PosixPath"),
    # a fact as JSON Lines writes it: the pair to write instead
    ([{"A": {"s": "x", "n": 1}}], r"help: write \('A', \{…\}\) for \{'A': \{…\}\}"),
    ([("A", None)], "the fields of A must be an object"),
    ([("Zz", {})], "unknown fact type `Zz`"),
])
def test_bad_fact_pairs_are_input_errors(ruleset: converge_rules.Ruleset, facts: Any,
                                         message: str) -> None:
    with pytest.raises(InputError, match=message):
        converge_rules.run(ruleset, facts)


def test_pairs_may_be_lists(ruleset: converge_rules.Ruleset) -> None:
    result = converge_rules.run(ruleset, [["A", {"s": "x", "n": 1}]])  # type: ignore[list-item]
    assert result.facts("A") == [{"s": "x", "n": 1}]


@pytest.mark.parametrize("text", [b"ruleset x\n", None])
def test_loads_wants_text(text: Any) -> None:
    with pytest.raises(TypeError, match="loads\\(\\) takes the ruleset text as str"):
        converge_rules.loads(text)


def test_run_wants_a_loaded_ruleset() -> None:
    with pytest.raises(TypeError, match="run\\(\\) takes a Ruleset"):
        converge_rules.run("t.cvg", [])  # type: ignore[arg-type]


@pytest.mark.parametrize("workers", [0, -1])
def test_run_wants_a_positive_worker_count(ruleset: converge_rules.Ruleset,
                                           workers: int) -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        converge_rules.run(ruleset, [], executor="threads", workers=workers)


def test_load_of_a_missing_file_or_a_directory_is_a_check_error(tmp_path: Path) -> None:
    with pytest.raises(CheckError, match="not found"):
        converge_rules.load(tmp_path / "nope.cvg", plugins=False)
    with pytest.raises(CheckError, match="it is a directory"):
        converge_rules.load(tmp_path, plugins=False)
