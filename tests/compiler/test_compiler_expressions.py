"""Expression semantics and built-ins, through generated code; and rule text that
tries to inject code stays data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from compiler_support import ListView, compile_text, run

from converge_rules.blobs import Blob
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.compiler.runtime import cvg_matches, cvg_round
from converge_rules.language.builtins import BUILTINS
from converge_rules.language.checks.checked import FunctionSignature
from converge_rules.language.checks.checker import check_file
from converge_rules.language.syntax.nodes import Emit, Literal

HEAD = """\
ruleset e
enum Level { low, high }
fact In { key k: str, s: str, x: float, n: int, o: float?, tags: list[str] }
fact Out { key k: str, v: str }
fact F { key k: str, v: float? }
fact I { key k: str, v: int }
fact B { key k: str, v: bool }
fact D { key k: str, v: date }
fact T { key k: str, v: datetime }
fact P { key k: str, v: duration }
fact Bl { key k: str, v: blob }
"""

NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def value(expr: str, out_type: str = "F", **fact: Any) -> Any:
    """Evaluate ``expr`` in an agent over one In fact and return the emitted ``v``."""
    p = compile_text(HEAD + f"agent a {{ when In(k, s, x, n, o, tags) "
                            f"emit {out_type}(k: k, v: {expr}) }}")
    v = ListView(p, now=NOW)
    row = {"k": "K", "s": "Hello", "x": 2.5, "n": 7, "o": None, "tags": ("a", "b")}
    row.update(fact)
    v.add("In", *row.values())
    (out,) = run(p, "a", v)
    return out[2][1]


@pytest.mark.parametrize(("expr", "out", "expected"), [
    ("n / 2", "F", 3.5),             # true division
    ("n + 1", "I", 8),
    ("n % 4", "I", 3),
    ("-x * 2", "F", -5.0),
    ("x + n", "F", 9.5),
    ("if n > 5 then 1.0 else 2.0", "F", 1.0),
    ("n > 5 and x < 1", "B", False),
    ("n > 5 or x < 1", "B", True),
    ("not (n == 7)", "B", False),
    ('"a" in tags', "B", True),
    ('"ell" in s', "B", True),
    ('[1, 2, 3] == [1, 2, 3]', "B", True),
    ("round(2.675, 2)", "F", 2.68),
    ("round(x, 0)", "F", 3.0),
    ("round(-2.5, 0)", "F", -3.0),
    ("abs(0 - n)", "I", 7),
    ("min(n, 3, 9)", "I", 3),
    ("max(x, n)", "F", 7.0),         # max returns the int 7: widened for the field
    ("if n > 5 then n else x", "F", 7.0),
    ("len(tags)", "I", 2),
    ("len(s)", "I", 5),
    ('lower(s) == "hello"', "B", True),
    ('upper(s) == "HELLO"', "B", True),
    ('contains(s, "ll")', "B", True),
    ('startswith(s, "He")', "B", True),
    ('endswith(s, "lo")', "B", True),
    ('matches(s, "l+o$")', "B", True),
    ('matches(s, "^l")', "B", False),
    ("o > 1.0", "B", False),          # None compared is false
    ("o < 1.0", "B", False),
    ("o == 1.0", "B", False),
    ("n", "F", 7.0),                  # int widened for a float field
])
def test_expression(expr: str, out: str, expected: Any) -> None:
    got = value(expr, out)
    assert got == expected
    assert type(got) is type(expected)


def test_int_field_value_widened_to_float_for_float_field() -> None:
    got = value("n * 2", "F")
    assert got == 14.0 and isinstance(got, float)


def test_optional_passes_none_through() -> None:
    assert value("o", "F") is None
    assert value("o", "F", o=1.5) == 1.5


def test_round_half_away_from_zero_on_decimal_value() -> None:
    assert cvg_round(2.675, 2) == 2.68
    assert cvg_round(1.005, 2) == 1.01
    assert cvg_round(-0.125, 2) == -0.13
    assert cvg_round(0.5) == 1.0
    assert cvg_round(1250.0, -2) == 1300.0


@pytest.mark.parametrize(("x", "ndigits", "expected"), [
    (1e300, 0, 1e300),                 # quantize's default precision (28 digits) refused
    (-1.5e28, 2, -1.5e28),             # these: the agent failed with InvalidOperation
    (123456789012345678901234567890.0, 2, 123456789012345678901234567890.0),
    (1.5, 30, 1.5),                    # more decimals than the float has
    (2.675, 40, 2.675),
    (1.2345e25, -20, 1.2345e25),
    (1234.5, -400, 0.0),
])
def test_round_keeps_every_digit_of_large_floats_and_long_decimals(
        x: float, ndigits: int, expected: float) -> None:
    assert cvg_round(x, ndigits) == expected
    assert value(f"round(x, {ndigits})", "F", x=x) == expected


def test_matches_is_linear_time_re2_and_bad_pattern_raises() -> None:
    assert cvg_matches("a" * 50 + "!", "^(a+)+$") is False    # no catastrophic backtracking
    with pytest.raises(Exception):  # noqa: B017 - re2's error type is not public API
        cvg_matches("x", "(")


# One call of every built-in over the fact ``value`` evaluates against, with the same
# arguments as Python values and the output type that holds its result.
BUILTIN_CALLS = [
    ("round(x, 0)", (2.5, 0), "F"),
    ("round(x)", (2.5,), "F"),
    ("abs(n - 10)", (-3,), "I"),
    ("min(n, 3)", (7, 3), "I"),
    ("max(n, x)", (7, 2.5), "F"),
    ("len(tags)", (("a", "b"),), "I"),
    ("len(s)", ("Hello",), "I"),
    ("lower(s)", ("Hello",), "Out"),
    ("upper(s)", ("Hello",), "Out"),
    ('contains(s, "ell")', ("Hello", "ell"), "B"),
    ('contains(tags, "b")', (("a", "b"), "b"), "B"),
    ('startswith(s, "He")', ("Hello", "He"), "B"),
    ('endswith(s, "x")', ("Hello", "x"), "B"),
    ('matches(s, "^H.l+o$")', ("Hello", "^H.l+o$"), "B"),
    ('date("2026-12-06")', ("2026-12-06",), "D"),
    ('date(s)', ("Hello",), "raises"),
    ('datetime("2026-12-06T10:00:00+01:00")', ("2026-12-06T10:00:00+01:00",), "T"),
    ("now()", (NOW,), "T"),
    ("today()", (NOW,), "D"),
    ("str(x)", (2.5,), "Out"),
    ("str(n)", (7,), "Out"),
    ("fixed(x, 3)", (2.5, 3), "Out"),
    ("blob(s)", ("Hello",), "Bl"),
    ("blob_text(blob(s))", (Blob.of("Hello"),), "Out"),
]


@pytest.mark.parametrize(("expr", "args", "out"), BUILTIN_CALLS)
def test_compiled_builtin_computes_what_its_implementation_does(
        expr: str, args: tuple[Any, ...], out: str) -> None:
    builtin = BUILTINS[expr.split("(")[0]]
    if out == "raises":
        with pytest.raises(ValueError) as compiled:
            value(expr, "D")
        with pytest.raises(ValueError) as called:
            builtin.implementation(*args)
        assert str(compiled.value) == str(called.value)
        return
    assert value(expr, out) == builtin.implementation(*args)


def test_every_builtin_has_a_compiled_call_above() -> None:
    called = {expr.split("(")[0] for expr, _, _ in BUILTIN_CALLS}
    assert called == set(BUILTINS), "add a call of each new built-in to BUILTIN_CALLS"


def test_plugin_function() -> None:
    text = HEAD + "agent a { when In(k, s) emit Out(k: k, v: shout(s)) }"
    sig = {"shout": FunctionSignature("shout", ("str",), "str")}
    checked = check_file("t.cvg", source=text, functions=sig)
    p = compile_ruleset(checked, functions={"shout": lambda s: s.upper() + "!"})
    v = ListView(p)
    v.add("In", "K", "hey", 1.0, 1, None, ())
    assert run(p, "a", v)[0][2] == ("K", "HEY!")


@pytest.mark.parametrize("payload", [
    '\\"); import os; (\\"',
    "'); __import__('os').system('false'); ('",
    '\\n__import__(\\"os\\")\\n',
    "{}{}{{}}%s%r",
    "\\\\",
])
def test_rule_text_cannot_inject_code(payload: str) -> None:
    text = HEAD + (
        f'agent a {{ when In(k, s: "{payload}") '
        f'emit Out(k: k, v: "{payload}") }}\n'
    )
    checked = check_file("t.cvg", source=text)
    assert checked.ok, checked.diagnostics
    emit = checked.agents[0].outputs[0]
    assert isinstance(emit, Emit)
    lit = emit.args[1].value
    assert isinstance(lit, Literal) and isinstance(lit.value, str)
    data = lit.value                       # the payload as the parser unescaped it
    p = compile_ruleset(checked)
    source = p.agents[0].source
    assert repr(data) in source
    rest = source.replace(repr(data), "")
    assert "import" not in rest and "os" not in rest.split()
    assert "os" not in p.agents[0].fn.__globals__
    v = ListView(p)
    v.add("In", "K", data, 1.0, 1, None, ())
    v.add("In", "L", "other", 1.0, 1, None, ())
    assert [o[2] for o in run(p, "a", v)] == [("K", data)]


def test_rule_names_reach_the_source_only_in_comments() -> None:
    p = compile_text(HEAD + "agent a { when In(k, s: weird_name) emit Out(k: k, v: weird_name) }")
    code_lines = [ln for ln in p.agents[0].source.splitlines() if not ln.lstrip().startswith("#")]
    assert not any("weird_name" in ln for ln in code_lines)


def test_list_of_float_field_gets_floats() -> None:
    text = HEAD + """fact L { key k: str, xs: list[float] }
