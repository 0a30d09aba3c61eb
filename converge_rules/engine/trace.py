"""The trace of a job: every fact, conflict, retraction, prune, tool call and status.

In the hot loop an event is a plain tuple whose first item is one of the ``E_*`` kinds
below (building a model per fact would cost more than the merge itself). The pydantic
models are the trace's schema, built only when the trace is read: :meth:`Trace.events`
(all of them) and :meth:`Trace.events_of` (one kind, the others skipped as tuples).
Readers outside the engine (the CLI) use these typed events, never the tuples. The
JSON lines (:meth:`Trace.lines`, what ``--trace`` writes and a job store's trace
reads back as: :mod:`~converge_rules.engine.tracerows`) are assembled
straight from the tuples, byte for byte what the models would dump (a model per event
cost 5–11x the run itself); tests/properties/test_trace_lines_properties.py holds the
two equal. The serialised trace is deterministic: sorted keys, no timings,
no memory addresses, events in merge order whatever the executor did.

The trace's memory is bounded: between cycles, once more than :data:`SPILL_EVENTS`
events are held, they are pickled to an anonymous temporary file (the spool) and
read back, in order, by every reader; with a job store, the runs of events its rows
hold go to the spool as the store's msgpack of them (:meth:`Trace.packed`), not
pickled again. A job of many cycles keeps nothing per cycle in
memory for its trace; conflicts are built from the spooled events when asked for.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any, TypeVar

from converge_rules.datetypes import date, timedelta
from converge_rules.engine.policies import decided_by
from converge_rules.errors import without_addresses as without_addresses  # re-exported
from converge_rules.integrity import GENESIS, HASH_MEMBER
from converge_rules.jsontext import c_encoder, one_line
from converge_rules.language.builtins import iso_text
from converge_rules.program import Lasting

if TYPE_CHECKING:
    from converge_rules.engine.factstore import FactStore
    from converge_rules.engine.trace_models import _Model
    from converge_rules.program import Program

# event kinds (first item of each event tuple); layouts in the comments
E_INPUTS = 0           # (E_INPUTS, count) → one fact_added per input fact
E_CYCLE_START = 1      # (kind, cycle, tier, agent indexes)
E_CYCLE_END = 2        # (kind, cycle, tier, added, removed, live)
E_FACT_ADDED = 3       # (kind, fid, agent, cycle, support, confidence)
E_FACT_SUPPORTED = 4   # (kind, fid, agent, cycle, support)
E_EFFECT_MERGED = 5    # (kind, cycle, agent, outputs)
E_EFFECT_DISCARDED = 6 # (kind, cycle, agent, reason)
E_OUTPUT_SKIPPED = 7   # (kind, cycle, agent, type id, values, reason)
E_TOOL_CALL = 8        # (kind, cycle, agent, tool, args, result, error)
E_EVALUATION = 9       # (kind, cycle, agent, target, score, reason)
E_CONFLICT = 10        # (kind, cycle, type id, key, winner values | None, losers' values,
                       #  reason)
E_REPLACED = 11        # (kind, cycle, fid, by fid)
E_RETRACTED = 12       # (kind, cycle, fid, cause fid)
E_PRUNED = 13          # (kind, cycle, fid, age)
E_INTENT_CLOSED = 14   # (kind, cycle, fid, agent)
E_BUDGET = 15          # (kind, name, limit, used)
E_STATUS = 16          # (kind, status, detail)
E_PLAIN = 17           # (kind, cycle, agent, outputs, fids, first new id): a whole effect
#   merged on the lean path; fids[i] is the fact output i merged into (a new fact when it
#   equals the next new id), -1 for an evaluation recorded, -2 for one ignored; fids is
#   None for columnar outputs (program.Columns) merged whole: the store gives their ids
E_JOB_TIME = 18        # (kind, now as ISO 8601 text): first, when the program reads the time
E_INVARIANT = 19       # (kind, cycle, name, rule text, agent | -1, ((type id, values), …),
                       #  agent names, whether the effect was discarded (else the job ends))
E_INPUT_RETRACTED = 20 # (kind, cycle, fid): an input fact its giver retracted (a Session)
E_APPROVAL_PENDING = 21  # (kind, cycle, pending id, gate, type id, values, agent, support,
                         #  confidence): a fact held by its approval gate
E_APPROVAL_DECIDED = 22  # (kind, cycle, pending id, gate, type id, values, "approve" |
                         #  "reject", by, at, note, edits, outcome)
E_LINE = 23            # (kind, line without its hash member): an event a job resumed from
#   a checkpoint read back from its store, written as it was (Trace.resume_from)
E_PENDING_DROPPED = 24  # (kind, cycle, pending id, gate, type id, values, gone ids): a
                        #  held fact whose support left the context: pending no more
E_KEYED_UPDATE = 32    # (kind, cycle, agent, fid, replaced fid, support, confidence): a
#   keyed fact updated in place, the first criterion of its type's resolving policy
#   deciding for the new value; it stands for the three events E_CONFLICT, E_FACT_ADDED
#   and E_REPLACED (Trace.keyed_update_events), whose type, key, values and reason
#   follow from the two facts (a 32, apart from the kinds numbered in order)

Event = tuple[Any, ...]

# The raw kinds each event (by its name in the trace) is built from: a lean effect
# holds facts and evaluations; an event read back from a store (E_LINE) may be any.
EVENT_KINDS: dict[str, frozenset[int]] = {name: frozenset(kinds | {E_LINE}) for name, kinds in {
    "cycle_start": {E_CYCLE_START},
    "cycle_end": {E_CYCLE_END},
    "fact_added": {E_INPUTS, E_FACT_ADDED, E_PLAIN, E_KEYED_UPDATE},
    "fact_supported": {E_FACT_SUPPORTED, E_PLAIN},
    "effect_merged": {E_EFFECT_MERGED},
    "effect_discarded": {E_EFFECT_DISCARDED},
    "output_skipped": {E_OUTPUT_SKIPPED},
    "tool_call": {E_TOOL_CALL},
    "evaluation": {E_EVALUATION, E_PLAIN},
    "conflict": {E_CONFLICT, E_KEYED_UPDATE},
    "replaced": {E_REPLACED, E_KEYED_UPDATE},
    "retracted": {E_RETRACTED},
    "pruned": {E_PRUNED},
    "intent_closed": {E_INTENT_CLOSED},
    "budget": {E_BUDGET},
    "status": {E_STATUS},
    "job_time": {E_JOB_TIME},
    "invariant_broken": {E_INVARIANT},
    "input_retracted": {E_INPUT_RETRACTED},
    "approval_pending": {E_APPROVAL_PENDING},
    "approval_decided": {E_APPROVAL_DECIDED},
    "pending_dropped": {E_PENDING_DROPPED},
}.items()}


if TYPE_CHECKING:
    M = TypeVar("M", bound=_Model)
else:  # a bound given as text is compiled by typing, and the first compile() of a
    # process makes the 119 classes of Python's syntax tree (~2 ms of a run's start)
    M = TypeVar("M")

_SCHEMA = frozenset({
    "ApprovalDecided",
    "ApprovalPending",
    "BudgetEvent",
    "Conflict",
    "CycleEnd",
    "CycleStart",
    "EffectDiscarded",
    "EffectMerged",
    "Evaluation",
    "FactAdded",
    "FactSupported",
    "InputRetracted",
    "IntentClosed",
    "InvariantBroken",
    "JobTime",
    "OutputSkipped",
    "PendingDropped",
    "Pruned",
    "Replaced",
    "Retracted",
    "StatusEvent",
    "ToolCall",
    "TraceEvent",
    "_Model",
    "model_line",
})
"""The names of :mod:`~converge_rules.engine.trace_models` this module offers too."""


def __getattr__(name: str) -> Any:
    """An event model (``FactAdded``, ``TraceEvent``, ``model_line``…) from
    :mod:`~converge_rules.engine.trace_models`, imported on first use: running a job
    needs no pydantic."""
    if name not in _SCHEMA:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from converge_rules.engine import trace_models

    value = getattr(trace_models, name)
    globals()[name] = value
    return value




def _line_event(text: str) -> dict[str, Any]:
    """The JSON document of an :data:`E_LINE`'s text."""
    event: dict[str, Any] = json.loads(text)
    return event


