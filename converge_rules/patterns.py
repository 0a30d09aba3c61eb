"""Regular expressions compiled the first time they are used.

Compiling a pattern costs 25–400 µs; the ~15 that modules compiled at import (date
texts, blob handles, JSON escapes, CSV numbers, plugin references…) were ~1.3 ms of
every start, and a cached load and run use few of them. :func:`pattern` gives an
object that compiles on the first use of a method and keeps each method it handed
out, bound to the compiled pattern: later uses cost what the compiled pattern's do.
"""

from __future__ import annotations

import re
from typing import Any, cast


class _Deferred:
    """A pattern not yet compiled: the first lookup of each method (``match``,
    ``search``, ``sub``…) compiles it (once; two threads racing compile the same
    pattern twice, harmlessly) and stores the compiled pattern's bound method on the
    instance, where later lookups find it without reaching :meth:`__getattr__`."""

    def __init__(self, source: str, flags: int) -> None:
        self._source = source
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # (copy, pickle and the like probe for these)
            raise AttributeError(name)
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self._source, self._flags)
        value = getattr(compiled, name)
        if callable(value):
            setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return f"pattern({self._source!r}, {self._flags!r})"


def pattern(source: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile(source, flags)``, compiled when first used (see the module
    docstring). For its methods and attributes only: it is no ``re.Pattern`` instance,
    so it is not given to ``re.sub`` and the like in place of a compiled pattern."""
    return cast("re.Pattern[str]", _Deferred(source, flags))
