"""The after-the-fact interpreter follows the compiler's expression semantics."""

from __future__ import annotations

import pytest

from converge_rules.analysis.interpret import EvalError, Fact, Interpreter, values_equal
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.parser import parse


def _expr(text: str) -> n.Expr:
    result = parse(f'ruleset r\ntest "t" {{\n  given X(v: {text})\n}}\n')
    assert result.module is not None, result.diagnostics
    test = result.module.items[0]
    assert isinstance(test, n.Test) and isinstance(test.steps[0], n.Given)
    return test.steps[0].args[0].value


def _pattern(text: str) -> n.Pattern:
    result = parse(f'ruleset r\ntest "t" {{\n  expect {text}\n}}\n')
    assert result.module is not None, result.diagnostics
    test = result.module.items[0]
    assert isinstance(test, n.Test) and isinstance(test.steps[0], n.ExpectFact)
    return test.steps[0].pattern


FACTS = {
    "Cost": [Fact("Cost", {"sku": "A1", "amount": 10.0}, 0),
             Fact("Cost", {"sku": "B2", "amount": 4.0}, 1)],
    "Price": [Fact("Price", {"sku": "A1", "channel": "web", "amount": 12.0}, 2)],
}
INTERP = Interpreter(enums={"Channel": ("web", "store")}, facts=FACTS,
                     field_enums={("Price", "channel"): "Channel"})


@pytest.mark.parametrize(("text", "value"), [
    ("1 + 2 * 3", 7),
    ("7 / 2", 3.5),
    ("7 % 4", 3),
    ("-2", -2),
    ("round(2.675, 2)", 2.68),
    ("round(-2.5, 0)", -3.0),
    ("if 1 < 2 then \"a\" else \"b\"", "a"),
    ("not true or false", False),
    ("3 in [1, 2, 3]", True),
    ("web", "web"),
    ("Channel.store", "store"),
    ("count(Cost())", 2),
    ("sum(Cost(), amount)", 14.0),
    ("max(Cost(), amount)", 10.0),
    ("mean(Cost(), amount)", 7.0),
    ("min(Price(sku: \"Z\"), amount)", None),
    ("count(Price(channel: web))", 1),
    ("lower(\"AB\") == \"ab\"", True),
    ("matches(\"abc-123\", \"[0-9]+$\")", True),
    ("{usd: 1.5}", {"usd": 1.5}),
    ("min(Price(sku: \"Z\"), amount) < 3", False),
])
def test_expressions(text: str, value: object) -> None:
    assert INTERP.eval(_expr(text), {}) == value


def test_variables_and_errors() -> None:
    assert INTERP.eval(_expr("x * 2"), {"x": 4}) == 8
    with pytest.raises(EvalError, match="unknown name `y`"):
        INTERP.eval(_expr("y"), {})
    with pytest.raises(EvalError, match="ZeroDivisionError"):
        INTERP.eval(_expr("1 / 0"), {})


def test_patterns_bind_constrain_and_join() -> None:
    pattern = _pattern('Cost(sku, amount: a)')
    found = [env for _, env in INTERP.matches(pattern, {})]
    assert found == [{"sku": "A1", "a": 10.0}, {"sku": "B2", "a": 4.0}]
    assert [env for _, env in INTERP.matches(pattern, {"sku": "B2"})] == [
        {"sku": "B2", "a": 4.0}]
    enum = _pattern("p: Price(channel: web, amount: _)")
    (fact, env), = INTERP.matches(enum, {})
    assert env["p"] is fact
    assert not list(INTERP.matches(_pattern("Price(channel: store)"), {}))


def test_tolerant_float_equality() -> None:
    assert values_equal(0.1 + 0.2, 0.3, tolerant=True)
    assert not values_equal(0.1 + 0.2, 0.3)
    assert not values_equal(True, 1.0, tolerant=True)
    assert values_equal((1.0, 2), [1, 2.0], tolerant=True)
