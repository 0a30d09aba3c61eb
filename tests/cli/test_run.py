"""``converge run``: input formats, the JSON document, tables, exit codes per status,
input and ruleset errors, traces across runs and executors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converge_rules.cli import main
from converge_rules.integrity import strip_hash

REPO = Path(__file__).resolve().parents[2]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"
PRICING_INPUT = REPO / "rulesets" / "pricing" / "input.jsonl"

SHOP = """\
ruleset shop
root "price everything" {
  max_cycles = 20
  require count(Cost()) == count(Price())
}
fact Cost  { key sku: str, amount: float, tags: list[str] = [] }
fact Quote { sku: str, vendor: str, amount: float }
fact Price { key sku: str, amount: float }
agent markup { when Cost(sku, amount) emit Price(sku: sku, amount: round(amount * 1.2, 2)) }
agent match tier 1 { when Cost(sku) and Quote(sku, amount) emit Price(sku: sku, amount: amount) }
policy Price { resolve by lowest amount }
"""

CONFLICT = """\
ruleset strict
fact Cost  { key sku: str, amount: float }
fact Price { key sku: str, amount: float }
agent a { when Cost(sku, amount) emit Price(sku: sku, amount: amount) }
agent b { when Cost(sku, amount) emit Price(sku: sku, amount: amount + 1.0) }
policy Price { reject }
"""

COUNTER = """\
ruleset counter
root "count" { max_cycles = 3 }
fact Count { key id: str, n: int }
agent step { when Count(id, n) where n < 10 emit Count(id: id, n: n + 1) }
policy Count { resolve by latest }
"""

UNMET = """\
ruleset goal
root "an alert" { require count(Alert()) > 0 }
fact Cost  { sku: str, amount: float }
fact Alert { sku: str }
agent alert { when Cost(sku, amount) where amount < 0.0 emit Alert(sku: sku) }
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["run", *(str(a) for a in args)])


def jsonl(*facts: dict[str, object]) -> str:
    return "".join(json.dumps(f) + "\n" for f in facts)


@pytest.fixture()
def shop(tmp_path: Path) -> Path:
    return write(tmp_path, "shop.cvg", SHOP)


# ------------------------------------------------------------------------ json


def test_json_document_has_the_documented_shape_and_sorted_facts(
    tmp_path: Path, shop: Path
) -> None:
    facts = write(tmp_path, "in.jsonl", jsonl(
        {"Cost": {"sku": "B", "amount": 2.0}},
        {"Cost": {"sku": "A", "amount": 10.0, "tags": ["x"]}},
        {"Quote": {"sku": "A", "vendor": "v", "amount": 11.0}},
        {"Quote": {"sku": "B", "vendor": "v", "amount": 1.5}},
    ))
    result = invoke(shop, "--facts", facts, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"status", "cycles", "facts", "conflicts", "budget", "unmet"}
    assert doc["status"] == "converged"
    assert doc["cycles"] >= 1
    assert doc["facts"]["Cost"] == [
        {"sku": "A", "amount": 10.0, "tags": ["x"]},
        {"sku": "B", "amount": 2.0, "tags": []},
    ]
    assert doc["facts"]["Price"] == [{"sku": "A", "amount": 11.0}, {"sku": "B", "amount": 1.5}]
    assert [q["sku"] for q in doc["facts"]["Quote"]] == ["A", "B"]
    assert {c["type"] for c in doc["conflicts"]} == {"Price"}
    assert doc["budget"]["max_cycles"]["limit"] == 20
    assert doc["unmet"] == []
    assert result.stderr == ""  # no progress display off a terminal


