"""A plugin function's result is checked against the type it declares wherever it is
used, not only when it goes into a field (found: a function declared ``bool`` that
returned ``1`` passed a ``where`` guard, because the compiler knows nothing of a plugin
function's result and a guard takes any truthy value). A result of another type fails
the agent with a reason naming the function; an int widens to a declared float, as a
field of that type holds it; the interpreter (explain, coverage) agrees."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from converge_rules.analysis.interpret import EvalError, interpreter_for
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
from converge_rules.engine.result import RunResult
from converge_rules.language.checks.checked import FunctionSignature
from converge_rules.language.checks.checker import check_file
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import UNKNOWN_SPAN

HEAD = ("ruleset f\nenum Tone { calm, loud }\nfact In { x: int }\n"
        "fact Out { s: str }\n")


def _run(tmp_path: Path, body: str, result: str, fn: Callable[..., Any]) -> RunResult:
    path = tmp_path / "f.cvg"
    path.write_text(HEAD + body, encoding="utf-8")
    checked = check_file(path, functions={"f": FunctionSignature("f", ("int",), result)})
    assert not [d for d in checked.diagnostics if d.is_error], checked.diagnostics
    return run(compile_ruleset(checked, functions={"f": fn}), [("In", {"x": 1})])


def _discarded(result: RunResult) -> list[str]:
    return [e["reason"] for e in map(json.loads, result.trace.lines())
            if e["event"] == "effect_discarded"]


GUARD = "agent a {\n  when In(x)\n  where f(x)\n  emit Out(s: \"passed\")\n}\n"


def test_a_bool_function_returning_one_fails_the_guard_instead_of_passing_it(
    tmp_path: Path,
) -> None:
    result = _run(tmp_path, GUARD, "bool", lambda x: 1)
    assert result.facts("Out") == []
    assert _discarded(result) == [
        "BadResult: function 'f' is declared to return bool, but returned int 1"]


@pytest.mark.parametrize(("declared", "value", "got"), [
    ("int", "1", "str '1'"),
    ("int", True, "bool True"),
    ("float", "1.5", "str '1.5'"),
    ("str", 3, "int 3"),
    ("number", False, "bool False"),
    ("number", None, "none"),
    ("str", None, "none"),
    ("Tone", "noisy", "str 'noisy'"),
    ("list[int]", [1, "2"], "list [1, '2']"),
    # a list of numbers' items were not checked (no ValueType says "int or float")
    ("list[number]", [1, "2"], "list [1, '2']"),
    ("list[number]", [1, None], "list [1, None]"),
    ("list[number]", [True], "list [True]"),
    ("list[number]", None, "none"),
    ("list[number]", 3, "int 3"),
])
def test_a_result_of_another_type_than_declared_fails_the_agent_naming_the_function(
    tmp_path: Path, declared: str, value: Any, got: str,
) -> None:
    body = "agent a {\n  when In(x)\n  where f(x) == f(x)\n  emit Out(s: \"x\")\n}\n"
    result = _run(tmp_path, body, declared, lambda x: value)
    assert result.facts("Out") == []
    assert _discarded(result) == [
        f"BadResult: function 'f' is declared to return {declared}, but returned {got}"]


@pytest.mark.parametrize(("declared", "value", "shown"), [
    ("float", 2, "2.0"),          # an int widens to a declared float
    ("number", 2, "2"),           # a number stays what it is
    ("number", 2.5, "2.5"),
    ("int?", None, "none"),
    ("Tone", "loud", "loud"),
    ("any", "a", "a"),
])
def test_a_result_of_the_declared_type_is_used(
    tmp_path: Path, declared: str, value: Any, shown: str,
) -> None:
    body = "agent a {\n  when In(x)\n  emit Out(s: str(f(x)))\n}\n"
    result = _run(tmp_path, body, declared, lambda x: value)
    assert _discarded(result) == []
    assert [fact["s"] for fact in result.facts("Out")] == [shown]


def test_the_interpreter_checks_the_declared_result_type_as_compiled_code_does(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.cvg"
    path.write_text(HEAD + GUARD, encoding="utf-8")
    checked = check_file(path, functions={"f": FunctionSignature("f", ("int",), "bool")})
    interp = interpreter_for(checked, functions={"f": lambda x: 1})
    call = n.FuncCall(n.Ident("f", UNKNOWN_SPAN), (n.Literal(1, "1", UNKNOWN_SPAN),),
                      UNKNOWN_SPAN)
    with pytest.raises(EvalError, match="function 'f' is declared to return bool, but "
                                        "returned int 1"):
        interp.eval(call, {})
    assert interpreter_for(checked, functions={"f": lambda x: True}).eval(call, {}) is True


@pytest.mark.parametrize("declared", ["int", "number"])
def test_an_integer_result_beyond_64_bits_is_an_overflow(tmp_path: Path, declared: str
                                                         ) -> None:
    result = _run(tmp_path, GUARD.replace("where f(x)", "where f(x) > 0"), declared,
                  lambda x: 2**70)
    assert result.facts("Out") == []
    (reason,) = _discarded(result)
    assert reason.startswith("IntegerOverflow: integer overflow: the result of function "
                             "'f' = "), reason


@pytest.mark.parametrize(("declared", "value", "message"), [
    (" bool", 1, "declared to return bool, but returned int 1"),
    ("bool ", 1, "declared to return bool, but returned int 1"),
    ("int ?", "1", "declared to return int?, but returned str '1'"),
    ("list[ int ]", [1, "2"], "declared to return list[int], but returned list [1, '2']"),
    (" Tone", "noisy", "declared to return Tone, but returned str 'noisy'"),
])
def test_a_declared_result_type_with_spaces_is_checked_as_the_checker_reads_it(
    tmp_path: Path, declared: str, value: Any, message: str,
) -> None:
    # The checker reads a signature's type with the spaces around its names stripped;
    # the run-time check had its own reader, which did not strip them and so checked
    # nothing: a `" bool"` function's 1 passed a guard.
    body = "agent a {\n  when In(x)\n  where f(x) == f(x)\n  emit Out(s: \"x\")\n}\n"
    result = _run(tmp_path, body, declared, lambda x: value)
    assert result.facts("Out") == []
    assert _discarded(result) == [f"BadResult: function 'f' is {message}"]


@pytest.mark.parametrize("declared", [
    "bool", "int?", "number", "number?", "any", "list[int]", "list[number]", "blob?",
    "list[number?]?", "list[ number ]",
    "list[blob]", "Tone", "Tone?", "list[Tone]", "Nothing", " str ", "list[ str? ]",
])
def test_the_run_time_result_type_is_the_checkers_type(declared: str) -> None:
    """One reader for both: the type the checker gives a call is the type its result
    is checked against (``number`` a text, ``any`` and unknown names None)."""
    from converge_rules.compiler.values import result_type
    from converge_rules.language.checks.types import from_text

    tone = n.EnumDecl(n.Ident("Tone", UNKNOWN_SPAN), (n.Ident("calm", UNKNOWN_SPAN),
                                                      n.Ident("loud", UNKNOWN_SPAN)),
                      UNKNOWN_SPAN)
    checked = from_text(declared, {"Tone"})
    runtime = result_type(declared, {"Tone": tone})
    if checked is None or checked.kind == "any":
        assert runtime is None
    elif checked.kind == "number":
        assert runtime == ("number?" if checked.optional else "number")
    else:
        assert str(runtime) == str(checked)


@pytest.mark.parametrize(("declared", "value"), [
    ("list[number]", [1, 2.5]),
    ("list[number]", (7,)),
    ("list[number?]", [1, None]),
    ("list[number]?", None),
    ("list[list[number]]", [[1], [2.5]]),  # (the inner lists' items are not checked)
])
def test_a_list_of_numbers_as_declared_is_used(tmp_path: Path, declared: str,
                                               value: Any) -> None:
    body = "agent a {\n  when In(x)\n  where f(x) == f(x)\n  emit Out(s: \"x\")\n}\n"
    result = _run(tmp_path, body, declared, lambda x: value)
    assert _discarded(result) == []
    assert result.facts("Out") == [{"s": "x"}]