fact LI { key k: str, ns: list[int] }
agent a { when In(k, n) emit L(k: k, xs: [1, n, 2.5]) }
agent b { when LI(k, ns) emit L(k: k, xs: ns) }
"""
    p = compile_text(text)
    v = ListView(p)
    v.add("In", "K", "s", 1.0, 3, None, ())
    v.add("LI", "J", (4, 5))
    (a,) = run(p, "a", v)
    (b,) = run(p, "b", v)
    assert a[2] == ("K", (1.0, 3.0, 2.5)) and all(type(x) is float for x in a[2][1])
    assert b[2] == ("J", (4.0, 5.0)) and all(type(x) is float for x in b[2][1])


def test_plugin_function_without_implementation_is_a_clear_compile_error() -> None:
    from converge_rules.compiler import values
    from converge_rules.errors import CompileError, ConvergeError

    assert values.CompileError is CompileError  # the old import path keeps working
    assert issubclass(CompileError, ConvergeError)
    text = HEAD + "agent a { when In(k, s) emit Out(k: k, v: shout(s)) }"
    sig = {"shout": FunctionSignature("shout", ("str",), "str")}
    checked = check_file("t.cvg", source=text, functions=sig)
    with pytest.raises(CompileError, match=r"t\.cvg:\d+:\d+: function 'shout' is not available"):
        compile_ruleset(checked)