_REMOVALS = {"replaced": E_REPLACED, "retracted": E_RETRACTED, "pruned": E_PRUNED,
             "intent_closed": E_INTENT_CLOSED}


def removal_of(ev: Event) -> Event:
    """``ev``, but a stored line (:data:`E_LINE`) of a fact leaving the context read
    back as ``(kind, cycle, id)``, the start of its raw event (what a reader of the
    removals of a job resumed from a checkpoint needs), and an update in place
    (:data:`E_KEYED_UPDATE`) as the replacement it made."""
    if ev[0] == E_KEYED_UPDATE:
        return (E_REPLACED, ev[1], ev[4], ev[3])
    if ev[0] != E_LINE or '"event":"' not in ev[1]:
        return ev
    doc = _line_event(ev[1])
    kind = _REMOVALS.get(doc["event"])
    return ev if kind is None else (kind, doc["cycle"], doc["id"])


def jsonable(value: Any) -> Any:
    """Runtime value → JSON value (tuples become lists; dates, datetimes and durations
    their ISO 8601 text, which reads back as the same value into a field of their
    type)."""
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, date | timedelta):
        return iso_text(value)
    return value


SPILL_EVENTS = 2048
"""Events a trace holds in memory between cycles before it moves them to its spool."""

_HASH_SUFFIX = len(HASH_MEMBER) + 64 + 2
"""The length of a line's ``,"hash":"…"}`` ending (64 hex digits)."""

_HELD = -1  # in the spool: (_HELD, i), the spilled lean effect Trace._held[i]
# In the spool, an event whose support is a Lasting, as a plain tuple whose support's ids
# come last (a Lasting pickles ~10x slower than a tuple, reads back as slowly: each one
# writes and looks up its class by name, the pickler's fast mode having no memo):
_L_ADDED = -2      # (_L_ADDED, fid, agent, cycle, confidence, *support): E_FACT_ADDED
_L_SUPPORTED = -3  # (_L_SUPPORTED, fid, agent, cycle, *support): E_FACT_SUPPORTED
_L_KEYED = -4      # (_L_KEYED, cycle, agent, fid, replaced fid, confidence, *support)
_LASTING_REF = b"\x8c\x07Lasting\x93"  # a pickled Lasting's class (its name, STACK_GLOBAL)
_KIND = itemgetter(0)
_PACKED = 0x4D  # b"M": the first byte of a spool chunk of msgpack (a pickle's is 0x80)
_SUPPORT_LAST = frozenset({E_FACT_SUPPORTED})  # (where a Lasting is last, not last but one)


_TEMP_VARIABLES = ("TMPDIR", "TEMP", "TMP")  # tempfile's, in its order


def _spool_file() -> IO[bytes]:
    """A new spool: what ``tempfile.TemporaryFile()`` gives on Linux (a file with no
    name, ``O_TMPFILE``, in the temp dir: the first of $TMPDIR, $TEMP, $TMP set, else
    /tmp), opened without importing :mod:`tempfile` (with :mod:`shutil`, :mod:`random`,
    :mod:`bz2` and :mod:`lzma`, ~1.5 ms of a short job's start). Anywhere else (no
    ``O_TMPFILE``, a temp dir missing or not taking it) and once a program imported
    :mod:`tempfile` (its ``tempdir`` may be set), :func:`tempfile.TemporaryFile`."""
    anonymous = getattr(os, "O_TMPFILE", 0)
    if anonymous and "tempfile" not in sys.modules:
        directory = next((d for d in map(os.environ.get, _TEMP_VARIABLES) if d), "/tmp")
        try:
            # tempfile's flags; os.open's descriptor is not inherited by children
            fd = os.open(directory, anonymous | os.O_RDWR | os.O_EXCL | os.O_NOFOLLOW,
                         0o600)
        except OSError:
            pass
        else:
            return open(fd, "w+b")
    import tempfile

    return tempfile.TemporaryFile(prefix="converge-trace-")


