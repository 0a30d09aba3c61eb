"""The options of a job store's location, parsed once: ``run.db?group=8``,
``sqlite:///run.db?timeout=30&snapshot_every=500``, ``postgresql://…?group=1&schema=jobs``.

Every store built on the SQLite store (the built-in one, ``converge-postgres``) takes
the same three options, checked the same way, with the same messages:

* ``timeout=SECONDS`` — how long a write waits for another's lock (10 by default);
* ``group=CYCLES`` — the most cycles a job commits in one transaction (1: one per
  cycle; by default no count: the store's time rule and the trace's spill bound a
  group, see :data:`GROUP_CYCLES`);
* ``snapshot_every=CYCLES`` — the most cycles between two snapshots of a job's state
  (the engine's default when absent: :data:`converge_rules.engine.checkpoints.DEFAULT_EVERY`).

A backend may take options of its own (PostgreSQL's ``schema`` and libpq's): those are
handed back in :attr:`StoreOptions.others`, in their order, for it to check.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from urllib.parse import parse_qsl

from converge_rules.errors import StoreError

DEFAULT_TIMEOUT = 10.0
"""Seconds a write waits for another's lock, unless ``?timeout=`` says otherwise."""

GROUP_CYCLES = sys.maxsize
"""The most cycles a job commits in one transaction, unless ``?group=`` says otherwise:
no count by default. What a group risks is bounded in time, not in cycles: a crash
loses at most the tool-free cycles that ended within the store's ``GROUP_SECONDS``
(50 ms) of the last commit, and another process sees a running job at most that late;
what waits in memory is what those 50 ms made (the engine has the raw events encoded
before its trace spills them). A count of 64 (until session 28) made a job of short
cycles commit hundreds of times a second, each commit a transaction and a checkpoint
(bench/README.md, "Job store: short cycles' trace path")."""

USAGE = "?timeout=SECONDS, ?group=CYCLES and ?snapshot_every=CYCLES"
"""The options every store takes, as an error message lists them."""


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """A store location's options (see the module), checked."""

    timeout: float = DEFAULT_TIMEOUT
    group: int = GROUP_CYCLES
    snapshot_every: int | None = None
    #: the options this module does not know, ``(key, value)`` in order, when the
    #: backend takes options of its own (else such an option is an error)
    others: tuple[tuple[str, str], ...] = ()


def _whole(value: str) -> bool:
    """Whether ``value`` is a whole number written in ASCII digits (``str.isdigit``
    is true of ``²`` too, which ``int`` refuses)."""
    return value.isascii() and value.isdigit()


def parse_options(query: str, shown: str, *, others: bool = False) -> StoreOptions:
    """The options of a location's ``query`` (the text after ``?``), checked; a
    :class:`StoreError` naming ``shown`` (the location as messages show it), the option
    and what it takes. An option given twice: the last one counts. With ``others``
    the options not listed in the module are handed back, else refused."""
    timeout = DEFAULT_TIMEOUT
    group = GROUP_CYCLES
    every: int | None = None
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                timeout = -1.0
            if not timeout >= 0:  # (NaN too)
                raise StoreError(f"{shown}: timeout must be a number of seconds >= 0")
        elif key == "group":
            if not _whole(value) or int(value) < 1:
                raise StoreError(f"{shown}: group must be a whole number of cycles >= 1 "
                                 "(1: one transaction per cycle)")
            group = int(value)
        elif key == "snapshot_every":
            every = int(value) if _whole(value) else 0
            if every < 1:
                raise StoreError(f"{shown}: snapshot_every must be a whole number of "
                                 "cycles >= 1")
        elif others:
            rest.append((key, value))
        else:
            raise StoreError(f"{shown}: unknown option {key!r}; the options are {USAGE}")
    return StoreOptions(timeout, group, every, tuple(rest))
