"""A small converge_rules plugin to copy: a tool, a conflict resolver and a pruning rule.

* ``fx_rate`` — the tool the pricing and rates example rulesets declare
  (``uses tool fx_rate``): ``fx_rate(currency: str) -> {usd: float}`` from a fixed
  table of demo rates, offline and deterministic. A currency it does not know fails the
  call (and so discards the calling agent's effect). For real rates, call an HTTP API
  with ``converge-http`` instead.

* ``median`` — for ``policy T { resolve by using median }``: prefers the contender
  holding the median value of the type's first numeric non-key field. With an even
  number of contenders the two middle ones survive and the next criterion (or
  ``on tie``) decides.
* ``ttl`` — drops a fact whose ``ttl`` field is smaller than its age in cycles, for any
  fact type that declares ``ttl: int``; or, in a ruleset, ``prune Quote using
  ttl(cycles: 7)``: a Quote older than 7 cycles. Plugin pruners are opt-in: per
  ruleset (``prune T using NAME(…)``) or per run (``converge run --pruner ttl``, or
  ``converge_rules.load(path, pruners=["ttl"])``).
* ``converge_summarize`` — folds the facts that ``prune T … into knowledge`` moves in
  a cycle into one ``TSummary`` in the knowledge store: the cycle, how many moved, and
  the lowest, highest and total of each numeric field (``value_min``, ``value_max``,
  ``value_sum``). Agents read it with ``call knowledge_find(type: "TSummary", …)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from converge_rules.plugins.api import Contender, Tool, TypeSpec, hookimpl

__version__ = "0.1.0"

#: The tool, its function and models named by reference with their types declared, so
#: ``converge check`` does not import pydantic; a job imports ``converge_example.fx``
#: when it uses the tool (and checks the types against its models then). A plugin that
#: does not mind the import passes the function and model classes themselves.
FX_RATE = Tool("fx_rate", "converge_example.fx:fx_rate", "converge_example.fx:FxArgs",
               "converge_example.fx:FxRate", "demo exchange rates to USD (offline)",
               arg_types={"currency": "str"}, result_types={"usd": "float"})

_MOVED = ("DEMO_RATES", "FxArgs", "FxRate", "fx_rate")


def __getattr__(name: str) -> Any:
    """The tool's models and function, from :mod:`converge_example.fx` on first use
    (they were defined here before; importing them from here still works)."""
    if name in _MOVED:
        from converge_example import fx

        return getattr(fx, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def median(type_spec: TypeSpec, contenders: Sequence[Contender]) -> list[int]:
    """Indexes of the contender(s) at the median of the first numeric non-key field;
    every index when the type has no such field or no contender has a value."""
    keys = set(type_spec.key_positions)
    position = next((i for i, f in enumerate(type_spec.fields)
                     if i not in keys and f.type.base in ("int", "float")), None)
    everyone = list(range(len(contenders)))
    if position is None:
        return everyone
    # Ties on the value are broken by merge order, so the result is deterministic.
    ranked = sorted((c.values[position], i) for i, c in enumerate(contenders)
                    if c.values[position] is not None)
    if not ranked:
        return everyone
    middle = len(ranked) // 2
    chosen = ranked[middle - 1:middle + 1] if len(ranked) % 2 == 0 else [ranked[middle]]
    return sorted(i for _, i in chosen)


class ExpireByTtl:
    """The ``ttl`` pruner: a fact older (in cycles) than its ``ttl`` field is dropped;
    bound to ``cycles`` (``prune Quote using ttl(cycles: 7)``), a fact older than that
    is, whatever its fields."""

    #: what ``prune T using ttl(…)`` may pass (checked by ``converge check``)
    parameters: Mapping[str, str] = {"cycles": "int?"}

    def __init__(self, cycles: int | None = None) -> None:
        if cycles is not None and cycles < 0:
            raise ValueError(f"cycles must be 0 or more, got {cycles}")
        self.cycles = cycles

    def bind(self, arguments: Mapping[str, Any]) -> ExpireByTtl:
        """The pruner a ruleset's ``using ttl(cycles: N)`` applies."""
        return ExpireByTtl(arguments.get("cycles"))

    def applies_to(self, fact_type: str, field_names: tuple[str, ...]) -> bool:
        return self.cycles is not None or "ttl" in field_names

    def __call__(self, fact_type: str, fields: Mapping[str, Any], age: int) -> bool:
        limit = self.cycles if self.cycles is not None else fields.get("ttl")
        return isinstance(limit, int) and age > limit


@hookimpl
def converge_register_tools(register: Callable[[Tool], None]) -> None:
    register(FX_RATE)


@hookimpl
def converge_register_resolvers(register: Callable[..., None]) -> None:
    register("median", median, "the contender at the median of the first numeric field")


@hookimpl
def converge_register_pruners(register: Callable[..., None]) -> None:
    register("ttl", ExpireByTtl(), "drops a fact older than `cycles` (or its `ttl` field)")


@hookimpl
def converge_summarize(fact_type: str, facts: list[dict[str, Any]], cycle: int
                       ) -> list[dict[str, Any]]:
    """One ``<fact_type>Summary`` of the facts moved into knowledge in ``cycle``."""
    fields: dict[str, Any] = {"cycle": cycle, "count": len(facts)}
    numeric = sorted({name for f in facts for name, v in f.items()
                      if isinstance(v, int | float) and not isinstance(v, bool)})
    for name in numeric:
        values = [f[name] for f in facts if isinstance(f.get(name), int | float)
                  and not isinstance(f.get(name), bool)]
        fields[f"{name}_min"] = min(values)
        fields[f"{name}_max"] = max(values)
        fields[f"{name}_sum"] = sum(values)
    return [{"type": f"{fact_type}Summary", "fields": fields}]
