"""The Python API given bad arguments: a ConvergeError (CheckError, InputError) for bad
rulesets and facts, naming where; a TypeError or ValueError naming the argument for a
programming mistake — never an IndexError or AttributeError from deep inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules.errors import CheckError, InputError

REPO = Path(__file__).resolve().parents[2]
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


@pytest.mark.parametrize("facts", [None, 3])
def test_facts_that_are_no_pairs_at_all_are_input_errors(ruleset: converge_rules.Ruleset,
                                                         facts: Any) -> None:
    # found: run(ruleset, None) was "TypeError: 'NoneType' object is not iterable"
    with pytest.raises(InputError, match=r"facts must be \(type name, fields\) pairs, not "
                                         r"(NoneType|int)[\s\S]*pass \(\) for no facts"):
        converge_rules.run(ruleset, facts)


COUNTER = REPO / "rulesets" / "counter" / "counter.cvg"
COUNTER_FACTS = [("Start", {"id": "a"}), ("Count", {"id": "a", "n": 0})]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"progress": 5}, TypeError, "progress takes a function"),
    ({"timings": 5}, TypeError, r"timings takes a converge_rules.engine.Timings"),
    ({"tools": 5}, TypeError, "tools takes a mapping of tool names to functions"),
    ({"tools": {"fx_rate": 1.1}}, TypeError, r"tools\['fx_rate'\] must be a function"),
    ({"now": "2026-01-01"}, TypeError, "now must be a datetime"),
])
@pytest.mark.parametrize("where", ["store", "trace"])
def test_bad_run_arguments_leave_no_store_job_and_no_trace(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str, where: str,
) -> None:
    """Found: progress=5 and timings=5 failed after the first cycle (a TypeError, an
    AttributeError), leaving an aborted job in the store or half a trace file; a bad
    `now` left a new store file behind."""
    ruleset = converge_rules.load(COUNTER)
    target = tmp_path / ("run.db" if where == "store" else "trace.jsonl")
    with pytest.raises(error, match=match):
        converge_rules.run(ruleset, COUNTER_FACTS, **{where: str(target)}, **kwargs)
    assert not target.exists()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"progress": 5}, "progress takes a function"),
    ({"timings": object()}, "timings takes"),
    ({"observer": 5}, "observer takes a callable"),
    ({"tools": ["fx_rate"]}, "tools takes a mapping"),
])
def test_resume_refuses_bad_arguments_before_it_resumes(tmp_path: Path,
                                                        kwargs: dict[str, Any],
                                                        match: str) -> None:
    ruleset = converge_rules.load(COUNTER)
    store = tmp_path / "run.db"
    converge_rules.run(ruleset, COUNTER_FACTS, store=str(store), stop=lambda: True)
    with pytest.raises(TypeError, match=match):
        converge_rules.resume(str(store), ruleset=ruleset, **kwargs)
    assert converge_rules.resume(str(store), ruleset=ruleset).status == "converged"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"progress": 5}, "progress takes a function"),
    ({"stop": True}, "stop takes a function"),
    ({"tools": {"fx_rate": None}}, r"tools\['fx_rate'\] must be a function"),
])
def test_a_session_refuses_bad_arguments_as_run_does(kwargs: dict[str, Any],
                                                     match: str) -> None:
    from converge_rules import Session

    with pytest.raises(TypeError, match=match):
        Session(converge_rules.load(COUNTER), COUNTER_FACTS, **kwargs)


def test_bad_facts_for_a_store_leave_no_new_store_file(tmp_path: Path) -> None:
    ruleset = converge_rules.load(COUNTER)
    with pytest.raises(InputError, match="unknown fact type `Nope`"):
        converge_rules.run(ruleset, [("Nope", {})], store=str(tmp_path / "run.db"))
    assert not (tmp_path / "run.db").exists()
    done = converge_rules.run(ruleset, iter(COUNTER_FACTS), store=str(tmp_path / "run.db"))
    assert done.status == "converged"


@pytest.mark.parametrize(("args", "match"), [
    # found: a list of paths was "['in.jsonl']: cannot read the file: No such file"
    (lambda rs: (rs, ["in.jsonl"]), r"takes each source as an argument of its own .* got "
                                    r"list \['in.jsonl'\]; write read_facts\(ruleset, \*paths\)"),
    (lambda rs: (rs, None), "got NoneType None"),
    # found: a path given for the ruleset was "AttributeError: 'str' object has no
    # attribute 'program'"
    (lambda rs: ("t.cvg", "in.jsonl"), r"read_facts\(\) takes a Ruleset"),
])
def test_read_facts_wrong_arguments_say_what_it_takes(ruleset: converge_rules.Ruleset,
                                                      args: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        converge_rules.read_facts(*args(ruleset))