def _pickled(chunk: list[Event]) -> bytes:
    """``pickle.dumps(chunk)`` without the memo (the pickler's fast mode): events are
    plain tuples that share values but never contain themselves, and keeping track of
    every object pickled cost more than pickling it (half the spill of a job of keyed
    updates). A shared value is written once per use and reads back equal. A chunk
    holding a cycle (a plugin's object) is pickled the ordinary way."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    try:
        pickler.dump(chunk)
    except (RecursionError, ValueError):
        return pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.getvalue()


def _unpacked(data: bytes) -> Sequence[Event]:
    """A spool chunk of msgpack (:meth:`Trace.packed`) read back: ``M``, the positions
    of the events whose support is a :class:`Lasting` (a msgpack array), then the
    events as the job store's raw row holds them (a msgpack array of arrays: tuples,
    as they were, for the events :func:`~converge_rules.engine.tracerows.raw_run`
    hands over)."""
    import msgpack  # (a store's chunk: the store imported it)

    unpacker = msgpack.Unpacker(use_list=False, raw=False, strict_map_key=False,
                                max_buffer_size=len(data))
    unpacker.feed(memoryview(data)[1:])
    lasting = unpacker.unpack()
    events: Sequence[Event] = unpacker.unpack()
    if not lasting:
        return events
    out = list(events)
    for at in lasting:
        ev = out[at]
        out[at] = ((*ev[:-1], Lasting(ev[-1])) if ev[0] in _SUPPORT_LAST
                   else (*ev[:-2], Lasting(ev[-2]), ev[-1]))
    return out


def _spooled(raw: list[Event], held: list[Event], lasting: bool) -> list[Event]:
    """The events ``raw`` as the spool holds them: a lean effect's event moved to
    ``held`` (a reference to it in its place) and, when ``lasting``, an event whose
    support is a :class:`Lasting` in its plain form (``_L_ADDED`` …)."""
    chunk: list[Event] = []
    append = chunk.append
    if not lasting:
        for ev in raw:
            if ev[0] == E_PLAIN:
                append((_HELD, len(held)))
                held.append(ev)
            else:
                append(ev)
        return chunk
    # (a loop per event of a job of keyed updates: its usual kinds tested first, each
    # plain form made as the event's fields plus its support, one concatenation)
    for ev in raw:
        kind = ev[0]
        if kind == E_KEYED_UPDATE:
            if type(ev[5]) is Lasting:  # (_L_KEYED, cycle, agent, fid, old, conf, *support)
                append((_L_KEYED, ev[1], ev[2], ev[3], ev[4], ev[6]) + ev[5])
                continue
        elif kind == E_FACT_ADDED:
            if type(ev[4]) is Lasting:  # (_L_ADDED, fid, agent, cycle, conf, *support)
                append((_L_ADDED, ev[1], ev[2], ev[3], ev[5]) + ev[4])
                continue
        elif kind == E_PLAIN:
            append((_HELD, len(held)))
            held.append(ev)
            continue
        elif kind == E_FACT_SUPPORTED and type(ev[4]) is Lasting:
            # (_L_SUPPORTED, fid, agent, cycle, *support)
            append((_L_SUPPORTED, ev[1], ev[2], ev[3]) + ev[4])
            continue
        append(ev)
    return chunk


class Trace:
    """The events of one job, in merge order. Cheap tuples inside; models and JSON
    Lines on demand. The newest events are in :attr:`raw` (the engine appends to it);
    :meth:`spill` moves them to a temporary file and :meth:`all_raw` reads all of
    them back in order."""

    __slots__ = ("_chain_at", "_chain_head", "_end", "_held", "_lasting", "_names",
                 "_packed", "_program", "_reasons", "_spilled", "_spool", "_store",
                 "_whole", "raw", "written")

    def __init__(self, program: Program, store: FactStore) -> None:
        self._program = program
        self._store = store
        self.raw: list[Event] = []
        self._spool: IO[bytes] | None = None
        self._spilled = 0
        #: where the next chunk goes in the spool (-1: the spool failed, spill no more),
        #: and where the whole chunks end
        self._end = 0
        self._whole = 0
        #: the spilled lean effects' events (E_PLAIN), which stay in memory
        self._held: list[Event] = []
        #: the spilled events may have Lasting supports, which are looked for then (a
        #: job with none spills its chunks as they are, scanned at C speed): a generated
        #: agent emits lasting (its source calls ``_lasting``), or a chunk held one;
        #: None until the first spill (a short job never asks)
        self._lasting: bool | None = None
        #: runs of the events held that a job store's sink encoded already, in order:
        #: ``(start, end, spool chunk)`` (:meth:`packed`), written as they are by the
        #: next spill instead of pickled
        self._packed: list[tuple[int, int, bytes]] = []
        #: the integrity chain where :meth:`lines` last stopped: the events written
        #: and the hash of their last line
        self._chain_at = 0
        self._chain_head = GENESIS
        #: the job handed its trace to a sink (``--trace``, ``--store``): its result
        #: then carries the integrity proof
        self.written = False
        #: the agents' and types' names as JSON and the types' field names, for the
        #: line writer: encoded on first use, once (a cycle sink asks for lines every
        #: cycle; encoding them each time cost a third of a short cycle)
        self._names: tuple[list[str], list[str], list[tuple[str, ...]]] | None = None
        #: keyed type → the reason of its updates in place (E_KEYED_UPDATE)
        self._reasons: dict[int, str] = {}

    def __len__(self) -> int:
        return self._spilled + len(self.raw)

    def __del__(self) -> None:
        spool = getattr(self, "_spool", None)
        if spool is not None:
            spool.close()

    def packed(self, start: int, end: int, chunk: bytes) -> None:
        """The events ``[start, end)``, held in memory, as a job store's sink encoded
        them for its row: a spool chunk (``M``, the positions of the events whose
        support is a :class:`Lasting`, the events' msgpack array) that reads back as
        exactly these events (tuples, ints, floats, texts, ``None``: what
        :func:`~converge_rules.engine.tracerows.raw_run` hands over). The next
        :meth:`spill` writes it as it is instead of pickling the events again."""
        if start >= self._spilled and self._end >= 0:
            self._packed.append((start, end, chunk))

    def spill(self, at_least: int | None = None) -> None:
        """Move the events held in memory to the spool when there are ``at_least`` of
        them (:data:`SPILL_EVENTS` by default; called between cycles: :attr:`raw`
        stays the same list, emptied). Events that cannot be pickled (a plugin's
        object in them) stay in memory, and so does everything once the spool cannot
        be written (a full disk): the job goes on, holding its trace as it used to.
        The runs of events a job store encoded already (:meth:`packed`) go as they
        are; the others are pickled."""
        raw = self.raw
        if len(raw) < (SPILL_EVENTS if at_least is None else at_least) or not raw:
            return
        packed = self._packed
        if self._end < 0:
            packed.clear()
            return
        held = self._held
        kept = len(held)
        try:
            if packed:
                chunks: list[bytes] = []
                spilled = self._spilled
                at = 0
                for start, end, chunk in packed:
                    start -= spilled
                    if start < at:  # pragma: no cover - runs are handed in order
                        continue
                    if start > at:
                        chunks.append(self._chunk_of(raw[at:start]))
                    chunks.append(chunk)
                    at = end - spilled
                if at < len(raw):
                    chunks.append(self._chunk_of(raw[at:]))
            else:
                chunks = [self._chunk_of(raw)]
        except (pickle.PicklingError, TypeError, AttributeError):
            del held[kept:]
            return
        try:
            if self._spool is None:
                # open for the trace's life (closed by __del__), not one block
                self._spool = _spool_file()
            spool = self._spool
            spool.seek(self._end)
            for data in chunks:
                spool.write(len(data).to_bytes(8, "little"))
                spool.write(data)
            spool.flush()
        except OSError:
            self._end = -1  # readers stop at _whole, where the last whole chunk ends
            del held[kept:]
            packed.clear()
            return
        self._end = self._whole = self._end + sum(8 + len(data) for data in chunks)
        self._spilled += len(raw)
        raw.clear()
        packed.clear()

    def _chunk_of(self, raw: list[Event]) -> bytes:
        """The spool chunk of the events ``raw``: pickled, a lean effect's event held
        in memory (:attr:`_held`, which grows), a Lasting support in its plain form
        once the job may have one. Raises what pickling raises."""
        # a lean effect's event stays in memory, a reference to it goes to the spool:
        # its outputs are the facts' provenance, one tuple per derivation, and pickling
        # them cost as much as deriving them (closure of a chain of 800: +1 s on 1.3 s)
        held = self._held
        kept = len(held)
        lasting = self._lasting
        if lasting is None:
            lasting = self._lasting = any(
                "_lasting(" in agent.source for agent in self._program.agents)
        chunk: list[Event]
        if not lasting and E_PLAIN not in map(_KIND, raw):  # (at C speed: keyed updates)
            chunk = raw
        else:
            chunk = _spooled(raw, held, lasting)
        data = _pickled(chunk)
        if not lasting and _LASTING_REF in data:
            # the first chunk with Lasting supports: again, in their plain form
            self._lasting = True
            del held[kept:]
            data = _pickled(_spooled(raw, held, True))
        return data

    def all_raw(self) -> Iterator[Event]:
        """Every event in order: those spilled, then those held."""
        spool = self._spool
        if spool is not None:
            pos = 0
            while pos < self._whole:
                spool.seek(pos)  # every chunk from its offset: two readers may interleave
                size = int.from_bytes(spool.read(8), "little")
                data = spool.read(size)
                pos += 8 + size
                if data[0] == _PACKED:
                    yield from _unpacked(data)
                    continue
                chunk: list[Event] = pickle.loads(data)  # its own file
                held = self._held
                for ev in chunk:
                    kind = ev[0]
                    if kind >= 0:
                        yield ev
                    elif kind == _HELD:
                        yield held[ev[1]]
                    elif kind == _L_KEYED:
                        yield (E_KEYED_UPDATE, ev[1], ev[2], ev[3], ev[4], Lasting(ev[6:]),
                               ev[5])
                    elif kind == _L_ADDED:
                        yield (E_FACT_ADDED, ev[1], ev[2], ev[3], Lasting(ev[5:]), ev[4])
                    else:
                        yield (E_FACT_SUPPORTED, ev[1], ev[2], ev[3], Lasting(ev[4:]))
        yield from self.raw

    def keyed_update_events(self, ev: Event) -> tuple[Event, Event, Event]:
        """The events an :data:`E_KEYED_UPDATE` stands for, in order: the conflict (the
        new value winning over the one it replaces, as the first criterion of the type's
        policy decided), the new fact added, the old one replaced."""
        _, cycle, agent, fid, old, support, conf = ev
        store = self._store
        t = store.type_of[fid]
        vals = store.values[fid]
        keyget = store.keyget[t]
        assert keyget is not None, "an update in place is of a keyed type"
        reasons = self._reasons
        reason = reasons.get(t)
        if reason is None:
            policy = self._program.policies[t]
            reason = reasons[t] = decided_by(policy.criteria[0], self._program.types[t])
        return ((E_CONFLICT, cycle, t, keyget(vals), vals, (store.values[old],), reason),
                (E_FACT_ADDED, fid, agent, cycle, support, conf),
                (E_REPLACED, cycle, old, fid))

    def conflict_count(self) -> int:
        """How many conflicts the job recorded (reads the spool)."""
        return sum(1 for ev in self.all_raw() if ev[0] in (E_CONFLICT, E_KEYED_UPDATE))

    def conflicts(self) -> Iterator[dict[str, Any]]:
        """Every conflict recorded, in order, as the result reports it: ``cycle``,
        ``type``, ``key`` and the ``winner``'s and ``losers``' fields (JSON values),
        and the ``reason``."""
        types = self._program.types
        for ev in self.all_raw():
            if ev[0] == E_LINE and '"event":"conflict"' in ev[1]:
                doc = _line_event(ev[1])
                if doc.get("event") == "conflict":
                    del doc["event"]
                    yield doc
                continue
            if ev[0] == E_KEYED_UPDATE:
                ev = self.keyed_update_events(ev)[0]
            elif ev[0] != E_CONFLICT:
                continue
            _, cycle, t, key, winner, losers, reason = ev
            spec = types[t]
            parts = key if len(spec.key_positions) > 1 else (key,)
            yield {
                "cycle": cycle, "type": spec.name,
                "key": {spec.fields[p].name: jsonable(v)
                        for p, v in zip(spec.key_positions, parts, strict=True)},
                "winner": None if winner is None else self.fields_of(t, winner),
                "losers": [self.fields_of(t, v) for v in losers], "reason": reason,
            }

    def _fields(self, fid: int) -> dict[str, Any]:
        store = self._store
        spec = self._program.types[store.type_of[fid]]
        return self.fields_of(spec.id, store.values[fid])

    def fields_of(self, type_id: int, vals: Sequence[Any]) -> dict[str, Any]:
        names = self._program.types[type_id].field_names
        return {n: jsonable(v) for n, v in zip(names, vals, strict=True)}

    def _agent(self, index: int) -> str:
        return self._program.agents[index].name

    def fact_events(self) -> Iterator[tuple[int, int, int, int, tuple[int, ...], float]]:
        """Every derivation in trace order, normalised:
        ``(E_FACT_ADDED | E_FACT_SUPPORTED, fid, agent, cycle, support, confidence)``
        (agent -1 and cycle 0 for input facts; a support's confidence 1.0, as its
        ``fact_supported`` line reads back: the fact's confidence is the store's)."""
        agent_ids = {a.name: i for i, a in enumerate(self._program.agents)}
        for ev in self.all_raw():
            kind = ev[0]
            if kind == E_LINE:
                if '"event":"fact_' not in ev[1]:
                    continue
                doc = _line_event(ev[1])
                added = doc["event"] == "fact_added"
                if not added and doc["event"] != "fact_supported":
                    continue
                support = (Lasting(doc["support"]) if doc.get("lasting")
                           else tuple(doc["support"]))
                yield (E_FACT_ADDED if added else E_FACT_SUPPORTED, doc["id"],
                       -1 if doc["agent"] is None else agent_ids[doc["agent"]],
                       doc["cycle"], support, doc.get("confidence", 1.0))
            elif kind == E_INPUTS:
                for fid in range(ev[1]):
                    yield (E_FACT_ADDED, fid, -1, 0, (), 1.0)
            elif kind == E_FACT_ADDED:
                yield (E_FACT_ADDED, ev[1], ev[2], ev[3], ev[4], ev[5])
            elif kind == E_KEYED_UPDATE:
                yield (E_FACT_ADDED, ev[3], ev[2], ev[1], ev[5], ev[6])
            elif kind == E_FACT_SUPPORTED:
                yield (E_FACT_SUPPORTED, ev[1], ev[2], ev[3], ev[4], 1.0)
            elif kind == E_PLAIN:
                _, cycle, agent, outputs, _, next_new = ev
                for out, fid in zip(outputs, self._plain_ids(ev), strict=False):
                    if fid < 0:
                        continue
                    if fid == next_new:
                        next_new += 1
                        yield (E_FACT_ADDED, fid, agent, cycle, out[4], out[3])
                    else:  # (1.0: a fact_supported line has no confidence, and an
                        # E_FACT_SUPPORTED event none: a stored trace reads back so)
                        yield (E_FACT_SUPPORTED, fid, agent, cycle, out[4], 1.0)

    def _plain_ids(self, ev: Event) -> Sequence[int]:
        """An :data:`E_PLAIN` event's ids: recorded, or None for columnar outputs
        merged whole (``FactStore.add_columns``), whose ids the store gives."""
        fids: Sequence[int] | None = ev[4]
        return self._store.merged_ids(ev[3]) if fids is None else fids

    def _plain(self, ev: Event) -> Iterator[_Model]:
        from converge_rules.engine.trace_models import Evaluation, FactAdded, FactSupported

        _, cycle, agent, outputs, _, next_new = ev
        name = self._agent(agent)
        types = self._program.types
        type_of = self._store.type_of
        for out, fid in zip(outputs, self._plain_ids(ev), strict=False):
            if fid == -1:
                yield Evaluation(cycle=cycle, agent=name, target=out[1], score=float(out[2]),
                                 reason=out[3])
            elif fid == next_new:
                next_new += 1
                yield FactAdded(
                    id=fid, type=types[type_of[fid]].name, fields=self._fields(fid),
                    agent=name, cycle=cycle, support=list(out[4]), confidence=out[3],
                    lasting=type(out[4]) is Lasting,
                )
            elif fid >= 0:
                yield FactSupported(id=fid, agent=name, cycle=cycle, support=list(out[4]),
                                    lasting=type(out[4]) is Lasting)

    def events(self) -> Iterator[_Model]:
        """The trace as pydantic models, in order."""
        return self._models(self.all_raw())

    def may_hold(self, event: str) -> bool:
        """False when the trace holds no event named ``event`` (``"effect_discarded"``,
        ``"tool_call"``…): :meth:`events_of` its model would yield nothing; True when it
        may. Looks at the raw events only: no model is built, no pydantic imported."""
        kinds = EVENT_KINDS[event]  # (a line read back from a store may be any event)
        return any(ev[0] in kinds for ev in self.all_raw())

    def events_of(self, model: type[M]) -> Iterator[M]:
        """The events of one kind (``EffectDiscarded``, ``ToolCall``…), in order. Only
        those are built as models, so reading one kind of a long trace stays cheap."""
        from converge_rules.engine.trace_models import _RAW_KINDS

        kinds = _RAW_KINDS[model]
        for event in self._models(ev for ev in self.all_raw() if ev[0] in kinds):
            if isinstance(event, model):
                yield event

    def _models(self, raw: Iterable[Event]) -> Iterator[_Model]:
        from converge_rules.engine.trace_models import (
            _MODELS,
            ApprovalDecided,
            ApprovalPending,
            BudgetEvent,
            Conflict,
            CycleEnd,
            CycleStart,
            Derivation,
            EffectDiscarded,
            EffectMerged,
            Evaluation,
            FactAdded,
            FactSupported,
            InputRetracted,
            IntentClosed,
            InvariantBroken,
            JobTime,
            OutputSkipped,
            PendingDropped,
            Pruned,
            Replaced,
            Retracted,
            StatusEvent,
            ToolCall,
        )

        program = self._program
        store = self._store
        types = program.types
        for ev in raw:
            kind = ev[0]
            if kind == E_INPUTS:
                for fid in range(ev[1]):
                    yield FactAdded(
                        id=fid, type=types[store.type_of[fid]].name, fields=self._fields(fid),
                        agent=None, cycle=0, support=[], confidence=1.0,
                    )
            elif kind == E_CYCLE_START:
                yield CycleStart(cycle=ev[1], tier=ev[2], agents=[self._agent(a) for a in ev[3]])
            elif kind == E_CYCLE_END:
                yield CycleEnd(cycle=ev[1], tier=ev[2], added=ev[3], removed=ev[4], live=ev[5])
            elif kind == E_FACT_ADDED:
                fid = ev[1]
                yield FactAdded(
                    id=fid, type=types[store.type_of[fid]].name, fields=self._fields(fid),
                    agent=None if ev[2] < 0 else self._agent(ev[2]), cycle=ev[3],
                    support=list(ev[4]), confidence=ev[5], lasting=type(ev[4]) is Lasting,
                )
            elif kind == E_FACT_SUPPORTED:
                yield FactSupported(
                    id=ev[1], agent=self._agent(ev[2]), cycle=ev[3], support=list(ev[4]),
                    lasting=type(ev[4]) is Lasting,
                )
            elif kind == E_EFFECT_MERGED:
                yield EffectMerged(cycle=ev[1], agent=self._agent(ev[2]), outputs=ev[3])
            elif kind == E_EFFECT_DISCARDED:
                yield EffectDiscarded(cycle=ev[1], agent=self._agent(ev[2]), reason=ev[3])
            elif kind == E_OUTPUT_SKIPPED:
                yield OutputSkipped(
                    cycle=ev[1], agent=self._agent(ev[2]), type=types[ev[3]].name,
                    fields=self.fields_of(ev[3], ev[4]), reason=ev[5],
                )
            elif kind == E_TOOL_CALL:
                yield ToolCall(
                    cycle=ev[1], agent=self._agent(ev[2]), tool=ev[3], args=ev[4],
                    result=ev[5], error=ev[6],
                )
            elif kind == E_EVALUATION:
                yield Evaluation(
                    cycle=ev[1], agent=self._agent(ev[2]), target=ev[3], score=ev[4],
                    reason=ev[5],
                )
            elif kind == E_CONFLICT:
                t = ev[2]
                spec = types[t]
                parts = ev[3] if len(spec.key_positions) > 1 else (ev[3],)
                yield Conflict(
                    cycle=ev[1], type=spec.name,
                    key={spec.fields[p].name: jsonable(v)
                         for p, v in zip(spec.key_positions, parts, strict=True)},
                    winner=None if ev[4] is None else self.fields_of(t, ev[4]),
                    losers=[self.fields_of(t, v) for v in ev[5]], reason=ev[6],
                )
            elif kind == E_REPLACED:
                yield Replaced(
                    cycle=ev[1], id=ev[2], type=types[store.type_of[ev[2]]].name,
                    fields=self._fields(ev[2]), by=ev[3],
                )
            elif kind == E_RETRACTED:
                yield Retracted(
                    cycle=ev[1], id=ev[2], type=types[store.type_of[ev[2]]].name,
                    fields=self._fields(ev[2]), cause=ev[3],
                )
            elif kind == E_PRUNED:
                yield Pruned(
                    cycle=ev[1], id=ev[2], type=types[store.type_of[ev[2]]].name,
                    fields=self._fields(ev[2]), age=ev[3],
                )
            elif kind == E_INTENT_CLOSED:
                yield IntentClosed(
                    cycle=ev[1], id=ev[2], type=types[store.type_of[ev[2]]].name,
                    fields=self._fields(ev[2]), agent=self._agent(ev[3]),
                )
            elif kind == E_BUDGET:
                yield BudgetEvent(name=ev[1], limit=ev[2], used=ev[3])
            elif kind == E_STATUS:
                yield StatusEvent(status=ev[1], detail=ev[2])
            elif kind == E_JOB_TIME:
                yield JobTime(now=ev[1])
            elif kind == E_INVARIANT:
                yield InvariantBroken(
                    cycle=ev[1], invariant=ev[2], rule=ev[3], agents=list(ev[6]),
                    facts=[{"type": types[t].name, "fields": self.fields_of(t, vals)}
                           for t, vals in ev[5]],
                    outcome="effect_discarded" if ev[7] else "job_ended",
                )
            elif kind == E_PLAIN:
                yield from self._plain(ev)
            elif kind == E_KEYED_UPDATE:
                yield from self._models(self.keyed_update_events(ev))
            elif kind == E_LINE:
                doc = _line_event(ev[1])
                yield _MODELS[doc["event"]].model_validate(doc)
            elif kind == E_INPUT_RETRACTED:
                yield InputRetracted(
                    cycle=ev[1], id=ev[2], type=types[store.type_of[ev[2]]].name,
                    fields=self._fields(ev[2]),
                )
            elif kind == E_APPROVAL_PENDING:
                _, cycle, pid, gate, t, vals, agent, support, conf, also = ev
                yield ApprovalPending(
                    cycle=cycle, id=pid, gate=gate, type=types[t].name,
                    fields=self.fields_of(t, vals), agent=self._agent(agent),
                    support=list(support), confidence=conf,
                    also=[Derivation(agent=self._agent(a), support=list(sup))
                          for a, sup in also],
                )
            elif kind == E_APPROVAL_DECIDED:
                _, cycle, pid, gate, t, vals, decision, by, at, note, edits, outcome = ev
                yield ApprovalDecided(
                    cycle=cycle, id=pid, gate=gate, type=types[t].name,
                    fields=self.fields_of(t, vals), decision=decision, by=by, at=at,
                    note=note, edits=dict(edits), outcome=outcome,
                )
            elif kind == E_PENDING_DROPPED:
                _, cycle, pid, gate, t, vals, gone = ev
                yield PendingDropped(cycle=cycle, id=pid, gate=gate, type=types[t].name,
                                     fields=self.fields_of(t, vals), gone=list(gone))
            else:  # pragma: no cover - a new kind without a model is a bug
                raise AssertionError(f"unknown trace event kind {kind}")

    def _from(self, start: int) -> Iterable[Event]:
        held = start - self._spilled
        return ((self.raw[held:] if held else self.raw) if held >= 0
                else islice(self.all_raw(), start, None))

    def bare_lines(self, start: int = 0) -> Iterator[str]:
        """The events' JSON documents without their ``hash`` member (sorted keys,
        compact: the canonical encoding the chain hashes), from the event ``start``
        on. Written straight from the event tuples (:class:`_LineWriter`), byte for
        byte what dumping the events' models gives (:meth:`model_lines`)."""
        for texts in _LineWriter(self).event_lines(self._from(start)):
            yield from texts

    def lines(self, start: int = 0) -> Iterator[str]:
        """One deterministic JSON document per event, what ``--trace`` and ``--store``
        write: :meth:`bare_lines` with the ``hash`` member of the integrity chain
        appended (:mod:`converge_rules.integrity`); from the event ``start`` on
        (counting the spilled ones: the lines of the events after a cycle sink's last
        commit, ``len(trace)`` then), all of them by default. Consecutive calls (a
        cycle sink's) go on from the hash where the last one stopped."""
        if start == 0:
            head = GENESIS
        elif start == self._chain_at:
            head = self._chain_head
        else:  # a start elsewhere: the chain up to it, from the first line (events
            # between start and _chain_at then wrote no line: the head is the same)
            for _ in self.lines(0):
                if self._chain_at >= start:
                    break
            assert self._chain_at >= start, "start past the end of the trace"
            head = self._chain_head
        from hashlib import sha256  # here: a run writing no trace lines needs no OpenSSL

        at = start
        for texts in _LineWriter(self).event_lines(self._from(start)):
            for text in texts:
                head = sha256(head + text.encode("utf-8", "surrogatepass")).digest()
                yield f'{text[:-1]}{HASH_MEMBER}{head.hex()}"}}'
            at += 1
            self._chain_at, self._chain_head = at, head

    def resume_from(self, lines: Iterable[str]) -> None:
        """Start an empty trace with the stored ``lines`` of a job resumed from a
        checkpoint (each with its ``hash`` member): one :data:`E_LINE` event each,
        written back as they were, moved to the spool as they come; the integrity
        chain goes on from the last one's hash."""
        assert len(self) == 0, "a trace resumes before its first event"
        raw = self.raw
        last = ""
        for line in lines:
            # the text the chain hashed: the line without its `,"hash":"…"` member
            raw.append((E_LINE, line[:-_HASH_SUFFIX] + "}"))
            last = line
            if len(raw) >= SPILL_EVENTS:
                self.spill()
        self.spill(at_least=1)
        if last:
            self._chain_at = len(self)
            self._chain_head = bytes.fromhex(last[-_HASH_SUFFIX + len(HASH_MEMBER):-2])

    def head(self) -> str:
        """The hash (hex) of the trace's last line, the ``trace_head`` of the result's
        integrity proof (computed once the lines were written, else now)."""
        if self._chain_at != len(self):
            for _ in self.lines(self._chain_at):
                pass
        return self._chain_head.hex()

    def model_lines(self, start: int = 0) -> Iterator[str]:
        """:meth:`bare_lines` the slow way, through the pydantic models (the schema):
        what the fast writer is checked against, and what it falls back to for an
        event holding a value it does not write itself."""
        from converge_rules.engine.trace_models import model_line

        for model in self._models(self._from(start)):
            yield model_line(model)

    def tail(self, start: int) -> Iterable[Event]:
        """The raw events from the event ``start`` on (counting the spilled ones)."""
        held = start - self._spilled
        if held >= 0:
            return self.raw[held:] if held else list(self.raw)
        return islice(self.all_raw(), start, None)

    def event_dicts(self, raw: Iterable[Event]) -> Iterator[dict[str, Any]]:
        """``raw`` events as the JSON objects their trace lines hold (live events:
        :mod:`converge_rules.engine.events`)."""
        from converge_rules.engine.trace_models import model_data

        for model in self._models(raw):
            yield model_data(model)

    def to_jsonl(self) -> str:
        """The whole trace as JSON Lines (each line ends with a newline)."""
        return "".join(line + "\n" for line in self.lines())


