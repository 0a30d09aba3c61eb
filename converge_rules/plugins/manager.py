"""The plugin manager and the registries built from it.

:func:`get_plugin_manager` is the one factory: it adds the hook specifications, registers
the built-in plugins (built-in functions, resolvers, executors and stores are plugins
too), loads the entry-point group ``converge_rules`` and any ``--plugin MODULE``, and
verifies every hook name. :func:`collect` calls the registration hooks and returns the
:class:`~converge_rules.plugins.registries.Registries`, sorted by name.

Environment:

* ``CONVERGE_PLUGINS`` — comma-separated allow-list of entry-point plugin names: only
  these are loaded (naming one that is not installed is an error).
* ``CONVERGE_DISABLE_PLUGINS`` — comma-separated entry-point plugin names not to load.

Built-in plugins and ``--plugin`` modules are always loaded: they are asked for
explicitly. Every failure — a plugin that does not import, has a misspelled hook, or
raises in a hook — is a :class:`~converge_rules.errors.PluginError` naming the plugin.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import pluggy

from converge_rules.errors import PluginError
from converge_rules.plugins import hookspecs
from converge_rules.plugins.collecting import (
    DEFAULT_PLUGINS,
    ENV_ALLOW,
    ENV_DISABLE,
    KINDS,
    builtin_registries,
    call_registration,
    registries_from,
)
from converge_rules.plugins.observers import Observers
from converge_rules.plugins.registries import Registries
from converge_rules.plugins.summarize import Summarizers
from converge_rules.records import record

__all__ = ["DEFAULT_PLUGINS", "ENV_ALLOW", "ENV_DISABLE", "PluginManager", "PluginOrigin",
           "builtin_registries", "collect", "get_plugin_manager", "load_registries",
           "plugin_names", "run_checks"]


@record
class PluginOrigin:
    """Where a registered plugin came from, for ``converge plugins``."""

    name: str
    kind: Literal["builtin", "entry-point", "module"]
    module: str
    distribution: str | None = None
    version: str | None = None


class PluginManager(pluggy.PluginManager):
    """pluggy's manager for the ``converge_rules`` project, remembering where each
    plugin came from (:attr:`origins`, by plugin name, in load order)."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.origins: dict[str, PluginOrigin] = {}

    def add(self, plugin: object, origin: PluginOrigin) -> None:
        """Register ``plugin`` under ``origin.name`` and verify its hooks; on any
        failure the manager is left as it was and a ``PluginError`` names the plugin."""
        try:
            self.register(plugin, name=origin.name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise PluginError(origin.name, f"cannot be registered: {self._why(exc)}") from None
        try:
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            self.unregister(name=origin.name)
            raise PluginError(
                origin.name,
                f"{_first_line(exc)}; hook names are listed in docs/plugins.md "
                "(or mark the hook @hookimpl(optionalhook=True))",
            ) from None
        self.origins[origin.name] = origin

    def _why(self, exc: Exception) -> str:
        """What pluggy found wrong, all of it: its first line only names the plugin and
        the hook (``Plugin 'x' for hook 'converge_register_tools'``); the reason and the
        hookimpl follow. A hook whose arguments differ gets the spec's arguments."""
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        if not isinstance(exc, pluggy.PluginValidationError) or len(lines) < 2:
            return _first_line(exc)
        found = re.search(r"hook '(\w+)'", lines[0])
        spec = getattr(getattr(self.hook, found.group(1), None), "spec", None) if found \
            else None
        definition = [ln.removeprefix("hookimpl definition:").strip() for ln in lines
                      if ln.startswith("hookimpl definition:")]
        # pluggy prints the arguments as a set: in sorted order, the same every run
        reasons = [re.sub(r"\{([^{}]*)\}", _sorted_names, ln) for ln in lines[1:]
                   if not ln.startswith("hookimpl definition:")]
        text = f"{definition[0]}: " if definition else ""
        text += "; ".join(reasons)
        if spec is not None and "Argument(s)" in text:
            text += (f"; the hook takes ({', '.join(spec.argnames)}), or fewer of them "
                     "(docs/plugins.md)")
        return text


def _sorted_names(found: re.Match[str]) -> str:
    """A set of argument names as pluggy prints it (``{'extra', 'registry'}``), its
    names sorted: a set's order changes from one process to the next."""
    return "{" + ", ".join(sorted(n.strip() for n in found.group(1).split(","))) + "}"


def get_plugin_manager(
    extra_modules: Sequence[str] = (),
    *,
    entry_points: bool = True,
    environ: Mapping[str, str] | None = None,
) -> PluginManager:
    """A plugin manager with the specs, the built-ins, the installed entry-point
    plugins (filtered by ``CONVERGE_PLUGINS`` / ``CONVERGE_DISABLE_PLUGINS``) and the
    ``extra_modules`` (``--plugin MODULE``) registered, every hook verified.

    Raises ``PluginError`` naming the first plugin that fails to import or register."""
    if isinstance(extra_modules, str):  # (read a character at a time: "plugin 'c'")
        raise TypeError(f"the plugin modules are a list of names, got the str "
                        f"{extra_modules!r:.80}; write [{extra_modules!r:.80}]")
    env = os.environ if environ is None else environ
    pm = PluginManager()
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        name = "builtin." + module_name.rsplit(".", 1)[1]
        pm.add(module, PluginOrigin(name, "builtin", module_name))
    if entry_points:
        _load_entry_points(pm, _names(env.get(ENV_ALLOW)), _names(env.get(ENV_DISABLE)) or set())
    for module_name in extra_modules:
        if pm.has_plugin(module_name):
            continue
        extra = _import(module_name, module_name)
        if pm.is_registered(extra):
            continue  # an installed plugin's module named again (--plugin converge_ray)
        pm.add(extra, PluginOrigin(module_name, "module", module_name))
        if not pm.get_hookcallers(extra):
            # A module named on purpose that adds nothing: most likely its hook
            # functions lack the marker (pluggy ignores them), or the name is wrong.
            pm.unregister(extra)
            pm.origins.pop(module_name, None)
            unmarked = sorted(name for name in dir(extra) if name.startswith("converge_")
                              and callable(getattr(extra, name)))
            raise PluginError(module_name, "implements no hook" + (
                ": " + ", ".join(unmarked) + (" is" if len(unmarked) == 1 else " are")
                + " not marked @hookimpl" if unmarked else "")
                + "; decorate each hook function with @hookimpl (from "
                "converge_rules.plugins.api import hookimpl), or check the module's name "
                "(hook names are listed in docs/plugins.md)")
    return pm


def _names(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _load_entry_points(pm: PluginManager, allow: set[str] | None, deny: set[str]) -> None:
    import importlib.metadata  # here: the built-ins alone (plugins=False) never need it

    found = sorted(
        importlib.metadata.entry_points(group=hookspecs.PROJECT), key=lambda ep: ep.name
    )
    if allow is not None:
        missing = sorted(allow - {ep.name for ep in found})
        if missing:
            installed = ", ".join(ep.name for ep in found) or "none"
            raise PluginError(
                missing[0],
                f"is named in {ENV_ALLOW} but not installed (installed: {installed}); "
                f"pip install it or remove it from {ENV_ALLOW}",
            )
    for ep in found:
        if (allow is not None and ep.name not in allow) or ep.name in deny:
            continue
        if pm.has_plugin(ep.name):
            continue  # the same distribution seen twice on sys.path
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:
            raise PluginError(
                ep.name,
                f"failed to import {ep.value}: {type(exc).__name__}: {exc}; fix or "
                f"uninstall it, or skip it with {ENV_DISABLE}={ep.name}",
            ) from None
        dist = ep.dist
        pm.add(plugin, PluginOrigin(
            ep.name, "entry-point", ep.value,
            distribution=dist.name if dist is not None else None,
            version=dist.version if dist is not None else None,
        ))


def _import(module_name: str, plugin: str) -> object:
    try:
        return importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        raise PluginError(
            plugin, f"failed to import module {module_name}: {type(exc).__name__}: {exc}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ------------------------------------------------------------------------ collect


def collect(pm: pluggy.PluginManager) -> Registries:
    """Call every registration hook and return what was registered, each kind sorted
    by name.

    Raises ``PluginError`` naming the plugin when a hook raises or registers something
    invalid (nothing from that hook is kept), and naming both plugins when two
    register the same name."""
    def calls() -> Iterable[tuple[str, list[object]]]:
        for hook_name, kind in KINDS.items():
            caller: pluggy.HookCaller = getattr(pm.hook, hook_name)
            # In registration order (built-ins first), so a duplicate is blamed on the
            # plugin loaded later.
            for impl in caller.get_hookimpls():
                if impl.hookwrapper or impl.wrapper:
                    raise PluginError(impl.plugin_name,
                                      f"{hook_name} may not be a wrapper hook")
                builtin = getattr(impl.plugin, "__name__", None) in DEFAULT_PLUGINS
                yield kind, call_registration(impl.plugin_name, impl.function,
                                              impl.argnames, hook_name, kind,
                                              builtin=builtin)

    return registries_from(calls(), Observers(pm), Summarizers(pm))


def load_registries(modules: Sequence[str] = (), *, entry_points: bool = True) -> Registries:
    """Everything the plugins provide: the built-ins, the installed entry-point plugins
    (unless ``entry_points`` is False) and the plugin ``modules`` (``--plugin MODULE``):
    ``collect(get_plugin_manager(modules, entry_points=entry_points))``."""
    if isinstance(modules, str):
        get_plugin_manager(modules)  # (says what to write)
    return collect(get_plugin_manager(tuple(modules), entry_points=entry_points))


def run_checks(registries: Registries, checked: Any) -> list[Any]:
    """``registries.run_checks(checked)``: the diagnostics of every registered check."""
    return registries.run_checks(checked)


def plugin_names(pm: PluginManager, kinds: Iterable[str] = ("entry-point", "module")) -> list[str]:
    """Names of the registered plugins of the given origin kinds, in load order."""
    wanted = set(kinds)
    return [name for name, origin in pm.origins.items() if origin.kind in wanted]
