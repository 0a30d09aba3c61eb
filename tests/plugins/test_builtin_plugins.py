"""The built-in plugins register what the language and the engine have built in."""

from __future__ import annotations

import pytest

from converge_rules.language.builtins import BUILTIN_FUNCTIONS, CLOCK_BUILTINS
from converge_rules.plugins import collect, get_plugin_manager
from converge_rules.plugins.registries import Registries


@pytest.fixture(scope="module")
def builtins() -> Registries:
    return collect(get_plugin_manager(entry_points=False))


def test_every_builtin_function_is_registered(builtins: Registries) -> None:
    functions = set(BUILTIN_FUNCTIONS) - CLOCK_BUILTINS
    missing = sorted(functions - set(builtins.functions))
    assert not missing
    assert all(builtins.functions[name].plugin == "builtin.functions" for name in functions)


def test_the_job_s_time_is_no_plugin_function(builtins: Registries) -> None:
    # now() and today() read the job's time, not their arguments: a plugin function
    # under their names would be called without it
    assert {"now", "today"} == CLOCK_BUILTINS
    assert not CLOCK_BUILTINS & set(builtins.functions)


def test_builtin_function_signatures_are_the_checker_s(builtins: Registries) -> None:
    signatures = builtins.function_signatures()
    for name, expected in BUILTIN_FUNCTIONS.items():
        if name in CLOCK_BUILTINS:
            continue
        got = signatures[name]
        assert (got.args, got.result, got.variadic) == (
            expected.args, expected.result, expected.variadic)


@pytest.mark.parametrize(
    ("name", "args", "result"),
    [
        ("round", (2.675, 2), 2.68),
        ("abs", (-3,), 3),
        ("min", (3, 1, 2), 1),
        ("max", (3, 1, 2), 3),
        ("len", ("abc",), 3),
        ("lower", ("AbC",), "abc"),
        ("upper", ("AbC",), "ABC"),
        ("contains", ("refund please", "refund"), True),
        ("startswith", ("invoice 12", "inv"), True),
        ("endswith", ("invoice 12", "13"), False),
        ("matches", ("INV-0042", r"^INV-\d+$"), True),
    ],
)
def test_builtin_functions_behave_as_the_language_says(
    builtins: Registries, name: str, args: tuple[object, ...], result: object
) -> None:
    assert builtins.functions[name].fn(*args) == result


def test_builtin_executors_are_registered(builtins: Registries) -> None:
    assert {"serial", "threads"} <= set(builtins.executors)
    assert all(e.plugin == "builtin.executors" for e in builtins.executors.values())


def test_builtin_trace_store_is_registered(builtins: Registries) -> None:
    assert builtins.stores["jsonl"].plugin == "builtin.stores"
