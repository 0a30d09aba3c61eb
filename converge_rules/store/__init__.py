"""Trace, checkpoint and knowledge storage behind one interface (see :mod:`.base`)."""

from __future__ import annotations

from converge_rules.store.base import CheckpointStore, KnowledgeStore, TraceSink
from converge_rules.store.jsonl import JsonLinesTraceSink

#: name → trace sink factory(path); plugins add backends.
TRACE_SINKS = {"jsonl": JsonLinesTraceSink}

__all__ = ["TRACE_SINKS", "CheckpointStore", "JsonLinesTraceSink", "KnowledgeStore", "TraceSink"]
