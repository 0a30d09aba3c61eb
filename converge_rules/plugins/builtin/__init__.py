"""Built-in features, registered as plugins like any third-party one (as pytest does
with its ``DEFAULT_PLUGINS``): the expression functions, the conflict resolvers, the
executors and the stores. :data:`converge_rules.plugins.DEFAULT_PLUGINS` lists them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

_F = TypeVar("_F", bound=Callable[..., object])

HOOK_MARK = "converge_rules_impl"
"""The attribute ``hookimpl`` (``pluggy.HookimplMarker("converge_rules")``) sets on a
hook function: ``PROJECT + "_impl"``."""


def hook(function: _F) -> _F:
    """Mark a built-in hook function exactly as a bare ``@hookimpl`` does, without
    importing pluggy: a load of the built-ins alone (``plugins=False``) calls these
    functions directly (:func:`converge_rules.plugins.collecting.builtin_registries`),
    and pluggy sees them as any plugin's when the installed plugins are loaded."""
    setattr(function, HOOK_MARK, {"wrapper": False, "hookwrapper": False,
                                   "optionalhook": False, "tryfirst": False,
                                   "trylast": False, "specname": None})
    return function
