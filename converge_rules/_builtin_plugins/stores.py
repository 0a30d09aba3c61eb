"""The built-in stores (SQLite, the embedded default), registered as a plugin."""

from __future__ import annotations

from collections.abc import Callable

from converge_rules.hookspecs import hookimpl


@hookimpl
def converge_register_stores(register: Callable[..., None]) -> None:
    import converge_rules.store as store

    # The store package does not export its registry yet in every version.
    stores = getattr(store, "STORES", {})
    for name, factory in sorted(stores.items()):
        register(name, factory, "built-in")
