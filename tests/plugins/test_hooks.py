"""What ``collect`` promises for every registration hook — sorted by name, duplicates
named, a raising hook named with nothing of it kept, invalid registrations refused —
and how observers are fed. Each hook's effect on a real run is proven in
``test_hook_behaviour.py``."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from pydantic import BaseModel

from converge_rules.errors import PluginError
from converge_rules.plugins import (
    Observers,
    PluginManager,
    PluginOrigin,
    collect,
    get_plugin_manager,
    hookspecs,
)
from converge_rules.plugins.api import Function, Tool, hookimpl
from converge_rules.plugins.registries import Registries


def with_plugins(*plugins: tuple[str, object]) -> PluginManager:
    pm = get_plugin_manager(entry_points=False)
    for name, plugin in plugins:
        pm.add(plugin, PluginOrigin(name, "module", name))
    return pm


def collected(*plugins: tuple[str, object]) -> Registries:
    return collect(with_plugins(*plugins))


class Echo(BaseModel):
    text: str


def echo(args: Echo) -> dict[str, Any]:
    return {"text": args.text}


# ---------------------------------------------------------------- registration


# -------------------------------------------------------------------- observers


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    @hookimpl
    def converge_on_cycle(self, event: object) -> None:
        self.seen.append(("cycle", event))

    @hookimpl
    def converge_on_effect(self, event: object) -> None:
        self.seen.append(("effect", event))

    @hookimpl
    def converge_on_conflict(self, event: object) -> None:
        self.seen.append(("conflict", event))

    @hookimpl
    def converge_on_result(self, result: object) -> None:
        self.seen.append(("result", result))


def test_observers_say_which_hooks_are_implemented() -> None:
    class OnlyResults:
        @hookimpl
        def converge_on_result(self, result: object) -> None:
            pass

    observers = Observers(with_plugins(("o", OnlyResults())))
    assert observers.wants("converge_on_result")
    assert not observers.wants("converge_on_cycle")
    observers.on_cycle("nobody listens")  # no implementation: nothing happens


def test_an_observer_that_raises_is_named() -> None:
    class Broken:
        @hookimpl
        def converge_on_cycle(self, event: object) -> None:
            raise RuntimeError("disk full")

    with pytest.raises(PluginError, match=r"'broken'.*converge_on_cycle raised RuntimeError: "
                                          r"disk full"):
        Observers(with_plugins(("broken", Broken()))).on_cycle("x")


# ---------------------------------------------------------------------- collect


def test_duplicate_names_name_both_plugins() -> None:
    class First:
        @hookimpl
        def converge_register_tools(self, register: Any) -> None:
            register(Tool("echo", echo, Echo, Echo))

    class Second:
        @hookimpl
        def converge_register_tools(self, register: Any) -> None:
            register(Tool("echo", echo, Echo, Echo))

    with pytest.raises(PluginError) as info:
        collected(("first", First()), ("second", Second()))
    assert info.value.plugin == "second"
    assert "'first' already registered" in info.value.message


def test_a_plugin_cannot_shadow_a_builtin_function() -> None:
    class Shadow:
        @hookimpl
        def converge_register_functions(self, register: Any) -> None:
            register(Function("round", round, ("float",), "float"))

    with pytest.raises(PluginError, match=r"'builtin\.functions' already registered"):
        collected(("shadow", Shadow()))


def test_a_hook_that_raises_is_named_and_leaves_nothing_half_registered() -> None:
    class HalfWay:
        @hookimpl
        def converge_register_tools(self, register: Any) -> None:
            register(Tool("first", echo, Echo, Echo))
            raise ValueError("config missing")

    pm = with_plugins(("halfway", HalfWay()))
    with pytest.raises(PluginError) as info:
        collect(pm)
    assert info.value.plugin == "halfway"
    assert "converge_register_tools raised ValueError: config missing" in info.value.message
    pm.unregister(name="halfway")
    assert "first" not in collect(pm).tools


@pytest.mark.parametrize(
    ("hook", "call", "message"),
    [
        ("converge_register_tools", lambda r: r("not a tool"), "takes a converge_rules"),
        ("converge_register_tools", lambda r: r(Tool("bad name", echo, Echo, Echo)),
         "must be an identifier"),
        ("converge_register_resolvers", lambda r: r("ok", None), "as None"),
        ("converge_register_functions",
         lambda r: r(Function("f", len, ("dict",), "int")), "'dict' is not a type"),
        ("converge_register_functions",
         lambda r: r(Function("two", lambda a: a, ("str", "str"), "str")),
         r"declares 2 argument\(s\) \['str', 'str'\] but its Python signature is \(a\)"),
    ],
)
def test_invalid_registrations_are_plugin_errors(hook: str, call: Any, message: str) -> None:
    def impl(register: Any) -> None:
        call(register)

    namespace = type("Plugin", (), {})()
    setattr(namespace, hook, hookimpl(impl))
    with pytest.raises(PluginError, match=message):
        collected(("p", namespace))


def test_a_tool_whose_model_the_language_cannot_express_is_refused() -> None:
    class Mapping(BaseModel):
        headers: dict[str, str]

    class Plugin:
        @hookimpl
        def converge_register_tools(self, register: Any) -> None:
            register(Tool("http", echo, Mapping, Echo))

    with pytest.raises(PluginError, match=r"tool 'http' args field 'headers'"):
        collected(("p", Plugin()))


# ------------------------------------------------------------------ meta-test


def hookspec_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if name.startswith("converge_")]


def test_every_hookspec_documents_what_it_receives_and_returns() -> None:
    for name in hookspec_names():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Receives" in doc and "Returns" in doc and "firstresult" in doc, name


def test_observers_see_a_real_job_in_trace_order() -> None:
    from converge_rules import api

    ruleset = api.loads("""
