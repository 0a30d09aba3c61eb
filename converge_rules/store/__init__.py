"""The job store: where a job's trace (and later its checkpoints and knowledge) is
kept, behind the protocols of :mod:`.base` — not the engine's fact store
(:mod:`converge_rules.engine.factstore`). Backends are registered as stores by plugins
(the built-in one, ``jsonl``, by :mod:`converge_rules.plugins.builtin.stores`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from converge_rules.store.jsonl import JsonLinesTraceSink

if TYPE_CHECKING:
    from converge_rules.store.base import CheckpointStore, KnowledgeStore, TraceSink

__all__ = ["CheckpointStore", "JsonLinesTraceSink", "KnowledgeStore", "TraceSink"]

_FROM_BASE = frozenset(("CheckpointStore", "KnowledgeStore", "TraceSink"))


def __getattr__(name: str) -> Any:
    """The protocols of :mod:`.base`, imported on first use: registering the built-in
    stores (every run does) imports this package, and a run without a store never needs
    :mod:`.base`'s dataclasses (building them is CPU at start-up)."""
    if name in _FROM_BASE:
        from converge_rules.store import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