# The fast writer's encoders. A value they do not write exactly as the models do (a
# float that is not finite, an object of another type) raises, and that event's line
# is then written through its model: the output is the same either way.
_encode_str: Callable[[str], str] = json.encoder.encode_basestring  # as dumps writes


def _iso_only(value: Any) -> str:
    if isinstance(value, date | timedelta):
        return iso_text(value)
    raise TypeError(type(value).__name__)


def _no_default(value: Any) -> str:
    raise TypeError(type(value).__name__)


def _encoder(default: Callable[[Any], str]) -> Callable[[Any], str]:
    """Compact JSON with sorted keys, non-ASCII as itself, refusing NaN and infinity
    (:func:`~converge_rules.jsontext.c_encoder`: one C encoder made once)."""
    return c_encoder(default, ascii=False, sort_keys=True, allow_nan=False)


_encode = _encoder(_no_default)
# fact fields as :func:`jsonable` makes them: dates and durations as ISO 8601 text
_encode_fields = _encoder(_iso_only)
_isfinite = math.isfinite


def _float(value: Any) -> str:
    """A ``float`` field's value as the models write it (an int becomes a float)."""
    x = float(value)
    if not _isfinite(x):
        raise ValueError("not finite")  # the model path writes it (Infinity, NaN)
    return repr(x)


