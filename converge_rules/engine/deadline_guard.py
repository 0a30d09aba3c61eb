"""Cut code the engine runs in its own thread at the job's deadline.

Agents run under the executors' deadlines; the engine's own thread also calls plugin
code (a goal's functions) that may compute for ever. :func:`cut_at` bounds such a call:
a timer raises :class:`JobDeadline` into the calling thread at the deadline, at its next
bytecode (code blocked in C, a sleep or a socket read, is reached when it returns).
Only read-only work is guarded (nothing it leaves half done needs undoing), and the
pending exception never outlives the guarded block.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


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
    from now (raised as the block leaves if the timer fired as it ended)."""
    thread_id = threading.get_ident()
    lock = threading.Lock()
    state = {"inside": True, "fired": False}

    def fire() -> None:
        with lock:
            if state["inside"]:
                state["fired"] = True
                _raise_in(thread_id, JobDeadline)

    timer = threading.Timer(max(seconds, 0.0), fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            state["inside"] = False
            fired = state["fired"]
        if fired:
            _raise_in(thread_id, None)  # not raised yet: it never will be now
            if sys.exc_info()[0] is None:  # (a second Ctrl-C on its way out goes on)
                raise JobDeadline
