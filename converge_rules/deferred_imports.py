"""Standard modules imported without one of their own imports, which a run never uses:
that one is imported when its first name is asked for.

``dataclasses`` imports ``inspect`` (with ``ast``, ``dis`` and ``tokenize``: ~5 ms, a
sixth of a cached run's start-up) for one call, which writes the docstring of a
dataclass written without one; ``linecache`` imports ``tokenize`` (~0.6 ms) to read a
source file, and a run only puts its generated agents' text in linecache's table.

:func:`import_deferring` imports such a module, when neither it nor the deferred one is
imported yet, with a stand-in in ``sys.modules`` for the deferred one for the time of
that import only: the module holds the stand-in, which imports the real module at its
first attribute and answers with the real module's. The invariant: **afterwards,
``sys.modules`` holds what it would have held (the deferred module only once it is
imported), and whoever imports the deferred module gets the module itself.** A thread
importing the deferred module in that instant gets the stand-in, which answers every
name as the module does.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


class _WhenUsed(ModuleType):
    """What a module imported by :func:`import_deferring` holds for the deferred one."""

    def __getattr__(self, name: str) -> Any:
        deferred = self.__name__
        if sys.modules.get(deferred) is self:  # (asked while the importer is imported)
            del sys.modules[deferred]
        return getattr(importlib.import_module(deferred), name)


def import_deferring(name: str, deferred: str) -> ModuleType:
    """The module ``name``, imported (when neither it nor ``deferred`` is imported yet)
    with its import of ``deferred`` put off until ``deferred`` is first used."""
    if name in sys.modules or deferred in sys.modules:
        return importlib.import_module(name)
    stand_in = _WhenUsed(deferred)
    sys.modules[deferred] = stand_in
    try:
        return importlib.import_module(name)
    finally:
        if sys.modules.get(deferred) is stand_in:
            del sys.modules[deferred]
