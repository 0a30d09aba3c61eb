"""The built-in stores, registered through ``converge_register_stores`` like any
plugin's: ``jsonl``, the JSON Lines trace file (``converge run --trace FILE``)."""

from __future__ import annotations

from converge_rules.plugins.hookspecs import Register, hookimpl
from converge_rules.store.jsonl import JsonLinesTraceSink


@hookimpl
def converge_register_stores(register: Register) -> None:
    register("jsonl", JsonLinesTraceSink, "the trace as JSON Lines, one event per line")
