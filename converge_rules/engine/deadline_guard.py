"""Cut code the engine runs in its own thread at the job's deadline.

Agents run under the executors' deadlines; the engine's own thread also calls plugin
code that may compute for ever: a goal's functions (after the executor closed), a
``resolve by using`` resolver and an invariant's functions (in the merge).
:func:`cut_at` bounds a block: a timer raises :class:`JobDeadline` into the calling
thread at the deadline, at its next bytecode (code blocked in C, a sleep or a socket
read, is reached when it returns). A :class:`Watchdog` does the same for a whole job
with one timer, but raises only inside the calls it guards (:meth:`Watchdog.guarded`):
the merge around them is never cut half way through an update of the fact store. The
pending exception never outlives the guarded block.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class JobDeadline(BaseException):
    """Raised into the engine's thread when guarded work is still running at the job's
    deadline. A ``BaseException``, so plugin code's ``except Exception`` lets it pass."""


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    # None clears an exception set but not yet raised
    import ctypes  # (only when a deadline is met: not at every start-up)

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None)


@contextmanager
def cut_at(seconds: float) -> Iterator[None]:
    """Run the block; raise :class:`JobDeadline` if it is still running ``seconds``
    from now (raised as the block leaves if the timer fired as it ended): the whole
    block guarded by a :class:`Watchdog` of its own."""
    watchdog = Watchdog(seconds)
    try:
        with watchdog.guarded(""):
            yield
    finally:
        watchdog.close()


class Watchdog:
    """A job's deadline over the plugin code its engine thread calls in the merge: one
    timer for the job (:meth:`close` cancels it); :meth:`guarded` marks a call it may
    cut. At the deadline a call inside a guarded block gets :class:`JobDeadline` at its
    next bytecode; a guarded block entered after the deadline raises it at once (the
    job is past its budget: it ends at the first plugin call, or at the next cycle's
    check, whichever comes first). :attr:`doing` names what was cut."""

    def __init__(self, seconds: float) -> None:
        self._thread = threading.get_ident()
        self._lock = threading.Lock()
        self._inside = False
        self._fired = False
        self.expired = False
        #: what the guarded block that was cut was doing ("resolver 'vote' …")
        self.doing = ""
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            if self._inside:
                self._fired = True
                _raise_in(self._thread, JobDeadline)

    @contextmanager
    def guarded(self, doing: str) -> Iterator[None]:
        """Run the block (in the job's thread), cut at the job's deadline; ``doing``
        says what it does, for the job's status detail."""
        with self._lock:
            if self.expired:
                self.doing = doing
                raise JobDeadline
            self._inside = True
        try:
            yield
        finally:
            with self._lock:
                self._inside = False
                fired, self._fired = self._fired, False
            if fired:
                _raise_in(self._thread, None)  # not raised yet: it never will be now
                self.doing = doing
                if sys.exc_info()[0] is None:
                    raise JobDeadline
            elif sys.exc_info()[0] is JobDeadline:
                self.doing = doing

    def close(self) -> None:
        self._timer.cancel()


WATCHDOG: ContextVar[Watchdog | None] = ContextVar("converge_watchdog", default=None)
"""The watchdog of the job the current thread runs (set by the engine for the length of
the job's merges; None for a job without ``job_timeout``): what the policies and the
invariants guard their plugin calls with."""


@contextmanager
def watching(seconds: float | None) -> Iterator[Watchdog | None]:
    """A :class:`Watchdog` of ``seconds`` (None: none) as :data:`WATCHDOG` for the
    block."""
    watchdog = None if seconds is None else Watchdog(seconds)
    token = WATCHDOG.set(watchdog)
    try:
        yield watchdog
    finally:
        WATCHDOG.reset(token)
        if watchdog is not None:
            watchdog.close()
