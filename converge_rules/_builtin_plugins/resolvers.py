"""The engine's built-in conflict resolvers, registered as a plugin so that
``converge plugins`` lists them and ``policy … using NAME`` can name them."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from converge_rules.hookspecs import hookimpl


@hookimpl
def converge_register_resolvers(register: Callable[..., None]) -> None:
    try:
        module = importlib.import_module("converge_rules.engine.policies")
    except ModuleNotFoundError as exc:  # the engine package without policies yet
        if exc.name != "converge_rules.engine.policies":
            raise
        return
    for name, resolver in sorted(module.RESOLVERS.items()):
        # Plugins' entries are installed into the same table: register only the
        # engine's own, or they would be registered twice.
        if not getattr(resolver, "__module__", "").startswith("converge_rules."):
            continue
        register(name, resolver, "built-in")
