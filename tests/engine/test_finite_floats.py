"""A fact holds finite numbers only. An input float that is not finite is refused at
input, in every format and from Python, like NaN (found: `1e400` was accepted; the JSON
output then said `Infinity`, which is not JSON, and the trace said `null`); so are a
test's `given` values and its fixtures' rows, and a plugin function's result. A number
computed at run time that is not finite fails the agent, with the reason, instead of
reaching a fact or a tool call: a trace that converge wrote always replays."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules.analysis.interpret import EvalError, Interpreter
from converge_rules.cli import main
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
from converge_rules.engine.result import RunResult
from converge_rules.errors import InputError
from converge_rules.language.checks.checked import FunctionSignature
from converge_rules.language.checks.checker import check_file
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import UNKNOWN_SPAN
from converge_rules.program import Program

RULESET = "ruleset r\nfact A { key k: str, x: float }\n"


@pytest.mark.parametrize(("name", "text"), [
    ("a.jsonl", '{"A": {"k": "a", "x": 1e400}}\n'),
    ("a.json", '[\n  {"A": {"k": "a", "x": -1e400}}\n]\n'),
    ("A=a.csv", "k,x\na,1e400\n"),
])
def test_an_infinite_input_float_is_refused_with_its_line(
    tmp_path: Path, name: str, text: str,
) -> None:
    ruleset = converge_rules.loads(RULESET, plugins=False)
    file = tmp_path / name.split("=")[-1]
    file.write_text(text)
    spec = f"A={file}" if "=" in name else str(file)
    with pytest.raises(InputError) as caught:
        converge_rules.read_facts(ruleset, spec)
    assert caught.value.line == (2 if name != "a.jsonl" else 1)
    assert "finite" in str(caught.value) or "largest float" in str(caught.value)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_float_from_python_is_refused(value: float) -> None:
    ruleset = converge_rules.loads(RULESET, plugins=False)
    with pytest.raises(InputError, match="finite"):
        converge_rules.run(ruleset, [("A", {"k": "a", "x": value})])


# --------------------------------------------------------- computed at run time

def _ruleset(tmp_path: Path, body: str, **functions: Callable[..., Any]) -> Program:
    path = tmp_path / "f.cvg"
    path.write_text(f"ruleset f\nfact In {{ x: float }}\nfact Out {{ y: float }}\n{body}",
                    encoding="utf-8")
    checked = check_file(path, functions={
        name: FunctionSignature(name, ("float",), "float") for name in functions})
    return compile_ruleset(checked, functions=functions)


def _discarded(result: RunResult) -> list[str]:
    return [e["reason"] for e in map(json.loads, result.trace.lines())
            if e["event"] == "effect_discarded"]


def test_an_expression_that_yields_nan_fails_the_agent_once(tmp_path: Path) -> None:
    # x * 1e308 overflows to infinity, and infinity minus itself is NaN. NaN never
    # equals itself, so the fact was new every cycle: Out(y: nan) was re-emitted until
    # the cycle budget stopped the job. Now the agent fails with the reason and the job
    # converges.
    program = _ruleset(tmp_path, "agent a {\n  when In(x)\n"
                                 "  emit Out(y: x * 1e308 - x * 1e308)\n}\n")
    result = run(program, [("In", {"x": 10.0})])
    assert result.status == "converged"
    assert result.facts("Out") == []
    (reason,) = _discarded(result)
    assert reason.startswith("NotFinite: Out.y is nan: a fact holds finite numbers only")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_plugin_function_returning_a_non_finite_number_fails_the_agent(
    tmp_path: Path, value: float,
) -> None:
    # used in a guard, not emitted: a function result is checked where it comes in
    program = _ruleset(tmp_path, "agent a {\n  when In(x)\n  where bad(x) > 0.0 or true\n"
                                 "  emit Out(y: x)\n}\n", bad=lambda x: value)
    result = run(program, [("In", {"x": 1.0})])
    assert result.facts("Out") == []
    (reason,) = _discarded(result)
    assert reason == (f"BadResult: function 'bad' returned a value no fact can hold: its "
                      f"result is {value!r}, not a finite number")


def test_the_interpreter_refuses_a_non_finite_function_result_as_compiled_code_does(
) -> None:
    interp = Interpreter(enums={}, functions={"bad": lambda x: float("nan")})
    call = n.FuncCall(n.Ident("bad", UNKNOWN_SPAN), (n.Literal(1.0, "1.0", UNKNOWN_SPAN),),
                      UNKNOWN_SPAN)
    with pytest.raises(EvalError, match="function 'bad' returned a value no fact can hold"):
        interp.eval(call, {})


def test_a_tool_argument_that_overflows_fails_the_agent_and_the_trace_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The call went out with infinity, the trace wrote its argument as null, and
    # `converge replay` found no recorded call for echo(v: Infinity): the trace that
    # converge wrote did not replay. A call with an argument no fact can hold is not
    # made (the agent's effect is discarded), so nothing unwritable reaches the trace.
    monkeypatch.chdir(tmp_path)
    Path("t.cvg").write_text("ruleset t\nuses tool echo\nfact In { x: float }\n"
                             "fact Out { y: float }\nagent a {\n  when In(x)\n"
                             "  call echo(v: x * x) as r\n  emit Out(y: r.v)\n}\n",
                             encoding="utf-8")
    calls: list[dict[str, Any]] = []

    def echo(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        return {"v": 1.0}

    result = converge_rules.run(converge_rules.load("t.cvg", plugins=False),
                                [("In", {"x": 1e200})], tools={"echo": echo},
                                trace="t.jsonl")
    assert calls == []
    assert result.facts("Out") == []
    assert _discarded(result) == [
        "ToolError: tool 'echo' not called: argument 'v' is inf, not a finite number"]
    replayed = CliRunner().invoke(main, ["replay", "--no-plugins", "t.cvg", "t.jsonl"])
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.startswith("identical: ")


def test_an_overflow_in_a_run_replays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    # The case: Out(y: inf) was kept (converge run printed Infinity), the trace
    # wrote null, and replay of that trace failed.
    monkeypatch.chdir(tmp_path)
    Path("f.cvg").write_text("ruleset f\nfact In { x: float }\nfact Out { y: float }\n"
                             "agent a {\n  when In(x)\n  emit Out(y: x * x)\n}\n",
                             encoding="utf-8")
    Path("in.jsonl").write_text('{"In": {"x": 1e200}}\n', encoding="utf-8")
    ran = CliRunner().invoke(main, ["run", "f.cvg", "-f", "in.jsonl", "--format", "json",
                                    "--trace", "t.jsonl"])
    assert ran.exit_code == 0, ran.output
    assert "Infinity" not in ran.stdout and "NaN" not in ran.stdout
    assert "Out" not in json.loads(ran.stdout)["facts"]
    replayed = CliRunner().invoke(main, ["replay", "f.cvg", "t.jsonl"])
    assert replayed.exit_code == 0, replayed.output


@pytest.mark.parametrize(("written", "shown"), [
    ('"y":Infinity', "Infinity"), ('"y":NaN', "NaN"), ('"y":-1e400', "-1e400"),
])
def test_a_trace_holding_a_non_finite_number_is_a_damaged_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str, shown: str,
) -> None:
    # converge writes finite numbers only, so a trace holding another was edited:
    # `explain --trace` showed Out(y: inf), and replay compared it as a difference.
    monkeypatch.chdir(tmp_path)
    Path("f.cvg").write_text("ruleset f\nfact In { x: float }\nfact Out { y: float }\n"
                             "agent a {\n  when In(x)\n  emit Out(y: x * x)\n}\n",
                             encoding="utf-8")
    converge_rules.run(converge_rules.load("f.cvg", plugins=False), [("In", {"x": 2.0})],
                       trace="t.jsonl")
    lines = Path("t.jsonl").read_text(encoding="utf-8").splitlines()
    (number,) = [i for i, line in enumerate(lines, 1) if '"y":4.0' in line]
    lines[number - 1] = lines[number - 1].replace('"y":4.0', written)
    Path("t.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for args in (["replay", "--no-plugins", "f.cvg", "t.jsonl"],
                 ["explain", "--trace", "t.jsonl", "Out()"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert (f"t.jsonl:{number}: `{shown}` is not a finite number, and converge writes "
                "only finite ones") in result.output
        assert "the trace was edited or truncated" in result.output


# ---------------------------------------------------------------------- tests

TESTS = """ruleset g
fact In { x: float }
fact Out { y: float }
agent a {
  when In(x)
  emit Out(y: x + 1.0)
}
test "computed" {
  given In(x: 1e300 * 1e300)
  expect Out(y: 1.0)
}
test "from a file" {
  cases "rows.FORMAT"
  given In(x: v)
  expect Out(y: 2.0)
}
"""


@pytest.mark.parametrize(("fmt", "rows", "line", "shown"), [
    ("csv", "v\n1.0\n1e400\n", 3, "inf"),
    ("jsonl", '{"v": 1.0}\n{"v": NaN}\n', 2, "nan"),
    ("jsonl", '{"v": -1e400}\n', 1, "-inf"),
])
def test_a_non_finite_given_value_fails_the_test_where_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, rows: str, line: int,
    shown: str,
) -> None:
    # A computed `given` value of infinity reached the engine and was reported as
    # "the test's facts were rejected: <facts>:1: …"; a fixture's `1e400` or `NaN` the
    # same way, without the fixture's line.
    monkeypatch.chdir(tmp_path)
    Path("g.cvg").write_text(TESTS.replace("FORMAT", fmt), encoding="utf-8")
    Path(f"rows.{fmt}").write_text(rows, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "g.cvg"])
    assert result.exit_code == 1
    assert ("g.cvg:9:15: cannot evaluate: `x` is inf, not a finite number"
            in result.output)
    assert f"g.cvg:13:3: rows.{fmt}:{line}: `v` is {shown}, not a finite number" \
        in result.output
    assert "rejected" not in result.output and "Traceback" not in result.output


def test_converge_test_refuses_fail_under_nan(tmp_path: Path) -> None:
    # click's range check let NaN through (it compares false with both ends), and then
    # no coverage was ever below it
    result = CliRunner().invoke(main, ["test", str(tmp_path), "--fail-under", "nan"])
    assert result.exit_code == 2
    assert "NaN is not a number from 0 to 100" in result.output


@pytest.mark.parametrize(("name", "text", "line", "said"), [
    ("a.jsonl", '{"A": {"k": "1e-400", "x": 1e-400}}\n', 1,
     "at column 28: `1e-400` is below the smallest float"),
    ("a.json", '[\n  {"A": {"k": "a",\n   "x": -2.5e-999}}\n]\n', 3,
     "at column 9: `-2.5e-999` is below the smallest float"),
    ("A=a.csv", "k,x\na,1E-400\n", 2, "A.x (column 2) must be float, got '1E-400'"),
    # the same text inside a string before it, with a space either side, is not it
    # (found: "at column 18", the string's)
    ("a.jsonl", '{"A": {"k": "a 1e-400 b", "x": 1e-400}}\n', 1,
     "at column 32: `1e-400` is below the smallest float"),
    ("a.json", '[{"A": {"k": "\\" 1e-400 ", "x": 1e-400}}]\n', 1,
     "at column 33: `1e-400` is below the smallest float"),
])
def test_an_input_float_below_the_smallest_is_refused_where_it_is(
    tmp_path: Path, name: str, text: str, line: int, said: str,
) -> None:
    # found: `1e-400` was read as 0.0 without a word, in every input format
    ruleset = converge_rules.loads(RULESET, plugins=False)
    file = tmp_path / name.split("=")[-1]
    file.write_text(text)
    spec = f"A={file}" if "=" in name else str(file)
    with pytest.raises(InputError) as caught:
        converge_rules.read_facts(ruleset, spec)
    assert caught.value.line == line
    assert caught.value.message.startswith(said), caught.value.message
    assert "0.0" in str(caught.value)


@pytest.mark.parametrize("text", ["0.0", "0e-400", "0.000e5", "5e-324", "1e-310"])
def test_zero_and_the_smallest_floats_are_read(tmp_path: Path, text: str) -> None:
    ruleset = converge_rules.loads(RULESET, plugins=False)
    file = tmp_path / "a.jsonl"
    file.write_text(f'{{"A": {{"k": "a", "x": {text}}}}}\n')
    (_, row), = converge_rules.read_facts(ruleset, file).rows
    assert row[-1] == float(text)


def test_a_float_literal_below_the_smallest_is_a_check_error_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("f.cvg").write_text(
        "ruleset f\nfact In { x: float }\nfact Out { y: float }\n"
        "agent a {\n  when In(x) where x > 1e-400 or x == 0e-9\n  emit Out(y: 5e-324)\n}\n",
        encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "f.cvg"])
    assert result.exit_code == 1
    assert re.search(r"error\[CVG005\]: `1e-400` is too small for a float: it would be 0.0"
                     r"\n *--> f\.cvg:5:24\n", result.output), result.output
    assert result.output.count("error[") == 1


def test_a_float_literal_beyond_the_largest_is_a_check_error_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # in a rule, a test's given value and a table test's row alike
    monkeypatch.chdir(tmp_path)
    Path("f.cvg").write_text(
        "ruleset f\nfact In { x: float }\nfact Out { y: float }\n"
        "agent a {\n  when In(x) where x < 1e400\n  emit Out(y: -1e999)\n}\n"
        'test "t" {\n  given In(x: 1E+400)\n  expect no Out()\n}\n'
        'test "rows" {\n  cases {\n    {v: 2e308}\n  }\n  given In(x: v)\n'
        "  expect no Out()\n}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "f.cvg"])
    assert result.exit_code == 1
    for where, text in [("5:24", "1e400"), ("6:16", "1e999"), ("9:15", "1E+400"),
                        ("14:9", "2e308")]:
        assert re.search(rf"error\[CVG005\]: `{re.escape(text)}` is too large for a float"
                         rf"\n *--> f\.cvg:{where}\n", result.output), where
    assert "Traceback" not in result.output


def test_a_non_finite_mocked_result_fails_the_test_where_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # it reached the tool box, whose refusal discarded the agent's effect, and the test
    # then failed on its `expect` instead of at the mock
    monkeypatch.chdir(tmp_path)
    Path("m.cvg").write_text(
        "ruleset m\nuses tool echo\nfact In { x: float }\nfact Out { y: float }\n"
        "agent a {\n  when In(x)\n  call echo(v: x) as r\n  emit Out(y: r.v)\n}\n"
        'test "t" {\n  given In(x: 1.0)\n  mock tool echo(v: 1.0) returns {v: 1e300 * 1e300}\n'
        "  expect Out(y: 1.0)\n}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "m.cvg"])
    assert result.exit_code == 1
    assert ("m.cvg:12:34: cannot evaluate: the mocked result.v is inf, not a finite "
            "number") in result.output


def test_a_huge_integer_from_a_function_for_a_float_field_is_an_overflow(
    tmp_path: Path,
) -> None:
    # float(10**400) raised "OverflowError: int too large to convert to float", which
    # named neither the field nor the value
    path = tmp_path / "f.cvg"
    path.write_text("ruleset f\nfact In { x: float }\nfact Out { y: float }\n"
                    "agent a {\n  when In(x)\n  emit Out(y: grow(x))\n}\n", encoding="utf-8")
    checked = check_file(path, functions={"grow": FunctionSignature("grow", ("float",),
                                                                    "any")})
    program = compile_ruleset(checked, functions={"grow": lambda x: 10**400})
    result = run(program, [("In", {"x": 1.0})])
    (reason,) = _discarded(result)
    assert reason.startswith("IntegerOverflow: integer overflow: Out.y = a")
    assert "outside the 64-bit range" in reason
