"""The engine's built-in executors (serial, threads, processes), registered as a
plugin so that ``converge run --executor NAME`` finds them beside plugin executors."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from converge_rules.hookspecs import hookimpl


@hookimpl
def converge_register_executors(register: Callable[..., None]) -> None:
    try:
        module = importlib.import_module("converge_rules.engine.executors")
    except ModuleNotFoundError as exc:  # the engine package without executors yet
        if exc.name != "converge_rules.engine.executors":
            raise
        return
    for name, factory in sorted(module.EXECUTORS.items()):
        # Plugins' entries are installed into the same table: register only the
        # engine's own, or they would be registered twice.
        if not getattr(factory, "__module__", "").startswith("converge_rules."):
            continue
        register(name, factory, "built-in")
