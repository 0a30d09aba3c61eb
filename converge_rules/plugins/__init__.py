"""Plugins, split by job:

* :mod:`.hookspecs` — the hook specifications (what a plugin may implement);
* :mod:`.api` — the authoring API plugin writers import (``Tool``, ``Function``,
  ``Resolver``, ``Pruner``, ``Check``, ``hookimpl`` and the types they see);
* :mod:`.manager` — the plugin manager: loads the built-ins, entry points and
  ``--plugin`` modules (allow and deny lists), verifies every hook, and
  :func:`collect` s the registrations into a :class:`Registries` value;
* :mod:`.registries` — that value, which travels explicitly to the checker, the
  compiler and the engine;
* :mod:`.observers` — the observer hooks, fed a finished job's trace;
* :mod:`.builtin` — the built-in features, registered through the same hooks a third
  party uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from converge_rules.plugins.manager import (
        DEFAULT_PLUGINS,
        ENV_ALLOW,
        ENV_DISABLE,
        PluginManager,
        PluginOrigin,
        builtin_registries,
        collect,
        get_plugin_manager,
        load_registries,
        plugin_names,
        run_checks,
    )
    from converge_rules.plugins.observers import Observers, notify_observers
    from converge_rules.plugins.registries import Registries

__all__ = [
    "DEFAULT_PLUGINS",
    "ENV_ALLOW",
    "ENV_DISABLE",
    "Observers",
    "PluginManager",
    "PluginOrigin",
    "Registries",
    "builtin_registries",
    "collect",
    "get_plugin_manager",
    "load_registries",
    "notify_observers",
    "plugin_names",
    "run_checks",
]

# Imported on first use (PEP 562): a load of the built-ins alone imports the modules
# below this package (the registries, the built-in plugins) but never the manager, and
# with it pluggy.
_EXPORTS = {
    "Observers": "observers", "notify_observers": "observers", "Registries": "registries",
    **dict.fromkeys(("DEFAULT_PLUGINS", "ENV_ALLOW", "ENV_DISABLE", "PluginManager",
                     "PluginOrigin", "builtin_registries", "collect", "get_plugin_manager",
                     "load_registries", "plugin_names", "run_checks"), "manager"),
}


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
