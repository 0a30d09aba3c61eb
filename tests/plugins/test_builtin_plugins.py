"""The built-in plugins register what the language and the engine have built in."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from converge_rules.errors import PluginError
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


def test_every_builtin_function_takes_its_declared_arguments(builtins: Registries) -> None:
    """What registration checks for a plugin's function, checked here for the built-in
    ones (registration skips it for them: reading the signature of C functions such as
    ``abs`` and ``len`` costs every start-up a tokenizer)."""
    import inspect

    for name, function in builtins.functions.items():
        count = len(function.args) + (1 if function.variadic else 0)
        try:
            python = inspect.signature(function.fn)
        except ValueError:  # min and max: C functions with no signature to read
            assert name in {"min", "max"}
            function.fn(*range(count))
            continue
        python.bind(*range(count))


def test_a_plugins_c_function_of_the_wrong_arity_is_still_refused(
        write_module: Callable[[str, str], str]) -> None:
    write_module("abs_twice", """
        from converge_rules.plugins.api import Function, hookimpl

        @hookimpl
        def converge_register_functions(register):
            register(Function("abs2", abs, ("int", "int"), "int"))
        """)
    with pytest.raises(PluginError, match=r"'abs2' declares 2 argument\(s\)"):
        collect(get_plugin_manager(["abs_twice"], entry_points=False))


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


def test_the_built_ins_alone_are_what_the_plugin_manager_collects_of_them(
        builtins: Registries) -> None:
    """``builtin_registries()`` (``load(..., plugins=False)``) calls the built-in hook
    functions without pluggy: the same registrations, in the same order, by the same
    plugins, and no observer or summarizer, as the manager holding only the built-ins."""
    import dataclasses

    from converge_rules.plugins.collecting import builtin_registries

    direct = builtin_registries()
    for field in dataclasses.fields(Registries):
        if field.name in ("observers", "summarizers"):
            continue
        ours, theirs = getattr(direct, field.name), getattr(builtins, field.name)
        assert list(ours) == list(theirs), field.name
        for name in ours:  # a store factory is a new instance each time: compared by repr
            assert (ours[name] == theirs[name]) or (
                field.name == "stores" and repr(ours[name]) == repr(theirs[name])
                and type(ours[name].obj) is type(theirs[name].obj)), (field.name, name)
    assert not direct.summarizers and not builtins.summarizers
    assert not any(direct.observers.wants(hook) or builtins.observers.wants(hook)
                   for hook in ("converge_on_cycle", "converge_on_effect",
                                "converge_on_conflict", "converge_on_result"))


def test_the_built_in_hooks_are_marked_as_hookimpl_marks_them() -> None:
    import importlib

    from converge_rules.plugins.collecting import DEFAULT_PLUGINS, KINDS
    from converge_rules.plugins.hookspecs import OBSERVER_HOOKS, PROJECT, hookimpl
    from converge_rules.plugins.observers import OBSERVER_HOOKS as OBSERVERS

    def plain() -> None: ...

    expected = getattr(hookimpl(plain), PROJECT + "_impl")
    hooks = 0
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        for name in dir(module):
            if name.startswith("converge_"):
                assert name in KINDS
                assert getattr(getattr(module, name), PROJECT + "_impl") == expected
                hooks += 1
    assert hooks == len(DEFAULT_PLUGINS)
    assert OBSERVER_HOOKS is OBSERVERS