_LASTING = ',"lasting":true'


def _support(support: Sequence[int]) -> str:
    return "[" + ",".join(map(str, support)) + "]" if support else "[]"


class _LineWriter:
    """Writes trace lines from the raw event tuples, without a model per event: each
    line is assembled from its parts in sorted key order (names of agents and types
    encoded once per job). Any event it cannot write exactly (see ``_encode``) goes
    through its model (:func:`model_line`)."""

    __slots__ = ("_agents", "_field_names", "_store", "_trace", "_types")

    def __init__(self, trace: Trace) -> None:
        self._trace = trace
        self._store = trace._store
        names = trace._names
        if names is None:
            program = trace._program
            names = trace._names = ([_encode_str(a.name) for a in program.agents],
                                    [_encode_str(t.name) for t in program.types],
                                    [t.field_names for t in program.types])
        self._agents, self._types, self._field_names = names

    def _fields(self, fid: int) -> str:
        store = self._store
        t = store.type_of[fid]
        return _encode_fields(dict(zip(self._field_names[t], store.values[fid], strict=True)))

    def event_lines(self, events: Iterable[Event]) -> Iterator[list[str]]:
        """The lines of each event (a lean effect or the inputs give several)."""
        line = self._line
        trace = self._trace
        for ev in events:
            try:
                texts = line(ev)
            except (TypeError, ValueError, OverflowError, RecursionError):
                from converge_rules.engine.trace_models import model_line

                texts = [model_line(m) for m in trace._models((ev,))]
            yield [text if text.isascii() else one_line(text) for text in texts]

    def _line(self, ev: Event) -> list[str]:
        """The lines of one raw event (a lean effect or the inputs give several)."""
        kind = ev[0]
        agents = self._agents
        if kind == E_PLAIN:
            return self._plain(ev)
        if kind == E_LINE:
            return [ev[1]]
        if kind == E_KEYED_UPDATE:
            conflict, added, replaced = self._trace.keyed_update_events(ev)
            return [self._other(conflict), *self._line(added), *self._line(replaced)]
        if kind == E_FACT_ADDED:
            _, fid, agent, cycle, support, confidence = ev
            t = self._store.type_of[fid]
            lasting = ',"lasting":true' if type(support) is Lasting else ""
            return [
                f'{{"agent":{"null" if agent < 0 else agents[agent]},'
                f'"confidence":{_float(confidence)},"cycle":{cycle:d},'
                f'"event":"fact_added","fields":{self._fields(fid)},"id":{fid:d}{lasting},'
                f'"support":{_support(support)},"type":{self._types[t]}}}'
            ]
        if kind == E_FACT_SUPPORTED:
            _, fid, agent, cycle, support = ev
            lasting = ',"lasting":true' if type(support) is Lasting else ""
            return [
                f'{{"agent":{agents[agent]},"cycle":{cycle:d},"event":"fact_supported",'
                f'"id":{fid:d}{lasting},"support":{_support(support)}}}'
            ]
        if kind == E_CYCLE_START:
            return [
                f'{{"agents":[{",".join([agents[a] for a in ev[3]])}],"cycle":{ev[1]:d},'
                f'"event":"cycle_start","tier":{ev[2]:d}}}'
            ]
        if kind == E_CYCLE_END:
            _, cycle, tier, added, removed, live = ev
            return [
                f'{{"added":{added:d},"cycle":{cycle:d},"event":"cycle_end",'
                f'"live":{live:d},"removed":{removed:d},"tier":{tier:d}}}'
            ]
        if kind == E_INPUTS:
            types = self._types
            type_of = self._store.type_of
            return [
                f'{{"agent":null,"confidence":1.0,"cycle":0,"event":"fact_added",'
                f'"fields":{self._fields(fid)},"id":{fid:d},"support":[],'
                f'"type":{types[type_of[fid]]}}}'
                for fid in range(ev[1])
            ]
        if kind in _ABOUT_FACT:
            name, key = _ABOUT_FACT[kind]
            _, cycle, fid, other = ev
            t = self._store.type_of[fid]
            if kind == E_INTENT_CLOSED:
                return [
                    f'{{"agent":{agents[other]},"cycle":{cycle:d},"event":"intent_closed",'
                    f'"fields":{self._fields(fid)},"id":{fid:d},"type":{self._types[t]}}}'
                ]
            return [
                f'{{"{key}":{other:d},"cycle":{cycle:d},"event":"{name}",'
                f'"fields":{self._fields(fid)},"id":{fid:d},"type":{self._types[t]}}}'
            ]
        return [self._other(ev)]

    def _plain(self, ev: Event) -> list[str]:
        # the hot loop of a lean effect (a closure's every derivation): names looked
        # up once, the common confidence 1.0 written without a call
        _, cycle, agent, outputs, _, next_new = ev
        head = f'{{"agent":{self._agents[agent]},'
        added = f'"cycle":{cycle:d},"event":"fact_added","fields":'
        supported = f'"cycle":{cycle:d},"event":"fact_supported","id":'
        types = self._types
        names = self._field_names
        store = self._store
        type_of = store.type_of
        values = store.values
        encode_fields = _encode_fields
        out_lines: list[str] = []
        add = out_lines.append
        for out, fid in zip(outputs, self._trace._plain_ids(ev), strict=False):
            if fid == next_new:
                next_new += 1
                support = out[4]
                confidence = out[3]
                t = type_of[fid]
                add(f'{head}"confidence":'
                    f'{"1.0" if confidence == 1.0 else _float(confidence)},{added}'
                    f'{encode_fields(dict(zip(names[t], values[fid], strict=True)))},'
                    f'"id":{fid:d}{_LASTING if type(support) is Lasting else ""},'
                    f'"support":[{",".join(map(str, support))}],"type":{types[t]}}}')
            elif fid >= 0:
                support = out[4]
                add(f'{head}{supported}{fid:d}'
                    f'{_LASTING if type(support) is Lasting else ""},'
                    f'"support":[{",".join(map(str, support))}]}}')
            elif fid == -1:
                reason = out[3]
                add(f'{head}"cycle":{cycle:d},"event":"evaluation",'
                    f'"reason":{"null" if reason is None else _encode_str(reason)},'
                    f'"score":{_float(out[2])},"target":{out[1]:d}}}')
        return out_lines

    def _other(self, ev: Event) -> str:
        """The rarer events, as a plain dict encoded with sorted keys."""
        kind = ev[0]
        agents = self._agents
        trace = self._trace
        data: dict[str, Any]
        if kind == E_EFFECT_MERGED:
            return (f'{{"agent":{agents[ev[2]]},"cycle":{ev[1]:d},"event":"effect_merged",'
                    f'"outputs":{ev[3]:d}}}')
        if kind == E_EFFECT_DISCARDED:
            return (f'{{"agent":{agents[ev[2]]},"cycle":{ev[1]:d},'
                    f'"event":"effect_discarded","reason":{_encode_str(ev[3])}}}')
        if kind == E_TOOL_CALL:
            _, cycle, agent, tool, args, result, error = ev
            data = {"event": "tool_call", "cycle": cycle, "agent": trace._agent(agent),
                    "tool": tool, "args": args, "result": result, "error": error}
        elif kind == E_EVALUATION:
            _, cycle, agent, target, score, reason = ev
            return (f'{{"agent":{agents[agent]},"cycle":{cycle:d},"event":"evaluation",'
                    f'"reason":{"null" if reason is None else _encode_str(reason)},'
                    f'"score":{_float(score)},"target":{target:d}}}')
        elif kind == E_CONFLICT:
            _, cycle, t, key, winner, losers, reason = ev
            spec = trace._program.types[t]
            names = self._field_names[t]
            parts = key if len(spec.key_positions) > 1 else (key,)
            keys = [names[p] for p in spec.key_positions]
            key_json = _encode_fields(dict(zip(keys, parts, strict=True)))
            losers_json = ",".join([_encode_fields(dict(zip(names, v, strict=True)))
                                    for v in losers])
            winner_json = ("null" if winner is None
                           else _encode_fields(dict(zip(names, winner, strict=True))))
            return (f'{{"cycle":{cycle:d},"event":"conflict","key":{key_json},'
                    f'"losers":[{losers_json}],"reason":{_encode_str(reason)},'
                    f'"type":{self._types[t]},"winner":{winner_json}}}')
        elif kind == E_OUTPUT_SKIPPED:
            # (as OutputSkipped's model writes it: an output whose support left in
            # the same merge, once a cycle in a job that replaces and derives from
            # the same fact)
            _, cycle, agent, t, vals, reason = ev
            fields = _encode_fields(dict(zip(self._field_names[t], vals, strict=True)))
            return (f'{{"agent":{agents[agent]},"cycle":{cycle:d},'
                    f'"event":"output_skipped","fields":{fields},'
                    f'"reason":{_encode_str(reason)},"type":{self._types[t]}}}')
        elif kind in (E_BUDGET, E_STATUS, E_JOB_TIME, E_INVARIANT,
                      E_INPUT_RETRACTED, E_APPROVAL_PENDING, E_APPROVAL_DECIDED,
                      E_PENDING_DROPPED):
            # built by the models' own rules (rare events: one per conflict or job)
            from converge_rules.engine.trace_models import model_line

            return model_line(next(trace._models((ev,))))
        else:  # pragma: no cover - a new kind without a line is a bug
            raise AssertionError(f"unknown trace event kind {kind}")
        if type(data["cycle"]) is not int:
            raise TypeError("cycle")
        return _encode(data)


# the events about one fact: (kind) → (event name, the key of their 4th item)
_ABOUT_FACT: dict[int, tuple[str, str]] = {
    E_REPLACED: ("replaced", "by"),
    E_RETRACTED: ("retracted", "cause"),
    E_PRUNED: ("pruned", "age"),
    E_INTENT_CLOSED: ("intent_closed", "agent"),
}
