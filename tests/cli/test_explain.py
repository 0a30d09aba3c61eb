"""``converge explain``: derivation trees from a trace, and --why-not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main

SHOP = (Path(__file__).parents[1] / "testing" / "data" / "shop.cvg").read_text("utf-8")

FACTS = """\
{"Cost": {"sku": "A1", "amount": 10.0}}
{"Quote": {"sku": "A1", "vendor": "acme", "amount": 12.0}}
{"Cost": {"sku": "B2", "amount": 5.0}}
"""


@pytest.fixture(autouse=True)
def _files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("shop.cvg").write_text(SHOP, encoding="utf-8")
    Path("in.jsonl").write_text(FACTS, encoding="utf-8")
    from converge_rules.compiler.compile import compile_ruleset
    from converge_rules.engine import read_all, run
    from converge_rules.language.checks.checker import check_file

    program = compile_ruleset(check_file("shop.cvg"))
    run(program, read_all(program, ["in.jsonl"]), trace="run.jsonl")


def _explain(*args: str) -> Result:
    return CliRunner().invoke(main, ["explain", *args])


def test_derivation_tree_from_trace_alone() -> None:
    result = _explain("--trace", "run.jsonl", 'Price(sku: "A1")')
    assert result.exit_code == 0, result.output
    out = result.output
    # without the ruleset, fields come in the trace's (sorted) order
    assert out.startswith('Price(amount: 11.88, channel: "web", sku: "A1")')
    assert "by agent undercut in cycle 1" in out
    assert 'Cost(amount: 10.0, sku: "A1")  — input fact' in out
    assert "won a conflict in cycle 1" in out


def test_enum_member_bare_without_ruleset() -> None:
    result = _explain("--trace", "run.jsonl", 'Price(sku: "B2", channel: web)')
    assert result.exit_code == 0, result.output
    assert "by agent cost_plus" in result.output


def test_ruleset_adds_rule_spans_and_bindings() -> None:
    result = _explain("--trace", "run.jsonl", "-r", "shop.cvg", 'Price(sku: "A1")')
    assert result.exit_code == 0, result.output
    line = SHOP.splitlines().index("agent undercut tier 1 {") + 1
    assert f"by agent undercut at shop.cvg:{line}:1 in cycle 1" in result.output
    assert 'with cost = 10.0, sku = "A1", theirs = 12.0' in result.output
    assert 'Price(sku: "A1", channel: web, amount: 11.88)' in result.output


def test_json_tree() -> None:
    result = _explain("--trace", "run.jsonl", "--format", "json", 'Price(sku: "A1")')
    data = json.loads(result.output)
    fact = data["facts"][0]
    assert fact["fields"]["amount"] == 11.88
    step = fact["derivations"][0]
    assert step["agent"] == "undercut" and step["cycle"] == 1
    assert [s["type"] for s in step["support"]] == ["Cost", "Quote"]
    assert all(s["input"] for s in step["support"])


def test_no_match_exits_1_and_says_why_with_ruleset() -> None:
    result = _explain("--trace", "run.jsonl", "-r", "shop.cvg", 'Alert(sku: "A1")')
    assert result.exit_code == 1
    assert 'no fact matches Alert(sku: "A1")' in result.output
    assert "agent below_cost" in result.output


def test_why_not_names_the_first_failing_condition() -> None:
    result = _explain("-r", "shop.cvg", "--facts", "in.jsonl", "--why-not",
                      'Alert(sku: "B2")')
    assert result.exit_code == 0, result.output
    assert "agent below_cost" in result.output
    # the match that would give Alert(sku: "B2"), with the values the guard read
    assert "`where amount < cost` was false: amount = 6.0, cost = 5.0" in result.output


def test_facts_take_run_s_short_option_too() -> None:
    # found: `converge explain -r shop.cvg -f in.jsonl …` was "No such option '-f'",
    # though `converge run` takes -f for the same --facts
    short = _explain("-r", "shop.cvg", "-f", "in.jsonl", "--why-not", 'Alert(sku: "B2")')
    long = _explain("-r", "shop.cvg", "--facts", "in.jsonl", "--why-not", 'Alert(sku: "B2")')
    assert short.exit_code == 0, short.output
    assert short.output == long.output


def test_why_not_reports_a_lost_conflict() -> None:
    result = _explain("--trace", "run.jsonl", "-r", "shop.cvg", "--why-not",
                      'Price(sku: "A1", amount: 12.0)')
    assert result.exit_code == 0, result.output
    assert 'Price(sku: "A1", channel: web, amount: 12.0) lost a conflict in cycle 1' \
        in result.output
    assert "agent cost_plus" in result.output


def test_why_not_json() -> None:
    result = _explain("--trace", "run.jsonl", "-r", "shop.cvg", "--format", "json",
                      "--why-not", 'Alert(sku: "B2")')
    data = json.loads(result.output)
    assert data["reasons"][0]["agent"] == "below_cost"
    assert data["present"] == []


def test_usage_errors() -> None:
    assert _explain("--trace", "run.jsonl").exit_code == 2
    assert _explain('Price(sku: "A1")').exit_code == 2
    assert _explain("--trace", "run.jsonl", "--why-not", "Price()").exit_code == 2
    bad = _explain("--trace", "run.jsonl", 'Price(sku: ')
    assert bad.exit_code == 2 and "cannot read the pattern" in bad.output
    Path("bad.jsonl").write_text("{not json\n", encoding="utf-8")
    broken = _explain("--trace", "bad.jsonl", "Price()")
    assert broken.exit_code == 2 and "bad.jsonl:1" in broken.output


def test_a_job_of_a_store_is_explained_as_its_trace_is() -> None:
    # found: docs/store.md said explain reads a store, but explain took a trace only
    # (and `--trace run.db` said "not UTF-8 text")
    run = CliRunner().invoke(main, ["run", "shop.cvg", "-f", "in.jsonl", "--store", "run.db"])
    assert run.exit_code == 0, run.output
    from_trace = _explain("--trace", "run.jsonl", 'Price(sku: "A1")')
    from_store = _explain("--store", "run.db", 'Price(sku: "A1")')
    assert from_store.exit_code == 0, from_store.output
    assert from_store.output == from_trace.output
    assert _explain("--store", "run.db", "--job", "1", "Price()").exit_code == 0
    missing = _explain("--store", "run.db", "--job", "2", "Price()")
    assert missing.exit_code == 2 and "has no job 2" in missing.output
    wrong = _explain("--trace", "run.db", "Price()")
    assert wrong.exit_code == 2 and "give it as --store run.db" in wrong.output
    assert _explain("--job", "1", "--trace", "run.jsonl", "Price()").exit_code == 2
    for recorded in (["--trace", "run.jsonl"], ["--store", "run.db"]):  # facts unread
        both = _explain(*recorded, "-r", "shop.cvg", "--facts", "in.jsonl", "Price()")
        assert both.exit_code == 2 and "give --trace or --store, or --facts" in both.output
    assert "Traceback" not in missing.output + wrong.output


def test_why_not_writes_the_guard_as_the_formatter_does() -> None:
    # The guard is printed by the one unparser: a negated sum keeps its parentheses
    # (printed as `-x + y` before) and no others are added (was `((x * 2) + 1)`).
    Path("neg.cvg").write_text(
        "ruleset neg\n"
        "fact A { key k: str, x: float, y: float }\n"
        "fact B { k: str }\n"
        "agent flip { when A(k, x, y) where -(x + y) > x * 2 + 1 emit B(k: k) }\n",
        encoding="utf-8")
    Path("a.jsonl").write_text('{"A": {"k": "a", "x": 1.0, "y": 2.0}}\n', encoding="utf-8")
    result = _explain("-r", "neg.cvg", "--facts", "a.jsonl", "--why-not", 'B(k: "a")')
    assert result.exit_code == 0, result.output
    assert "`where -(x + y) > x * 2 + 1` was false: x = 1.0, y = 2.0" in result.output