ruleset demo
fact Quote { sku: str, amount: float }
fact Price { key sku: str, amount: float }
agent propose { when Quote(sku, amount) emit Price(sku: sku, amount: amount) }
policy Price { resolve by lowest amount }
""", plugins=False)
    result = api.run(ruleset, [("Quote", {"sku": "A", "amount": 2.0}),
                               ("Quote", {"sku": "A", "amount": 1.0})])
    recorder = Recorder()
    Observers(with_plugins(("r", recorder))).observe(result)
    kinds = [kind for kind, _ in recorder.seen]
    assert kinds == ["conflict", "effect", "cycle", "result"]
    conflict = recorder.seen[0][1]
    assert conflict.winner == {"sku": "A", "amount": 1.0}  # type: ignore[attr-defined]
    assert recorder.seen[-1][1] is result


def test_observe_routes_trace_events_to_their_hooks() -> None:
    from types import SimpleNamespace

    events = [SimpleNamespace(event=name) for name in
              ("fact_added", "cycle_start", "conflict", "effect_merged", "effect_discarded",
               "cycle_end", "status")]
    result = SimpleNamespace(trace=SimpleNamespace(events=lambda: iter(events)))
    recorder = Recorder()
    Observers(with_plugins(("r", recorder))).observe(result)
    assert [(kind, getattr(value, "event", value)) for kind, value in recorder.seen] == [
        ("conflict", "conflict"), ("effect", "effect_merged"), ("effect", "effect_discarded"),
        ("cycle", "cycle_end"), ("result", result)]


def test_run_checks_adds_plugin_diagnostics_to_a_checked_ruleset() -> None:
    from converge_rules.language.checks.checker import check
    from converge_rules.language.diagnostics.core import Diagnostic, Severity
    from converge_rules.language.loader import load_file
    from converge_rules.plugins import run_checks

    def needs_tests(checked: Any) -> list[Diagnostic]:
        if checked.tests:
            return []
        return [Diagnostic("ACME001", Severity.WARNING, f"ruleset {checked.name} has no tests",
                           None, "add a test block")]

    class Plugin:
        @hookimpl
        def converge_register_checks(self, register: Any) -> None:
            register("needs-tests", needs_tests)

    registries = collected(("acme", Plugin()))
    checked = check(load_file("r.cvg", source="ruleset r\nfact A { x: int }\n"))
    assert [d.message for d in run_checks(registries, checked)] == ["ruleset r has no tests"]

    class Broken:
        @hookimpl
        def converge_register_checks(self, register: Any) -> None:
            register("broken", lambda checked: [1 / 0])

    with pytest.raises(PluginError, match=r"'broken-plugin'.*check 'broken' raised "
                                          r"ZeroDivisionError"):
        run_checks(collected(("broken-plugin", Broken())), checked)
