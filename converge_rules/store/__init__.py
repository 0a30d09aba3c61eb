"""The job store: where a job's trace (and later its checkpoints and knowledge) is
kept, behind the protocols of :mod:`.base` — not the engine's fact store
(:mod:`converge_rules.engine.factstore`). Backends are registered as stores by plugins
(the built-in one, ``jsonl``, by :mod:`converge_rules.plugins.builtin.stores`)."""

from __future__ import annotations

from converge_rules.store.base import CheckpointStore, KnowledgeStore, TraceSink
from converge_rules.store.jsonl import JsonLinesTraceSink

__all__ = ["CheckpointStore", "JsonLinesTraceSink", "KnowledgeStore", "TraceSink"]
