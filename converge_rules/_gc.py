"""Pausing Python's cyclic garbage collector around work that allocates much and frees
little (a parse, a run), correctly when several such jobs overlap in threads.

The collector is one switch for the whole process, so the pause is counted for the
whole process too: the first job to enter turns collection off (if it was on), the
last one to leave restores what the first one found. Turning the switch by hand in
each job is wrong as soon as two overlap: the first to finish would turn collection
back on under the other, or the last to finish would turn it on although it had
been off before either started.
"""

from __future__ import annotations

import gc
import os
import threading
from types import TracebackType


class _Pause:
    """How many blocks are inside :func:`paused_gc`, and whether collection was on when
    the first of them entered. One per process because the collector is (a class, not
    a generator, so leaving works even after a ``RecursionError``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.was_enabled = False

    def __enter__(self) -> None:
        with self.lock:
            if self.depth == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.depth += 1

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.was_enabled:
                gc.enable()

    def after_fork(self) -> None:
        # a forked child has only the forking thread: a lock another thread held at
        # the fork would never be released
        self.lock = threading.Lock()


_PAUSE = _Pause()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_PAUSE.after_fork)


def paused_gc() -> _Pause:
    """A context manager: automatic cyclic collection is off inside the block (explicit
    ``gc.collect`` calls still work). When the last overlapping block in the process
    exits, collection is on again if and only if it was on when the first one entered.
    Blocks nest and overlap across threads freely."""
    return _PAUSE
