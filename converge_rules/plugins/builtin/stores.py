"""The built-in stores (the JSON Lines trace sink; SQLite later), registered as a
plugin so ``converge plugins`` lists them beside plugin stores."""

from __future__ import annotations

from collections.abc import Callable

from converge_rules.plugins.hookspecs import hookimpl


@hookimpl
def converge_register_stores(register: Callable[..., None]) -> None:
    from converge_rules.store import TRACE_SINKS

    for name, factory in sorted(TRACE_SINKS.items()):
        # Plugins' stores are installed into the same table: register only our own.
        if getattr(factory, "__module__", "").startswith("converge_rules."):
            register(name, factory, "built-in")