def test_pricing_quickstart_converges_with_the_expected_prices() -> None:
    result = invoke(PRICING, "--facts", PRICING_INPUT, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "converged"
    assert doc["facts"]["Price"] == [
        {"sku": "A1", "channel": "web", "amount": 11.88},   # undercut beats cost_plus
        {"sku": "B2", "channel": "web", "amount": 24.0},    # quote too close: cost_plus
        {"sku": "C3", "channel": "web", "amount": 7.43},    # two undercuts: lowest amount
    ]
    assert "Alert" not in doc["facts"]
    reasons = sorted(c["reason"] for c in doc["conflicts"])
    assert reasons == ["resolve by highest confidence", "resolve by lowest amount"]


def test_json_array_and_several_facts_options(tmp_path: Path, shop: Path) -> None:
    costs = write(tmp_path, "costs.json", json.dumps([{"Cost": {"sku": "A", "amount": 1.0}}]))
    quotes = write(tmp_path, "quotes.jsonl",
                   jsonl({"Quote": {"sku": "A", "vendor": "v", "amount": 0.5}}))
    result = invoke(shop, "-f", costs, "-f", quotes, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["facts"]["Price"] == [{"sku": "A", "amount": 0.5}]


def test_csv_input_is_typed_from_the_declaration(tmp_path: Path, shop: Path) -> None:
    csv = write(tmp_path, "costs.csv", "sku,amount,tags\nA,10,\"[\"\"x\"\"]\"\nB,2.5,\n")
    result = invoke(shop, "--facts", f"Cost={csv}", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["facts"]["Cost"] == [
        {"sku": "A", "amount": 10.0, "tags": ["x"]}, {"sku": "B", "amount": 2.5, "tags": []},
    ]
    assert doc["facts"]["Price"] == [{"sku": "A", "amount": 12.0}, {"sku": "B", "amount": 3.0}]


def test_no_facts_runs_on_an_empty_context(shop: Path) -> None:
    result = invoke(shop, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["facts"] == {} and doc["cycles"] == 0


# ----------------------------------------------------------------- statuses


def test_conflict_exits_1_and_names_the_key(tmp_path: Path) -> None:
    ruleset = write(tmp_path, "strict.cvg", CONFLICT)
    facts = write(tmp_path, "in.jsonl", jsonl({"Cost": {"sku": "A1", "amount": 1.0}}))
    result = invoke(ruleset, "--facts", facts)
    assert result.exit_code == 1
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("conflict after 1 cycle:")
    assert "Price (sku: 'A1')" in last and "rejects" in last


def test_budget_exceeded_exits_1_and_names_the_budget(tmp_path: Path) -> None:
    ruleset = write(tmp_path, "counter.cvg", COUNTER)
    facts = write(tmp_path, "in.jsonl", jsonl({"Count": {"id": "a", "n": 0}}))
    result = invoke(ruleset, "--facts", facts)
    assert result.exit_code == 1
    assert "budget_exceeded (max_cycles) after 3 cycles" in result.stdout
    doc = json.loads(invoke(ruleset, "--facts", facts, "--format", "json").stdout)
    assert doc["status"] == "budget_exceeded"
    assert doc["budget"]["max_cycles"] == {"limit": 3, "used": 3, "exceeded": True}
    assert doc["facts"]["Count"] == [{"id": "a", "n": 3}]  # partial results


def test_unmet_goal_exits_1_and_names_the_goal(tmp_path: Path) -> None:
    ruleset = write(tmp_path, "goal.cvg", UNMET)
    facts = write(tmp_path, "in.jsonl", jsonl({"Cost": {"sku": "A", "amount": 1.0}}))
    result = invoke(ruleset, "--facts", facts)
    assert result.exit_code == 1
    assert "unmet_goal after" in result.stdout
    assert "require count(Alert()) > 0" in result.stdout


# ------------------------------------------------------------------- tables


def test_table_format_prints_a_table_per_type_and_the_status(shop: Path, tmp_path: Path) -> None:
    facts = write(tmp_path, "in.jsonl", jsonl(
        {"Cost": {"sku": "A", "amount": 10.0}},
        {"Quote": {"sku": "A", "vendor": "acme", "amount": 9.0}},
    ))
    result = invoke(shop, "--facts", facts)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("Cost (1)") < out.index("Quote (1)") < out.index("Price (1)")
    assert "sku (key)" in out and "acme" in out
    assert "Conflicts (1)" in out and "resolve by lowest amount" in out
    assert out.strip().splitlines()[-1] == "converged in 1 cycle"


def test_max_rows_limits_each_table(tmp_path: Path, shop: Path) -> None:
    facts = write(tmp_path, "in.jsonl", jsonl(
        *({"Cost": {"sku": f"S{i}", "amount": 1.0}} for i in range(5))))
    out = invoke(shop, "--facts", facts, "--max-rows", "2").stdout
    assert "S1" in out and "S4" not in out and "and 3 more" in out


# --------------------------------------------------------------- bad input


@pytest.mark.parametrize(("line", "expected"), [
    ('{"Cost": {"sku": "A", "amount": "ten"}}', ["Cost.amount must be float", '"ten"']),
    ('{"Cost": {"sku": "A", "amont": 1.0}}', ["Cost has no field `amont`", "`amount`"]),
    ('{"Cots": {"sku": "A", "amount": 1.0}}', ["unknown fact type `Cots`", "`Cost`"]),
    ('{"Cost": {"sku": "A", "amount": 1.0', ["not valid JSON"]),
])
def test_bad_input_exits_2_naming_file_line_type_and_field(
    tmp_path: Path, shop: Path, line: str, expected: list[str]
) -> None:
    trace = tmp_path / "trace.jsonl"
    facts = write(tmp_path, "in.jsonl", '{"Cost": {"sku": "Z", "amount": 1.0}}\n' + line + "\n")
    result = invoke(shop, "--facts", facts, "--trace", trace)
    assert result.exit_code == 2
    assert f"{facts}:2:" in result.stderr
    for text in expected:
        assert text in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == "" and not trace.exists()  # nothing ran


def test_bad_csv_cell_names_the_line_and_field(tmp_path: Path, shop: Path) -> None:
    csv = write(tmp_path, "costs.csv", "sku,amount\nA,1.0\nB,cheap\n")
    result = invoke(shop, "--facts", f"Cost={csv}")
    assert result.exit_code == 2
    assert f"{csv}:3:" in result.stderr and "Cost.amount" in result.stderr


def test_missing_facts_file_exits_2(tmp_path: Path, shop: Path) -> None:
    result = invoke(shop, "--facts", tmp_path / "nope.jsonl")
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_ruleset_errors_are_rendered_and_exit_2(tmp_path: Path) -> None:
    ruleset = write(tmp_path, "bad.cvg", "ruleset bad\nfact A { x: int }\n"
                                         "agent a { when B(x) emit A(x: x) }\n")
    result = invoke(ruleset)
    assert result.exit_code == 2
    assert "CVG1" in result.stderr and "bad.cvg:3" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_syntax_error_exits_2(tmp_path: Path) -> None:
    ruleset = write(tmp_path, "bad.cvg", "ruleset bad\nfact A { x: int \n")
    result = invoke(ruleset)
    assert result.exit_code == 2 and "CVG0" in result.stderr


def test_unknown_executor_is_a_usage_error(shop: Path) -> None:
    result = invoke(shop, "--executor", "thread")
    assert result.exit_code == 2
    assert "unknown executor 'thread'" in result.stderr and "threads" in result.stderr


def test_missing_ruleset_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(tmp_path / "none.cvg")
    assert result.exit_code == 2 and "does not exist" in result.stderr


# ------------------------------------------------------------------- trace


def test_trace_is_written_and_identical_across_runs_and_executors(tmp_path: Path) -> None:
    traces = []
    for i, extra in enumerate([(), (), ("--executor", "threads", "--workers", "4")]):
        trace = tmp_path / f"trace{i}.jsonl"
        result = invoke(PRICING, "--facts", PRICING_INPUT, "--trace", trace, "--format",
                        "json", *extra)
        assert result.exit_code == 0, result.output
        traces.append((trace.read_bytes(), result.stdout))
    assert traces[0] == traces[1] == traces[2]
    events = [json.loads(strip_hash(line)) for line in traces[0][0].decode().splitlines()]
    assert events[-1] == {"event": "status", "status": "converged",
                          "detail": events[-1]["detail"]}
    assert {"fact_added", "cycle_start", "cycle_end", "conflict"} <= {e["event"] for e in events}


def test_help_teaches_with_examples() -> None:
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0
    assert "converge run pricing.cvg --facts input.jsonl" in result.stdout
    assert "Exit codes" in result.stdout and "Quote=quotes.csv" in result.stdout


def test_max_rows_limits_the_conflicts_table_too(tmp_path: Path) -> None:
    ruleset = write(tmp_path, "counter.cvg", COUNTER)
    facts = write(tmp_path, "in.jsonl", jsonl({"Count": {"id": "a", "n": 0}}))
    out = invoke(ruleset, "--facts", facts, "--max-rows", "1").stdout
    assert "Conflicts (3)" in out and "and 2 more" in out
