"""The payloads of a job's ``blob`` values (:mod:`converge_rules.blobs`).

At the end of each cycle the facts merged in it that hold blobs hand their texts to the
job's payload store: a job store's sink (``stage_blobs``: written in the cycle's
transaction, into its content-addressed ``blobs`` table) or, without one, memory. Each
payload is stored once per job, whatever number of facts hold it. The facts, the trace
and the knowledge store hold only the handles.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from converge_rules.blobs import Blob
from converge_rules.engine.factstore import FactStore
from converge_rules.program import Program, ValueType


@runtime_checkable
class PayloadSink(Protocol):
    """A job store's sink that keeps payloads: ``(handle, text)`` pairs staged here are
    written in the transaction of the next ``cycle_committed``."""

    def stage_blobs(self, blobs: Sequence[tuple[str, str]]) -> None: ...


def _holds_blobs(vt: ValueType) -> bool:
    return vt.base == "blob" or (vt.element is not None and _holds_blobs(vt.element))


def _blobs(value: Any) -> Iterator[Blob]:
    if isinstance(value, Blob):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _blobs(item)


class Payloads:
    """The payloads of one job. ``texts`` (without a sink) maps each handle to its
    text; with a sink they are written there and only the handles are remembered."""

    def __init__(self, program: Program, store: FactStore,
                 sink: PayloadSink | None = None) -> None:
        self._store = store
        self._sink = sink
        #: per type id, the positions of its fields that may hold blobs
        self._positions = {
            t.id: tuple(i for i, f in enumerate(t.fields) if _holds_blobs(f.type))
            for t in program.types
        }
        self._positions = {t: p for t, p in self._positions.items() if p}
        #: whether any type's field may hold a blob: else :meth:`end_cycle` has
        #: nothing to do, and the job does not call it
        self.holds_blobs = bool(self._positions)
        self._mark = 0
        self._stored: set[str] = set()
        self.texts: dict[str, str] = {}

    def resumed(self) -> None:
        """A job restored from a checkpoint: the payloads of the facts its store holds
        were stored by the cycles it committed; from here only later facts' are."""
        store = self._store
        for fid in range(store.next_id):
            positions = self._positions.get(store.type_of[fid])
            for i in positions or ():
                self._stored.update(str(b) for b in _blobs(store.values[fid][i]))
        self._mark = store.next_id

    def end_cycle(self) -> None:
        """Store the payloads of the facts merged since the last call."""
        store = self._store
        top = store.next_id
        if not self._positions:
            self._mark = top
            return
        new: list[tuple[str, str]] = []
        stored = self._stored
        for fid in range(self._mark, top):
            positions = self._positions.get(store.type_of[fid])
            if positions is None:
                continue
            values = store.values[fid]
            for i in positions:
                for b in _blobs(values[i]):
                    if b.text is not None and b not in stored:
                        stored.add(str(b))
                        new.append((str(b), b.text))
        self._mark = top
        if not new:
            return
        if self._sink is not None:
            self._sink.stage_blobs(new)
        else:
            self.texts.update(new)
