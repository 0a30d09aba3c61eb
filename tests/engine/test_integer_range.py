"""Integers are signed 64-bit, everywhere: input facts and tool answers outside the
range are refused, literals outside it are checker errors, and arithmetic leaving it
fails the agent with a clear reason (the test interpreter says the same). Before, an
integer past Python's 4,300-digit conversion limit was an internal error that cut the
trace, and anything smaller was carried into JSON no consumer reads as a 64-bit int."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules.analysis.interpret import EvalError, Fact, interpreter_for
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import read_facts, run, validate_pairs
from converge_rules.errors import CheckError, InputError
from converge_rules.language.checks.checked import FunctionSignature
from converge_rules.language.checks.checker import check_file
from converge_rules.language.syntax.nodes import Emit

INT_MAX = 2**63 - 1
INT_MIN = -(2**63)
RANGE = "is outside the 64-bit range (-9223372036854775808 to 9223372036854775807)"
CONSOLE_SCRIPT = Path(sys.executable).with_name("converge")

ITEMS = 'ruleset r "r"\nfact Item { name: str, n: int, size: float = 0.0 }\n'


def program() -> Any:
    return converge_rules.loads(ITEMS, plugins=False).program


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ input facts


def test_the_ends_of_the_range_are_integers_facts_can_hold(tmp_path: Path) -> None:
    path = write(tmp_path, "in.jsonl", f'{{"Item": {{"name": "a", "n": {INT_MAX}}}}}\n'
                                       f'{{"Item": {{"name": "b", "n": {INT_MIN}}}}}\n')
    assert [v[1] for _, v in read_facts(program(), path).rows] == [INT_MAX, INT_MIN]


@pytest.mark.parametrize(("name", "text", "line", "got"), [
    ("in.jsonl", '{"Item": {"name": "a", "n": 1}}\n{"Item": {"name": "b", "n": '
                 f"{INT_MAX + 1}}}}}\n", 2, str(INT_MAX + 1)),
    ("in.json", f'[\n  {{"Item": {{"name": "a", "n": 1}}}},\n  {{"Item": {{"name": "b",\n'
                f'    "n": {INT_MIN - 1}}}}}\n]\n', 3, str(INT_MIN - 1)),
    ("Item=in.csv", f"name,n\na,1\nb,{10**19}\n", 3, str(10**19)),
])
def test_an_input_integer_outside_the_range_names_file_line_and_field(
    tmp_path: Path, name: str, text: str, line: int, got: str,
) -> None:
    file = name.partition("=")[2] or name
    path = write(tmp_path, file, text)
    with pytest.raises(InputError) as info:
        read_facts(program(), f"Item={path}" if "=" in name else path)
    assert (info.value.source, info.value.line) == (str(path), line)
    column = " (column 2)" if name.endswith(".csv") else ""  # a CSV file names it
    assert info.value.message == f"Item.n{column} {RANGE}: got {got}"


@pytest.mark.parametrize(("name", "text", "line"), [
    ("in.jsonl", '{"Item": {"name": "a", "n": 1}}\n{"Item": {"name": "b", "n": 1'
                 + "0" * 5000 + "}}\n", 2),
    ("in.json", '[\n {"Item": {"name": "a",\n  "size": 1' + "0" * 5000 + ',\n  "n": 1}}\n]\n',
     3),
])
def test_an_integer_too_long_for_python_to_read_is_an_input_error(
    tmp_path: Path, name: str, text: str, line: int,
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as info:
        read_facts(program(), path)
    assert info.value.line == line
    assert info.value.message == f"an integer of 5,001 digits {RANGE}"


def test_csv_and_python_facts_with_an_integer_too_long_for_python(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "name,n\na,1" + "0" * 5000 + "\n")
    with pytest.raises(InputError) as info:
        read_facts(program(), f"Item={path}")
    assert info.value.line == 2
    assert info.value.help == f"write a whole number from {INT_MIN} to {INT_MAX}"
    with pytest.raises(InputError) as info:
        validate_pairs(program(), [("Item", {"name": "a", "n": -(10**5000)})])
    assert info.value.message == (f"Item.n {RANGE}: got a negative integer of about "
                                  "5,001 digits")


def test_converge_run_reports_a_huge_input_integer_as_bad_input(tmp_path: Path) -> None:
    write(tmp_path, "r.cvg", ITEMS)
    write(tmp_path, "in.jsonl", '{"Item": {"name": "a", "n": 1' + "0" * 5000 + "}}\n")
    done = subprocess.run([str(CONSOLE_SCRIPT), "run", "r.cvg", "-f", "in.jsonl"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2
    assert "internal error" not in done.stderr
    assert f"in.jsonl:1: an integer of 5,001 digits {RANGE}" in done.stderr


# ------------------------------------------------------------------ arithmetic

ARITHMETIC = """\
ruleset a "a"
fact Item { n: int, m: int }
fact Out { what: str, v: int }
agent times { when Item(n) emit Out(what: "times", v: n * n) }
agent plus { when Item(n) emit Out(what: "plus", v: n + n + n) }
agent minus { when Item(m) emit Out(what: "minus", v: 0 - m) }
agent negate { when Item(m) emit Out(what: "negate", v: -m) }
agent absolute { when Item(m) emit Out(what: "absolute", v: abs(m)) }
agent total { when Item(n) emit Out(what: "total", v: sum(Item(), n) + sum(Item(), n)) }
agent fine { when Item(n, m) emit Out(what: "fine", v: n + m) }
"""

BIG = {"n": 2**62, "m": INT_MIN}
REASONS = {
    "times": f"n * n = {2**124} {RANGE}",
    "plus": f"n + n = {2**63} {RANGE}",  # the first sum already leaves the range
    "minus": f"0 - m = {2**63} {RANGE}",
    "negate": f"-m = {2**63} {RANGE}",
    "absolute": f"abs(m) = {2**63} {RANGE}",
    "total": f"sum(Item(), n) + sum(Item(), n) = {2**63} {RANGE}",
}


def test_arithmetic_leaving_the_range_fails_the_agent_naming_the_expression() -> None:
    result = converge_rules.run(converge_rules.loads(ARITHMETIC, plugins=False),
                                [("Item", BIG)])
    assert result.status == "converged"
    assert result.facts("Out") == [{"what": "fine", "v": 2**62 + INT_MIN}]
    events = [json.loads(line) for line in result.trace.lines()]
    assert events[-1]["event"] == "status"  # the whole trace, nothing cut
    reasons = {e["agent"]: e["reason"] for e in events if e["event"] == "effect_discarded"}
    assert reasons == {agent: f"IntegerOverflow: integer overflow: {reason}"
                       for agent, reason in REASONS.items()}


@pytest.mark.parametrize("expr", ["n + " * 99 + "n", "-" * 99 + "n",
                                  "abs(" * 99 + "n" + ")" * 99, "-(" * 99 + "n" + ")" * 99])
def test_checked_arithmetic_nests_as_deep_as_the_language_allows(expr: str) -> None:
    # the checks must not add parentheses: Python refuses code nested 200 deep
    source = ('ruleset d "d"\nfact Item { n: int }\nfact Out { v: int }\n'
              f"agent a {{\n  when Item(n)\n  emit Out(v: {expr})\n}}\n")
    result = converge_rules.run(converge_rules.loads(source, plugins=False),
                                [("Item", {"n": 2})])
    assert result.facts("Out") == [{"v": eval(expr.replace("n", "2"))}]


def test_the_test_interpreter_agrees_on_integer_overflow() -> None:
    ruleset = converge_rules.loads(ARITHMETIC, plugins=False)
    interpreter = interpreter_for(ruleset.checked, facts={"Item": [Fact("Item", BIG)]})
    for agent in ruleset.checked.agents:
        (out,) = agent.outputs
        assert isinstance(out, Emit)
        expr = out.args[1].value
        if agent.name.name == "fine":
            assert interpreter.eval(expr, BIG) == 2**62 + INT_MIN
            continue
        with pytest.raises(EvalError) as info:
            interpreter.eval(expr, BIG)
        assert info.value.message == (f"IntegerOverflow: integer overflow: "
                                      f"{REASONS[agent.name.name]}")


def test_an_untyped_value_outside_the_range_fails_the_agent(tmp_path: Path) -> None:
    source = ('ruleset f "f"\nfact Item { n: int }\nfact Out { v: int }\n'
              "agent a {\n  when Item(n)\n  emit Out(v: grow(n))\n}\n")
    path = write(tmp_path, "f.cvg", source)
    checked = check_file(path, functions={"grow": FunctionSignature("grow", ("int",), "any")})
    program = compile_ruleset(checked, functions={"grow": lambda n: n * 10**4400})
    result = run(program, [("Item", {"n": 1})])
    (event,) = [json.loads(line) for line in result.trace.lines()
                if '"effect_discarded"' in line]
    assert event["reason"] == ("IntegerOverflow: integer overflow: Out.v = an integer of "
                               f"about 4,401 digits {RANGE}")


def test_a_tool_answer_outside_the_range_is_a_tool_error() -> None:
    source = ('ruleset t "t"\nuses tool fx\nfact Item { n: int }\nfact Out { v: int }\n'
              "agent a {\n  when Item(n)\n  call fx(n: n) as r\n  emit Out(v: r.v)\n}\n")
    ruleset = converge_rules.loads(source, plugins=False)
    for answer, shown in [(2**63, str(2**63)), (-(10**5000), "a negative integer of about "
                                                               "5,001 digits")]:
        result = converge_rules.run(ruleset, [("Item", {"n": 1})],
                                    tools={"fx": lambda args, a=answer: {"v": [1, a]}})
        (call,) = [json.loads(line) for line in result.trace.lines()
                   if '"tool_call"' in line]
        assert call["error"] == (f"tool 'fx' returned a result that is not JSON: "
                                 f"result.v[1] is {shown}, outside the 64-bit range "
                                 "(-9223372036854775808 to 9223372036854775807)")
        assert result.facts("Out") == []


def test_combining_integers_beyond_the_range_is_an_unresolved_conflict() -> None:
    source = ('ruleset c "c"\nfact Item { n: int }\nfact Total { key k: str, n: int }\n'
              'agent a { when Item(n) emit Total(k: "all", n: n) }\n'
              "policy Total { combine sum n }\n")
    result = converge_rules.run(converge_rules.loads(source, plugins=False),
                                [("Item", {"n": INT_MAX}), ("Item", {"n": 1})])
    assert result.status == "conflict"
    assert result.detail == (f"Total (k: 'all'): combine sum n: integer overflow: {2**63} "
                             f"{RANGE}")
    result.trace.to_jsonl()


# --------------------------------------------------------------------- literals


@pytest.mark.parametrize(("literal", "message"), [
    (str(INT_MAX + 1), f"`{INT_MAX + 1}` is too large for an int: integers are 64-bit, "
                       f"up to {INT_MAX}"),
    ("1" + "0" * 5000, "`10000000000000000000…` (5,001 digits) is too large for an int: "
                       f"integers are 64-bit, up to {INT_MAX}"),
    ("9_223_372_036_854_775_808", "`9_223_372_036_854_775_808` is too large for an int: "
                                  f"integers are 64-bit, up to {INT_MAX}"),
])
def test_an_integer_literal_outside_the_range_is_a_checker_error(
    literal: str, message: str,
) -> None:
    source = ITEMS + f"agent a {{\n  when Item(name, n) where n < {literal}\n" \
                     "  emit Item(name: name, n: 1)\n}\n"
    with pytest.raises(CheckError) as info:
        converge_rules.loads(source, plugins=False)
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.code, diagnostic.message) == ("CVG005", message)
    assert diagnostic.span is not None and diagnostic.span.line == 4


def test_the_largest_integer_literal_is_accepted() -> None:
    source = ITEMS + f"agent a {{\n  when Item(name, n) where n < {INT_MAX}\n" \
                     "  emit Item(name: name, n: 1)\n}\n"
    converge_rules.loads(source, plugins=False)
