"""Live events: a job's notable trace events handed to an observer while the job runs.

The engine publishes at the start and the end of every cycle (and when the job ends)
the events of :data:`LIVE_KINDS` recorded since its last publication: cycle started
and ended, effect merged or discarded, conflict resolved, tool called, invariant
broken, budget exhausted, status. Each is the dict the trace's JSON line holds, so a
streamed event reads as the trace does. Facts are never streamed one by one.

Off the hot path: the engine only filters the cycle's event tuples by kind and puts
them on a bounded queue; a thread of the :class:`EventRelay` builds the dicts and
calls the observer, in trace order. The observer can never change the job: it runs on
its own thread; when it is slower than the job and the queue is full, the engine does
not wait — it drops the events that do not fit and the observer is told so by an
``{"event": "events_dropped", "count": N}`` before the next events; an observer that
raises is not called again (:attr:`EventRelay.error` says why).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from converge_rules.engine.trace import (
    E_APPROVAL_DECIDED,
    E_APPROVAL_PENDING,
    E_BUDGET,
    E_CONFLICT,
    E_CYCLE_END,
    E_CYCLE_START,
    E_EFFECT_DISCARDED,
    E_EFFECT_MERGED,
    E_INVARIANT,
    E_KEYED_UPDATE,
    E_PENDING_DROPPED,
    E_STATUS,
    E_TOOL_CALL,
    Event,
)

if TYPE_CHECKING:
    import queue

    from converge_rules.engine.trace import Trace

Observer = Callable[[dict[str, Any]], None]
"""What ``run(observer=…)`` takes: called with each live event, on the relay's thread."""

LIVE_KINDS: frozenset[int] = frozenset({
    E_CYCLE_START, E_CYCLE_END, E_EFFECT_MERGED, E_EFFECT_DISCARDED, E_CONFLICT,
    E_TOOL_CALL, E_INVARIANT, E_APPROVAL_PENDING, E_APPROVAL_DECIDED, E_BUDGET, E_STATUS,
    E_PENDING_DROPPED,
    E_KEYED_UPDATE,
})
"""The raw trace kinds streamed (never the facts: a lean effect's ``E_PLAIN`` is
followed by its ``E_EFFECT_MERGED``; an update in place, ``E_KEYED_UPDATE``, as its
conflict)."""

QUEUE_EVENTS = 10_000
"""How many events wait for a slow observer before the engine drops the next ones."""

DRAIN_SECONDS = 30.0
"""How long the end of a job waits for the observer to take the events still queued."""

_END = None  # the queue's last item


class EventRelay:
    """Hands a job's live events to ``observer`` on a thread of its own, in order.

    The engine calls :meth:`publish` with raw trace events (cheap tuples) and
    :meth:`close` when the job ends; neither ever waits for the observer longer than
    ``drain_seconds`` (close) or at all (publish)."""

    def __init__(self, trace: Trace, observer: Observer, *,
                 max_events: int | None = None, drain_seconds: float | None = None) -> None:
        self._trace = trace
        self._observer = observer
        import queue  # here: a job without an observer never needs it

        self._queue: queue.Queue[Event | None] = queue.Queue(
            QUEUE_EVENTS if max_events is None else max_events)
        self._drain_seconds = DRAIN_SECONDS if drain_seconds is None else drain_seconds
        #: events dropped since the last one queued (told to the observer first)
        self._dropped = 0
        #: how many events were dropped in all
        self.dropped = 0
        #: what the observer raised, if it did (it is not called after that)
        self.error: BaseException | None = None
        #: how many raw events of the trace were looked at (the engine's position)
        self.seen = 0
        self._thread = threading.Thread(target=self._drain, name="converge-events",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ engine side

    def publish(self, events: Iterable[Event]) -> None:
        """Queue the live events among ``events`` (in order) without waiting."""
        from queue import Full

        put = self._queue.put_nowait
        for ev in events:
            kind = ev[0]
            if kind not in LIVE_KINDS:
                continue
            if kind == E_KEYED_UPDATE:  # its conflict (the facts are not streamed)
                ev = self._trace.keyed_update_events(ev)[0]
            try:
                if self._dropped:
                    put(("dropped", self._dropped))
                    self._dropped = 0
                put(ev)
            except Full:
                self._dropped += 1
                self.dropped += 1

    def close(self, *, wait: bool = True) -> None:
        """The job has ended: let the observer take what is queued (at most
        ``drain_seconds``; not at all unless ``wait``: the job did not end well, and
        whatever ends it must not wait for the observer), then stop the thread. What
        is still queued then is dropped; the job's result never depends on it."""
        from queue import Full

        if not wait:
            # on a full queue the thread is left to itself: a daemon, it ends with the
            # process
            with contextlib.suppress(Full):
                self._queue.put_nowait(_END)
            return
        try:
            if self._dropped:
                self._queue.put(("dropped", self._dropped), timeout=self._drain_seconds)
                self._dropped = 0
            self._queue.put(_END, timeout=self._drain_seconds)
        except Full:
            return
        self._thread.join(self._drain_seconds)

    # ------------------------------------------------------------ relay side

    def _drain(self) -> None:
        get = self._queue.get
        while True:
            ev = get()
            if ev is _END:
                return
            if self.error is not None:
                continue  # keep emptying the queue: the engine never blocks on it
            try:
                for event in self._dicts((ev,)):
                    self._observer(event)
            except BaseException as exc:  # an observer never ends the job, nor its relay
                self.error = exc

    def _dicts(self, events: Sequence[Event]) -> Iterable[dict[str, Any]]:
        for ev in events:
            if ev[0] == "dropped":
                yield {"event": "events_dropped", "count": ev[1]}
                continue
            yield from self._trace.event_dicts((ev,))
