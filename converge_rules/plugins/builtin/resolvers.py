"""The engine's built-in resolvers for ``policy … using NAME``, registered as a plugin.

The policy criteria (``highest``, ``latest``, ``majority``…) are syntax, not resolvers:
today the engine's table starts empty and this plugin registers nothing. It is here so
that a resolver the engine ships is listed and checked like a plugin's."""

from __future__ import annotations

from collections.abc import Callable

from converge_rules.plugins.hookspecs import hookimpl


@hookimpl
def converge_register_resolvers(register: Callable[..., None]) -> None:
    from converge_rules.engine.policies import RESOLVERS

    for name, resolver in sorted(RESOLVERS.items()):
        # Plugins' resolvers are installed into the same table: register only ours.
        if getattr(resolver, "__module__", "").startswith("converge_rules."):
            register(name, resolver, "built-in")
