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
