"""Registration without pluggy: the registration hooks' callbacks, the checks of what
they register, and the :class:`~converge_rules.plugins.registries.Registries` built
from it. :func:`converge_rules.plugins.collect` calls a plugin manager's hooks through
these; :func:`builtin_registries` calls the built-in plugins' hook functions directly
(the same functions, in the same order, with the same callbacks), so that a load of the
built-ins alone (``load(..., plugins=False)``, ``--no-plugins``) imports neither pluggy
nor the plugin manager (~3 ms of a start)."""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from converge_rules.errors import PluginError
from converge_rules.plugins.api import Entry, Function, Tool
from converge_rules.plugins.observers import Observers
from converge_rules.plugins.registries import Registries
from converge_rules.plugins.summarize import Summarizers

DEFAULT_PLUGINS: tuple[str, ...] = (
    "converge_rules.plugins.builtin.functions",
    "converge_rules.plugins.builtin.resolvers",
    "converge_rules.plugins.builtin.executors",
    "converge_rules.plugins.builtin.stores",
    "converge_rules.plugins.builtin.knowledge",
)
"""The built-in plugins' modules, registered first, each named ``builtin.<last part>``."""

ENV_ALLOW = "CONVERGE_PLUGINS"
ENV_DISABLE = "CONVERGE_DISABLE_PLUGINS"

KINDS: dict[str, str] = {
    "converge_register_tools": "tools",
    "converge_register_functions": "functions",
    "converge_register_resolvers": "resolvers",
    "converge_register_pruners": "pruners",
    "converge_register_executors": "executors",
    "converge_register_stores": "stores",
    "converge_register_checks": "checks",
}
# Names used inside rulesets must be identifiers; executor and store names are only
# typed on the command line, so dashes and dots are fine there.
_RULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CLI_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_IN_RULES = frozenset({"tools", "functions", "resolvers"})


def builtin_registries() -> Registries:
    """The built-in plugins alone: built-in functions, resolvers, executors and stores,
    no installed plugin. What ``collect`` makes of a plugin manager holding only them
    (``load_registries(entry_points=False)``), without pluggy: each built-in module's
    hook functions called as the manager calls them, in its order (hook by hook, the
    modules in :data:`DEFAULT_PLUGINS` order); no observer or ``converge_summarize``
    hook, as the built-ins implement none."""
    modules = [("builtin." + name.rsplit(".", 1)[1], importlib.import_module(name))
               for name in DEFAULT_PLUGINS]

    def calls() -> Iterable[tuple[str, list[Any]]]:
        for hook_name, kind in KINDS.items():
            for plugin, module in modules:
                function = getattr(module, hook_name, None)
                if function is not None:
                    code = function.__code__
                    argnames = code.co_varnames[:code.co_argcount
                                                - len(function.__defaults__ or ())]
                    yield kind, call_registration(plugin, function, argnames, hook_name,
                                                  kind, builtin=True)

    return registries_from(calls(), Observers(None), Summarizers(None))


def registries_from(calls: Iterable[tuple[str, list[Any]]], observers: Any,
                    summarizers: Any) -> Registries:
    """The registries of what each registration call registered (``(kind, items)``,
    in call order), each kind sorted by name. A name registered twice is a
    ``PluginError`` naming the plugin that registered it later."""
    found: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS.values()}
    for kind, items in calls:
        for item in items:
            other = found[kind].get(item.name)
            if other is not None:
                raise PluginError(
                    item.plugin,
                    f"registers {kind[:-1]} {item.name!r}, which plugin {other.plugin!r} "
                    f"already registered; uninstall or disable one of them "
                    f"({ENV_DISABLE}={item.plugin})",
                )
            found[kind][item.name] = item
    ordered = {kind: MappingProxyType(dict(sorted(items.items())))
               for kind, items in found.items()}
    return Registries(**ordered, observers=observers, summarizers=summarizers)


def call_registration(plugin: str, function: Callable[..., Any], argnames: Sequence[str],
                      hook_name: str, kind: str, *, builtin: bool) -> list[Any]:
    """What the registration hook ``function`` of ``plugin`` registers, checked. A hook
    that raises is a ``PluginError`` naming the plugin, and nothing it registered is
    kept."""
    pending: list[Any] = []
    # The built-in functions' arity is checked by a test instead: two of them are C
    # functions, whose signature inspect reads by tokenizing text, ~8 ms of every start.
    register = _register_callback(kind, plugin, pending, check_arity=not builtin)
    try:
        function(**{name: register for name in argnames})
    except PluginError:
        raise
    except (Exception, SystemExit) as exc:
        raise PluginError(plugin, f"{hook_name} raised {type(exc).__name__}: {exc}") from None
    return pending


