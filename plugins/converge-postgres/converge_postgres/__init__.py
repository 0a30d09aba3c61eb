"""The ``postgresql`` job store: ``converge run rules.cvg --store postgresql://HOST/DB``.

The tables, migrations and queries are the SQLite store's (``converge_rules.store.sqlite``),
run through a small dialect layer (:mod:`converge_postgres.store`), so a table added to
the SQLite store's migrations exists here too. Several jobs — from several processes or
machines — share one database; each cycle is one transaction. psycopg is imported when a
store is opened, never when the plugin registers it. See ``docs/store.md``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from converge_rules.plugins.api import hookimpl
from converge_rules.plugins.hookspecs import Register

if TYPE_CHECKING:
    from converge_postgres.store import PostgresStore

__version__ = "0.1.0"


class PostgresFactory:
    """Opens a :class:`~converge_postgres.store.PostgresStore` on a ``postgresql://``
    URL; the store (and psycopg) are imported only then, so registering costs
    ``converge check`` nothing. ``job_store`` marks a factory of job stores
    (``--store``)."""

    job_store = True

    def __call__(self, location: str | os.PathLike[str]) -> PostgresStore:
        from converge_postgres.store import PostgresStore

        return PostgresStore(location)

    def __repr__(self) -> str:
        return "PostgresFactory()"


@hookimpl
def converge_register_stores(register: Register) -> None:
    description = ("jobs in a PostgreSQL database, shared by many jobs, each cycle "
                   "committed as it ends (converge run --store postgresql://HOST/DB)")
    register("postgresql", PostgresFactory(), description)
    register("postgres", PostgresFactory(), description)
