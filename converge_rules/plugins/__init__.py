"""Plugins: the hook specifications (:mod:`.hookspecs`), the manager that loads them
(:mod:`.manager`), the authoring API plugin writers import (:mod:`.api`), the
:class:`~.registries.Registries` value a manager's registrations become, the observers
(:mod:`.observers`), and :mod:`.builtin` — the built-in features, registered through
the same hooks a third party uses."""

from converge_rules.plugins.manager import (
    DEFAULT_PLUGINS,
    ENV_ALLOW,
    ENV_DISABLE,
    Observers,
    PluginManager,
    PluginOrigin,
    collect,
    get_plugin_manager,
    install,
    load_registries,
    notify_observers,
    plugin_names,
    requested_plugin_modules,
    run_checks,
)

__all__ = [
    "DEFAULT_PLUGINS",
    "ENV_ALLOW",
    "ENV_DISABLE",
    "Observers",
    "PluginManager",
    "PluginOrigin",
    "collect",
    "get_plugin_manager",
    "install",
    "load_registries",
    "notify_observers",
    "plugin_names",
    "requested_plugin_modules",
    "run_checks",
]
