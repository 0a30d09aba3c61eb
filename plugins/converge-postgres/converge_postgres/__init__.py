"""The ``postgresql`` job store: ``converge run rules.cvg --store postgresql://HOST/DB``.

The tables, migrations and queries are the SQLite store's (``converge_rules.store.sqlite``),
run through a small dialect layer (:mod:`converge_postgres.store`), so a table added to
the SQLite store's migrations exists here too. Several jobs — from several processes or
machines — share one database; each cycle is one transaction. psycopg is imported when a
store is opened, never when the plugin registers it. See ``docs/store.md``.
"""

from __future__ import annotations

from converge_rules.plugins.api import hookimpl
from converge_rules.plugins.hookspecs import Register

__version__ = "0.1.0"


@hookimpl
def converge_register_stores(register: Register) -> None:
    from converge_postgres.store import PostgresFactory

    description = ("jobs in a PostgreSQL database, shared by many jobs, each cycle "
                   "committed as it ends (converge run --store postgresql://HOST/DB)")
    register("postgresql", PostgresFactory(), description)
    register("postgres", PostgresFactory(), description)
