"""The built-in stores, registered through ``converge_register_stores`` like any
plugin's: ``jsonl``, the JSON Lines trace file (``converge run --trace FILE``), and
``sqlite``, the embedded job store (``converge run --store run.db``)."""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

from converge_rules.plugins.builtin import hook
from converge_rules.store.jsonl import JsonLinesTraceSink

if TYPE_CHECKING:
    from converge_rules.plugins.hookspecs import Register
    from converge_rules.store.sqlite import SqliteStore


class SqliteFactory:
    """Opens a :class:`~converge_rules.store.sqlite.SqliteStore` on a path or
    ``sqlite:///`` URL; imports sqlite3 only then (``converge check`` never pays
    for it). ``job_store`` marks a factory of job stores (``--store``), not of trace
    sinks (``--trace-store``)."""

    job_store = True

    def __call__(self, location: str | PathLike[str]) -> SqliteStore:
        from converge_rules.store.sqlite import SqliteStore

        return SqliteStore(location)

    def __repr__(self) -> str:
        return "SqliteFactory()"


@hook
def converge_register_stores(register: Register) -> None:
    register("jsonl", JsonLinesTraceSink, "the trace as JSON Lines, one event per line")
    register("sqlite", SqliteFactory(), "jobs in one SQLite file, each cycle's trace "
             "committed as it ends (converge run --store run.db)")
