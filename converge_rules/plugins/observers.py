"""The observer hooks (``converge_on_cycle`` …) of one plugin manager.

A finished job's trace is replayed to them in trace order, then the result: the
engine's hot loop never goes through pluggy, and observers see exactly what the trace
records, the same for any executor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from converge_rules.errors import PluginError

if TYPE_CHECKING:
    import pluggy

OBSERVER_HOOKS: tuple[str, ...] = (
    "converge_on_cycle",
    "converge_on_effect",
    "converge_on_conflict",
    "converge_on_result",
)
"""The observer hooks (:mod:`~converge_rules.plugins.hookspecs` specifies them)."""


class Observers:
    """Calls the observer hooks (``converge_on_cycle`` …) of a plugin manager.

    :meth:`observe` replays a finished job's trace to them, in trace order, and ends
    with ``converge_on_result``: the engine's hot loop never goes through pluggy, and
    observers see exactly what the trace records (the same for any executor). Hooks
    nobody implements cost nothing. An observer that raises is a ``PluginError``
    naming its plugin."""

    def __init__(self, pm: pluggy.PluginManager | None) -> None:
        """The observer hooks of ``pm``; none for None (the built-ins alone, which
        implement none)."""
        self._impls: dict[str, tuple[pluggy.HookImpl, ...]] = {
            name: () if pm is None else tuple(
                i for i in getattr(pm.hook, name).get_hookimpls()
                if not (i.wrapper or i.hookwrapper))
            for name in OBSERVER_HOOKS
        }

    def wants(self, hook_name: str) -> bool:
        """True when some plugin implements the observer hook ``hook_name``."""
        return bool(self._impls.get(hook_name))

    def observe(self, result: Any) -> None:
        """Send a finished job to the observers: each ``cycle_end`` trace event to
        ``converge_on_cycle``, each ``effect_merged``/``effect_discarded`` to
        ``converge_on_effect``, each ``conflict`` to ``converge_on_conflict`` (trace
        order), then the result to ``converge_on_result``."""
        routes = {name: hook for name, hook in _EVENT_HOOKS.items() if self.wants(hook)}
        if routes:
            for event in result.trace.events():
                hook = routes.get(getattr(event, "event", ""))
                if hook is not None:
                    self._notify(hook, "event", event)
        self.on_result(result)

    def on_cycle(self, event: object) -> None:
        self._notify("converge_on_cycle", "event", event)

    def on_effect(self, event: object) -> None:
        self._notify("converge_on_effect", "event", event)

    def on_conflict(self, event: object) -> None:
        self._notify("converge_on_conflict", "event", event)

    def on_result(self, result: object) -> None:
        self._notify("converge_on_result", "result", result)

    def _notify(self, hook_name: str, arg: str, value: object) -> None:
        for impl in self._impls[hook_name]:
            kwargs = {arg: value} if arg in impl.argnames else {}
            try:
                impl.function(**kwargs)
            except (Exception, SystemExit) as exc:
                raise PluginError(
                    impl.plugin_name, f"{hook_name} raised {type(exc).__name__}: {exc}"
                ) from None


# Trace event name → observer hook.
_EVENT_HOOKS: dict[str, str] = {
    "cycle_end": "converge_on_cycle",
    "effect_merged": "converge_on_effect",
    "effect_discarded": "converge_on_effect",
    "conflict": "converge_on_conflict",
}


def notify_observers(result: Any, registries: Any) -> None:
    """Send a finished job to the observers of the plugin manager ``registries`` came
    from (:attr:`Registries.observers`); nothing when it has none."""
    observers = getattr(registries, "observers", None)
    if observers is not None:
        observers.observe(result)
