"""The engine's built-in executors (serial, threads), registered as a plugin so that
``converge plugins`` lists them and ``--executor NAME`` finds them beside plugin
executors."""

from __future__ import annotations

from collections.abc import Callable

from converge_rules.plugins.hookspecs import hookimpl


@hookimpl
def converge_register_executors(register: Callable[..., None]) -> None:
    from converge_rules.engine.executors import EXECUTORS

    for name, factory in sorted(EXECUTORS.items()):
        # Plugins' executors are installed into the same table: register only the
        # engine's own, or they would be registered twice.
        if getattr(factory, "__module__", "").startswith("converge_rules."):
            register(name, factory, "built-in")