def _register_callback(kind: str, plugin: str, pending: list[Any], *,
                       check_arity: bool = True) -> Callable[..., None]:
    pattern = _RULE_NAME if kind in _IN_RULES else _CLI_NAME

    def check_name(name: object) -> str:
        if not isinstance(name, str) or not pattern.match(name):
            rule = "an identifier" if kind in _IN_RULES else "letters, digits, _ . -"
            raise PluginError(plugin, f"registers {kind[:-1]} named {name!r}; a name must "
                                      f"be {rule}")
        return name

    def register_tool(tool: Tool) -> None:
        if not isinstance(tool, Tool):
            raise PluginError(plugin, f"register() for tools takes a converge_rules.plugins.api."
                                      f"Tool, not {type(tool).__name__}")
        check_name(tool.name)
        tool = dataclasses.replace(tool, plugin=plugin)
        try:
            tool.signature()
        except TypeError as exc:
            raise PluginError(plugin, str(exc)) from None
        pending.append(tool)

    def register_function(function: Function) -> None:
        if not isinstance(function, Function):
            raise PluginError(plugin, f"register() for functions takes a converge_rules."
                                      f"plugins.api.Function, not {type(function).__name__}")
        check_name(function.name)
        if not callable(function.fn):
            raise PluginError(plugin, f"function {function.name!r}: fn is not callable")
        function = dataclasses.replace(function, plugin=plugin)
        try:
            function.signature()
        except TypeError as exc:
            raise PluginError(plugin, str(exc)) from None
        if check_arity:
            _check_arity(plugin, function)
        pending.append(function)

    def register_entry(name: str, obj: object, description: str = "") -> None:
        check_name(name)
        if obj is None:
            raise PluginError(plugin, f"registers {kind[:-1]} {name!r} as None")
        if kind == "pruners":
            _check_pruner_parameters(plugin, name, obj)
        pending.append(Entry(name, obj, description, plugin))

    chosen = (register_tool if kind == "tools" else register_function
              if kind == "functions" else register_entry)

    def register(*args: Any, **kwargs: Any) -> None:
        try:
            chosen(*args, **kwargs)
        except TypeError as exc:
            if exc.__traceback__ is None or exc.__traceback__.tb_next is not None:
                raise  # raised inside: not the call's arguments
            # the call itself did not bind: say what register takes, not Python's words
            # about an inner function (`register_tool() takes 1 positional argument…`)
            given = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in
                                                    kwargs.items())])
            raise PluginError(plugin, f"register() for {kind} takes {_TAKES.get(kind, _ENTRY)}"
                                      f", not ({given:.120})") from None

    return register


_ENTRY = "(name, object, description='')"
_TAKES = {
    "tools": "one converge_rules.plugins.api.Tool: register(Tool(name, fn, args, "
             "result, description))",
    "functions": "one converge_rules.plugins.api.Function: register(Function(name, fn, "
                 "args, result))",
}


def _check_pruner_parameters(plugin: str, name: str, pruner: object) -> None:
    """A pruner that declares ``parameters`` declares them as name → language type and
    has a ``bind``: checked at registration, not when a ruleset first uses it."""
    from converge_rules.language.checks.types import from_text

    params = getattr(pruner, "parameters", None)
    if params is None:
        return
    if not isinstance(params, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
        raise PluginError(plugin, f"pruner {name!r}: parameters must map names to type "
                                  f"names (like {{'cycles': 'int?'}}), got {params!r:.60}")
    bad = [f"{k}: {v}" for k, v in params.items() if from_text(v, ()) is None]
    if bad:
        raise PluginError(plugin, f"pruner {name!r}: unknown parameter type(s) "
                                  f"{', '.join(bad)} (use str, int, float, bool, list[T], "
                                  "with ? when it may be left out)")
    if not callable(getattr(pruner, "bind", None)):
        raise PluginError(plugin, f"pruner {name!r} declares parameters but has no "
                                  "bind(arguments) method to take them")


def _check_arity(plugin: str, function: Function) -> None:
    """A function whose Python signature cannot take its declared arguments fails at
    registration, not in the middle of a run."""
    import inspect  # (~5 ms, for the plugins' functions alone)

    try:
        python = inspect.signature(function.fn)
    except (TypeError, ValueError):  # some built-ins have no introspectable signature
        return
    count = len(function.args) + (1 if function.variadic else 0)
    try:
        python.bind(*range(count))
    except TypeError:
        raise PluginError(
            plugin, f"function {function.name!r} declares {len(function.args)} argument(s) "
                    f"{list(function.args)} but its Python signature is {python}",
        ) from None
