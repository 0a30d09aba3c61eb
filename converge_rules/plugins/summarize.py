"""The ``converge_summarize`` hooks of one plugin manager, as the engine calls them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from converge_rules.errors import PluginError

if TYPE_CHECKING:
    import pluggy


class Summarizers:
    """Calls every plugin's ``converge_summarize`` (plugin registration order) and
    gathers their summaries; a hook that raises or answers something that is not a
    list of summaries is a ``PluginError`` naming its plugin. Falsy when no plugin
    implements the hook, so a job without one pays nothing."""

    def __init__(self, pm: pluggy.PluginManager | None) -> None:
        """The ``converge_summarize`` hooks of ``pm``; none for None (the built-ins
        alone, which implement none)."""
        self._impls: tuple[pluggy.HookImpl, ...] = () if pm is None else tuple(
            i for i in pm.hook.converge_summarize.get_hookimpls()
            if not (i.wrapper or i.hookwrapper)
        )

    def __bool__(self) -> bool:
        return bool(self._impls)

    def __call__(self, fact_type: str, facts: list[dict[str, Any]], cycle: int
                 ) -> list[Mapping[str, Any]]:
        """The summaries of ``facts`` (of ``fact_type``, moved in ``cycle``)."""
        out: list[Mapping[str, Any]] = []
        for impl in self._impls:
            kwargs = {"fact_type": fact_type, "facts": [dict(f) for f in facts],
                      "cycle": cycle}
            try:
                got = impl.function(**{k: v for k, v in kwargs.items()
                                       if k in impl.argnames})
            except (Exception, SystemExit) as exc:
                raise PluginError(impl.plugin_name, f"converge_summarize raised "
                                  f"{type(exc).__name__}: {exc}") from None
            if got is None:
                continue
            if not isinstance(got, list | tuple) or not all(
                    isinstance(s, Mapping) and isinstance(s.get("type"), str)
                    and isinstance(s.get("fields"), Mapping) for s in got):
                raise PluginError(impl.plugin_name, "converge_summarize must return a "
                                  "list of {'type': NAME, 'fields': {…}}, got "
                                  f"{got!r:.80}")
            out.extend(got)
        return out
