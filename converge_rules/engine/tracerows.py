"""A job store's trace, kept compact: rows of cycles' raw events, expanded to lines
when read.

Building a deterministic, hash-chained JSON line per trace event costs more than
deriving the fact it records (bench/README.md, "Job store"). A job store therefore
keeps each cycle's *raw* events at run time — the event tuples, the ids and values of
the facts their lines name, as nested lists — encoded by one ``json.dumps`` call
(:func:`compact`); the store joins the texts of the cycles one transaction commits in
one row (:func:`joined_text`) and hashes it once. The JSON lines, with their
per-line integrity chain (:mod:`converge_rules.integrity`), are built only when the
trace is read (:func:`expand`, then :func:`chained`), by the same line writer that
``--trace`` uses: the lines read back are byte for byte what ``--trace`` writes.

A row's text (format ``events``) is ``[names, events]``: ``names`` (the agents', the
types' and the types' field names) in the first row a process writes for a job, else
null (a reader keeps the last names seen); ``events`` one list per raw event:

* ``[0, n, types, values]`` the input facts (ids ``0…n-1``);
* ``[1, cycle, tier, agents]``, ``[2, cycle, tier, added, removed, live]``,
  ``[5, cycle, agent, outputs]`` as the tuples are;
* ``[3, id, agent, cycle, support, confidence, lasting, type, values]``,
  ``[4, id, agent, cycle, support, lasting]`` one derivation;
* ``[11|12|13|14, cycle, id, other, type, values]`` a fact leaving the context;
* ``[17, cycle, agent, ids, first new id, new types, new values, outputs]`` a lean
  effect, ``outputs`` as the tuples are, or for columnar outputs
  ``[17, …, new values, null, type, support, width]``: ``ids`` then the count of the
  outputs when each was a new fact (ids ``first new id`` on), the new values, when
  every field of the type is an ``int``, and the support packed (:func:`_packed`:
  the narrowest of 16/32/64-bit ints in base64, ``"h:…"``; rows written before
  schema version 10 hold the hex of 64-bit ints, :func:`_ints`, and read as before);
* ``[23, lines]`` any other event, as its canonical lines (rare: tool calls,
  conflicts, status…), built by the line writer at run time.

A cycle whose events do not encode exactly (a value JSON cannot hold the same way)
is kept as its lines instead (format ``lines``: a JSON array of canonical lines): the
reader gives the same lines either way.

A row of format ``raw`` (:func:`raw_run`, schema version 9) holds cycles whose events
are all of the common kinds (:func:`is_raw`), encoded together at the commit with no
Python work per event: ``[names, first id, types, values, olds, lasting, events]``,
``names`` as above plus each type's reason for its updates in place (null unless
the row is the first raw row a process writes for a job), ``types`` and ``values``
those of the facts ``[first id, first id + len(types))`` the cycles merged, ``olds``
``[id, type, values]`` of older facts the events name, ``lasting`` the positions of
the events whose support is lasting, ``events`` the event tuples as the engine
recorded them (a keyed update as one event: the reader expands it to its three).

A row of format ``rawm`` (schema version 11) holds the same list, msgpack-encoded
(:func:`raw_run`; its names, when it has them, the JSON text above as one msgpack
string): packing it costs a third of the ``json`` call and the row is a third smaller
(bench/README.md "smsg"). A run msgpack does not keep exactly (an int beyond 64
bits, a str with a lone surrogate, a float that is not finite) goes to ``json`` as
before (:func:`raw_text`): a ``raw`` row, or, for a float that is not finite (the
line writer writes it through the models, which a reader has not), no raw row.
"""

from __future__ import annotations

import json
import re
import struct
import sys
from array import array
from binascii import a2b_base64 as _unb64
from binascii import b2a_base64 as _b64
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, timedelta
from itertools import chain, compress, islice, repeat
from operator import is_, itemgetter
from types import SimpleNamespace
from typing import Any, NamedTuple

import msgpack

from converge_rules.engine.policies import decided_by
from converge_rules.engine.trace import (
    E_CONFLICT,
    E_CYCLE_END,
    E_CYCLE_START,
    E_EFFECT_MERGED,
    E_FACT_ADDED,
    E_FACT_SUPPORTED,
    E_INPUTS,
    E_INTENT_CLOSED,
    E_KEYED_UPDATE,
    E_LINE,
    E_PLAIN,
    E_PRUNED,
    E_REPLACED,
    E_RETRACTED,
    E_STATUS,
    E_TOOL_CALL,
    EVENT_KINDS,
    Event,
    Trace,
    _LineWriter,
)
from converge_rules.integrity import GENESIS, HASH_MEMBER, split_hash
from converge_rules.jsontext import c_encoder
from converge_rules.language.builtins import iso_text
from converge_rules.program import EMIT, Columns, Lasting

_KINDS = frozenset().union(*EVENT_KINDS.values())
"""The kinds of the raw events a trace row may hold."""

EVENTS = "events"
"""A row of raw events (see the module)."""

LINES = "lines"
"""A row of canonical lines (a JSON array of texts, without their hash members)."""

RAW = "raw"
"""A row of raw event tuples as the engine recorded them (see :func:`raw_run`)."""

RAWM = "rawm"
"""A row of format :data:`RAW` encoded by msgpack (see :func:`raw_run`)."""

TEXT = "text"
"""A row of lines as they were handed to the store (a JSON array of texts, each with
its hash member when it had one): read back verbatim."""

_REMOVALS = frozenset({E_REPLACED, E_RETRACTED, E_PRUNED, E_INTENT_CLOSED})
_AS_IS = frozenset({E_CYCLE_START, E_CYCLE_END, E_EFFECT_MERGED, E_CONFLICT})


class CompactCycle(NamedTuple):
    """The trace events of one cycle (or of a job's end) as a store keeps them:
    ``kind`` :data:`EVENTS` (``text`` the JSON list of the raw events, see the
    module) or :data:`LINES` (``text`` the JSON list of the canonical lines), ``lines``
    how many trace lines they are, ``status`` the job's ``(status, detail)`` when they
    hold its status event. (A named tuple: one is made every cycle, and a frozen
    dataclass's ``__init__`` cost 0.5-1 us of a counter cycle's ~9 us of ``compact``.)"""

    kind: str
    text: str
    lines: int
    status: tuple[str, str] | None
    #: the job's names as JSON (:func:`names_text`), for the first row a sink writes
    names: Callable[[], str] = lambda: "null"
    #: whether the events hold a tool call (the cycle is then committed as it ends)
    tools: bool = False

    def row(self, previous: str, named: bool, seq: int, cycle: int) -> tuple[str, str]:
        """The row's text (with the job's names unless ``named``: see the module) and
        its hash in the row chain after ``previous`` (:func:`row_hash`), covering its
        columns too: ``seq`` its first line's number, ``cycle``, its line count and
        format (:func:`row_columns`)."""
        text = row_text(self, None if named else self.names())
        return text, row_hash(previous, text, row_columns(seq, cycle, self.lines, self.kind))


def _default(value: Any) -> Any:
    # what the line writer writes as text (dates, durations) or as a list (an array
    # of ids or support); anything else cannot be kept raw: the cycle is kept as lines
    if isinstance(value, date | timedelta):
        return iso_text(value)
    if isinstance(value, array):
        return value.tolist()
    raise TypeError(type(value).__name__)


_dumps = c_encoder(_default, allow_nan=False)
"""One call at C speed per row; ASCII (lone surrogates escaped: they read back as they
were); no NaN or infinity (the line writer writes those through the models)."""


_NOT_FINITE = re.compile(rb"\xcb[\x7f\xff][\xf0-\xff]")
"""Where a msgpack text may hold a float that is not finite (a float64 whose exponent
bits are all set; the pattern may match other bytes too, which only sends a run to
the ``json`` row that refuses them)."""


def _unpack(data: bytes) -> Any:
    """A msgpack row read back, safely: lists, str keys or not, no extension types,
    every length bounded by the data's (``unpackb``'s limits); a malformed text raises
    ``ValueError``."""
    try:
        return msgpack.unpackb(data, use_list=True, raw=False, strict_map_key=False,
                               ext_hook=_no_ext)
    except ValueError:
        raise
    except Exception as exc:  # (msgpack's OutOfData and the like)
        raise ValueError(f"a malformed msgpack row: {exc}") from None


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError("a msgpack extension type in a trace row")


_BIG = sys.byteorder == "big"
_pack = struct.pack


def _ints(ids: Sequence[int]) -> str:
    """Fact ids (an array or list of ints) as the hex of their 64-bit little-endian
    bytes: a fixed encoding, ~50x cheaper to write than JSON numbers."""
    if type(ids) is array and ids.typecode == "q" and not _BIG:
        return ids.tobytes().hex()
    # a list: packed by struct, ~2x cheaper than an array built from it (raises
    # struct.error for what is no 64-bit int, as an array raises OverflowError)
    return _pack(f"<{len(ids)}q", *ids).hex()


def _unints(text: str) -> array[int]:
    """:func:`_ints` read back."""
    out = array("q")
    out.frombytes(bytes.fromhex(text))
    if _BIG:  # pragma: no cover
        out.byteswap()
    return out


def _packed(ints: Sequence[int]) -> str:
    """Ints (a list or an array) as the narrowest of 16-, 32- and 64-bit little-endian
    ints that holds every one: its ``struct`` code, a colon and the bytes in base64
    (``"h:AQACAA=="``: a fact's column of small ints in a quarter of the bytes, and
    two thirds of hex's characters). Narrowest first, so the text depends on the
    ints alone; a failed width stops at the first int it cannot hold. Raises
    ``struct.error`` for what is no 64-bit int."""
    code, data = _narrow(ints)
    return f"{code}:{_b64(data, newline=False).decode('ascii')}"


def _narrow(ints: Sequence[int]) -> tuple[str, bytes]:
    """The ``struct`` code and the little-endian bytes of :func:`_packed`."""
    n = len(ints)
    # (a width the first int does not fit is not tried: a failed pack's exception
    # costs 3 us, a closure cycle's supports ~13)
    head = ints[0] if n and type(ints[0]) is int else 0
    try:
        if not -0x8000 <= head < 0x8000:
            raise struct.error
        return "h", _pack(f"<{n}h", *ints)
    except struct.error:
        try:
            if not -0x8000_0000 <= head < 0x8000_0000:
                raise struct.error from None
            return "i", _pack(f"<{n}i", *ints)
        except struct.error:
            return "q", _pack(f"<{n}q", *ints)


_WIDTH = {"h": 2, "i": 4, "q": 8}


def _unpacked(text: str) -> Sequence[int]:
    """:func:`_packed` (or :func:`_ints`, older rows: no colon) read back."""
    if text[1:2] != ":":
        return _unints(text)
    code = text[0]
    data = _unb64(text[2:], strict_mode=True)
    size = _WIDTH[code]  # (KeyError: no width a row is written with)
    if len(data) % size:
        raise ValueError("packed ints of a broken length")
    return struct.unpack(f"<{len(data) // size}{code}", data)


def _fresh(type_of: Sequence[int], values: Sequence[Any], t: int, batch: Sequence[Any],
           first: int) -> bool:
    """Whether each of the outputs ``batch`` of type ``t``, merged whole from the id
    ``first`` on (``FactStore.add_columns``), was a new fact: then output ``i``
    merged into fact ``first + i``. So when the facts ``[first, first + n)`` are of
    type ``t`` and equal to the outputs in order: the store never holds two live
    facts of one plain type that are equal (an equal output merges into the one
    there), and facts merged whole never leave. Two comparisons at C speed (the
    stored values are the outputs' own tuples: equal by identity), instead of a
    look-up per output (``merged_ids``)."""
    n = len(batch)
    return (values[first:first + n] == batch
            and type_of[first:first + n].count(t) == n)


def _int_arity(trace: Trace, type_id: int) -> int:
    """How many fields the type has when every one is a required ``int`` (its facts'
    values are then kept as packed ints, :func:`_ints`, read back as the same ints),
    else 0."""
    fields = trace._program.types[type_id].fields
    if fields and all(f.type.base == "int" and not f.type.optional for f in fields):
        return len(fields)
    return 0


def names_of(trace: Trace) -> list[Any]:
    """The names a row's lines need: agents, types, each type's field names and its
    key's field positions."""
    program = trace._program
    return [[a.name for a in program.agents], [t.name for t in program.types],
            [list(t.field_names) for t in program.types],
            [list(t.key_positions) for t in program.types]]


def compact(trace: Trace, start: int, events: Sequence[Event] | None = None
            ) -> CompactCycle:
    """The events of ``trace`` from the event ``start`` on (or ``events``, those
    events as a list), compactly (see the module); called as the cycle ends, while
    the facts they name are in the store."""
    if events is None:
        events = list(trace.tail(start))
    store = trace._store
    values = store.values
    type_of = store.type_of
    out: list[Any] = []
    add = out.append
    #: the events so far as lists of events to encode and texts already encoded
    parts: list[list[Any] | str] = []
    exact = True
    lines = 0
    status: tuple[str, str] | None = None
    writer: _LineWriter | None = None
    tools = False
    int_columns: list[int | None] = [None] * len(trace._program.types)
    handed = store.packed
    for ev in events:
        kind = ev[0]
        if kind == E_PLAIN:
            _, cycle, agent, outputs, fids, first = ev
            if type(outputs) is Columns:  # one type, plain emits: kept as columns
                t = outputs.type_id
                batch = outputs.values
                n = len(batch)
                # merged whole (fids None): when every output was a new fact, the ids
                # are first, first + 1, ...: written as their count, no ids looked up
                # (see _fresh); else the store gives them, or they were recorded
                fresh = fids is None and _fresh(type_of, values, t, batch, first)
                if fresh:
                    ids: Sequence[int] = range(first, first + n)
                    ids_text = f"{n:d}"
                    new = batch  # (the new facts' values: the outputs' own tuples)
                else:
                    ids = store.merged_ids(outputs) if fids is None else fids
                    ids_text = ""
                    new = values[first:max(max(ids) + 1, first) if len(ids) else first]
                arity = int_columns[t]
                if arity is None:
                    arity = int_columns[t] = _int_arity(trace, t)
                # the event's JSON written here, its packed columns as they are (never
                # scanned by the encoder for escapes: bench/README.md "Job store:
                # cheaper trace rows"); the row's text is the same as if it had been
                try:
                    if arity:
                        flat: list[int] = []
                        for vals in new:  # (~0.6x of a list from chain.from_iterable)
                            flat += vals
                        if len(flat) != len(new) * arity:  # (columns' values unchecked)
                            raise ValueError("values of another arity than their type's")
                        code, data = _narrow(flat)
                        new_text = f'"{code}:{_b64(data, newline=False).decode("ascii")}"'
                        if fresh and n and handed is not None:
                            # the new facts' values packed: the checkpoint of this
                            # cycle's transaction takes their columns from these
                            # bytes (FactStore.packed), not from the values again
                            handed.append((first, n, arity, code, data))
                    else:
                        new_text = _dumps(new)
                    if not ids_text:
                        ids_text = f'"{_packed(ids)}"'
                    if out:
                        parts.append(out)
                        out = []
                        add = out.append
                    parts.append(f'[{E_PLAIN},{cycle:d},{agent:d},{ids_text},'
                                 f'{first:d},null,{new_text},null,{t:d},'
                                 f'"{_packed(outputs.support)}",{outputs.width:d}]')
                except (TypeError, ValueError, OverflowError, RecursionError, struct.error):
                    exact = False  # a value JSON does not keep exactly: see below
                lines += len(ids) if fids is None else len(fids) - fids.count(-2)
                continue
            if not any(type(o[-1]) is Lasting for o in outputs):
                end = max(max(fids) + 1, first) if len(fids) else first
                add([E_PLAIN, cycle, agent, _ints(fids), first, type_of[first:end],
                     values[first:end], outputs])
                lines += len(fids) - fids.count(-2)
                continue
        elif kind in _AS_IS:
            add(ev)
            lines += 1
            continue
        elif kind == E_KEYED_UPDATE:
            # an update in place: the three events it stands for, each as compactly
            # as if the merge had recorded them (never its lines: it is the keyed
            # counter's every cycle)
            conflict, added, replaced = trace.keyed_update_events(ev)
            _, fid, agent, cycle, support, confidence = added
            _, _, old, _ = replaced
            add(conflict)
            add([E_FACT_ADDED, fid, agent, cycle, support, confidence,
                 type(support) is Lasting, type_of[fid], values[fid]])
            add([E_REPLACED, cycle, old, fid, type_of[old], values[old]])
            lines += 3
            continue
        elif kind == E_FACT_ADDED:
            _, fid, agent, cycle, support, confidence = ev
            add([E_FACT_ADDED, fid, agent, cycle, support, confidence,
                 type(support) is Lasting, type_of[fid], values[fid]])
            lines += 1
            continue
        elif kind == E_FACT_SUPPORTED:
            _, fid, agent, cycle, support = ev
            add([E_FACT_SUPPORTED, fid, agent, cycle, support, type(support) is Lasting])
            lines += 1
            continue
        elif kind in _REMOVALS:
            _, cycle, fid, other = ev
            add([kind, cycle, fid, other, type_of[fid], values[fid]])
            lines += 1
            continue
        elif kind == E_INPUTS:
            n = ev[1]
            add([E_INPUTS, n, type_of[:n], values[:n]])
            lines += n
            continue
        elif kind == E_STATUS:
            status = (str(ev[1]), str(ev[2]))
        elif kind == E_TOOL_CALL:
            tools = True
        # any other event (and a lean effect with lasting facts): its lines now
        if writer is None:
            writer = _LineWriter(trace)
        texts = next(writer.event_lines((ev,)))
        add([E_LINE, texts])
        lines += len(texts)
    if exact:
        try:
            if parts:  # the events before and after each columnar one, encoded apart
                if out:
                    parts.append(out)
                text = "[" + ",".join([p if type(p) is str else _dumps(p)[1:-1]
                                       for p in parts]) + "]"
            else:
                text = _dumps(out)
            return CompactCycle(EVENTS, text, lines, status,
                                lambda: names_text(trace), tools)
        except (TypeError, ValueError, OverflowError, RecursionError):
            pass  # a value JSON does not keep exactly: the cycle is kept as its lines
    if writer is None:
        writer = _LineWriter(trace)
    texts = [text for each in writer.event_lines(events) for text in each]
    return CompactCycle(LINES, _dumps(texts), len(texts), status, tools=tools)


# ------------------------------------------------------------ raw rows (format raw)

_SIMPLE = bytes([E_INPUTS, E_CYCLE_START, E_CYCLE_END, E_FACT_ADDED, E_FACT_SUPPORTED,
                 E_EFFECT_MERGED, E_CONFLICT, E_REPLACED, E_RETRACTED, E_PRUNED,
                 E_INTENT_CLOSED, E_KEYED_UPDATE])
"""The kinds of event a row of format :data:`RAW` keeps as the tuples are: each gives
one line (a keyed update three, the inputs one per fact), and the facts they name are
found by position."""

_KIND = itemgetter(0)
_AT_1 = itemgetter(1)
_AT_2 = itemgetter(2)
_AT_3 = itemgetter(3)
_AT_4 = itemgetter(4)
_LAST = itemgetter(-1)
_LAST_BUT_ONE = itemgetter(-2)


def _mask_of(kinds: Iterable[int]) -> bytes:
    """A ``bytes.translate`` table that turns a run's kinds (:func:`kinds_of`) into
    its mask for ``compress``: 1 where the event is of one of ``kinds``, else 0 (at
    C speed, a byte an event: a set's ``__contains__`` mapped over the kinds cost ~30
    times as much, a sixth of :func:`raw_run`'s time)."""
    wanted = frozenset(kinds)
    return bytes(1 if k in wanted else 0 for k in range(256))


_REMOVAL_MASK = _mask_of(_REMOVALS)
_ADDED_MASK = _mask_of([E_FACT_ADDED])
_KEYED_MASK = _mask_of([E_KEYED_UPDATE])
_ADDED_OR_KEYED_MASK = _mask_of([E_FACT_ADDED, E_KEYED_UPDATE])
_SUPPORTED_MASK = _mask_of([E_FACT_SUPPORTED])
_SUPPORTS = frozenset({tuple, Lasting})
_NUMBERS = frozenset({float, int, bool})
_INTS = frozenset({int, bool})


def kinds_of(events: Sequence[Event]) -> bytes | None:
    """The kinds of ``events`` as bytes (at C speed), None when one is no byte."""
    try:
        return bytes(map(_KIND, events))
    except (ValueError, TypeError):
        return None


def is_raw(kinds: bytes | None) -> bool:
    """Whether events of these ``kinds`` (:func:`kinds_of`) can be kept in a row of
    format :data:`RAW`."""
    return kinds is not None and not kinds.translate(None, _SIMPLE)


RAW_KINDS = frozenset(_SIMPLE)
""":data:`_SIMPLE` as a set: the engine asks ``RAW_KINDS.issuperset`` of each cycle's
events' kinds as the cycle ends (no bytes made: half :func:`kinds_of`'s time)."""


def all_raw(events: Sequence[Event]) -> bool:
    """Whether ``events`` can be kept in a row of format :data:`RAW`: ``is_raw(
    kinds_of(events))`` in one call for the engine's events (int kinds; a kind equal
    to one of :data:`RAW_KINDS` without being an int, e.g. ``3.0``, passes here and
    not there). The engine makes the same test itself, ``RAW_KINDS.issuperset``, with
    no ``try``: its kinds are its own ints."""
    try:
        return RAW_KINDS.issuperset(map(_KIND, events))
    except TypeError:  # (an unhashable kind)
        return False


def events_of(trace: Trace, start: int, end: int) -> list[Event]:
    """The events ``[start, end)`` of ``trace`` (in memory: the engine commits the
    cycles waiting before its trace spills them; else read back from its spool)."""
    spilled = trace._spilled
    if start >= spilled:
        return trace.raw[start - spilled:end - spilled]
    return list(islice(trace.all_raw(), start, end))


class RawRun(NamedTuple):
    """The events of cycles one after another, each of kinds :func:`is_raw` accepts, as
    a row of format :data:`RAW` holds them (``text``: the row's text after its names,
    see :func:`raw_run`), ``lines`` how many trace lines they give, ``cycles`` each
    cycle's ``(cycle, lines)``."""

    kind: str
    #: the row's JSON text after its names (RAW) or its msgpack bytes without the
    #: array's header (RAWM: :func:`raw_row` adds it and the names)
    text: str | bytes
    lines: int
    cycles: list[tuple[int, int]]
    names: Callable[[], str]
    #: the events as a chunk of the trace's spool (:meth:`Trace.packed`: the row's
    #: msgpack of them, read back as exactly these tuples), None when the row is
    #: JSON or an event holds what msgpack reads back as another type
    spool: bytes | None = None


def raw_names_text(trace: Trace) -> str:
    """The names a row of format :data:`RAW` carries: :func:`names_of`'s, and each
    type's reason for its updates in place (null for a type that has none)."""
    program = trace._program
    reasons: list[str | None] = []
    for t, spec in enumerate(program.types):
        reason = None
        policy = program.policies.get(t)
        if spec.key_positions and policy is not None and policy.criteria:
            reason = decided_by(policy.criteria[0], spec)
        reasons.append(reason)
    return _dumps([*names_of(trace), reasons])


def raw_run(trace: Trace, events: Sequence[Event], kinds: bytes,
            cycles: Sequence[tuple[int, int]], first_id: int, next_id: int) -> RawRun | None:
    """The ``events`` of ``cycles`` (each ``(cycle, where its events end in
    events)``), of ``kinds`` (:func:`kinds_of`, all of which :func:`is_raw`
    accepts), as one run of a row of format :data:`RAW`: the event tuples as they
    are (a keyed update not expanded: the reader does it), the types and values of
    the facts ``[first_id, next_id)`` these cycles merged (slices of the fact store,
    whose values are only ever appended to), those of older facts the events name,
    and where a support is lasting; all at C speed but for one ``json`` call. None
    when a value does not encode exactly (the caller keeps those cycles as
    :func:`compact` does)."""
    store = trace._store
    type_of, values = store.type_of, store.values
    # the older facts the events name: those replaced, retracted, pruned or closed,
    # and the ones keyed updates replace
    named = list(map(_AT_2, compress(events, kinds.translate(_REMOVAL_MASK))))
    if E_KEYED_UPDATE in kinds:
        keyed = list(compress(events, kinds.translate(_KEYED_MASK)))
        named += map(_AT_4, keyed)
        named += map(_AT_3, keyed)
    if E_FACT_ADDED in kinds:
        named += map(_AT_1, compress(events, kinds.translate(_ADDED_MASK)))
    #: the lines of an event past its first (the inputs': one per input fact)
    extra: dict[int, int] = {}
    if E_INPUTS in kinds:
        at = kinds.find(E_INPUTS)
        while at >= 0:
            n = events[at][1]
            extra[at] = n - 1
            named += range(min(n, first_id))
            at = kinds.find(E_INPUTS, at + 1)
    olds = [[f, type_of[f], values[f]]
            for f in sorted(set(compress(named, map(first_id.__gt__, named))))]
    # where a support is lasting, at C speed: a Lasting is last but one only in a
    # fact added or a keyed update, last only in a fact supported; only the events of
    # those kinds are walked, their supports' types once
    lasting: list[int] = []
    places = range(len(events))
    # whether msgpack reads the events back as they are (the trace's spool): tuples
    # (a Lasting support where `lasting` says), ints, floats, bools, None; not a
    # conflict's values (any field's type: a date, a list…), nor a Python agent's
    # support given as a list or an array or holding what is no int, nor a
    # confidence of another type
    exact = E_CONFLICT not in kinds
    if E_FACT_ADDED in kinds or E_KEYED_UPDATE in kinds:
        mask = kinds.translate(_ADDED_OR_KEYED_MASK)
        chosen = list(compress(events, mask))
        given = list(map(_LAST_BUT_ONE, chosen))
        supports = list(map(type, given))
        if Lasting in supports:
            lasting += compress(compress(places, mask), map(is_, supports, repeat(Lasting)))
        exact = (exact and _SUPPORTS.issuperset(supports)
                 and _INTS.issuperset(map(type, chain.from_iterable(given)))
                 and _NUMBERS.issuperset(map(type, map(_LAST, chosen))))
    if E_FACT_SUPPORTED in kinds:
        mask = kinds.translate(_SUPPORTED_MASK)
        given = list(map(_LAST, compress(events, mask)))
        supports = list(map(type, given))
        if Lasting in supports:
            lasting += compress(compress(places, mask), map(is_, supports, repeat(Lasting)))
            lasting.sort()
        exact = (exact and _SUPPORTS.issuperset(supports)
                 and _INTS.issuperset(map(type, chain.from_iterable(given))))
    encoded = raw_text([first_id, type_of[first_id:next_id], values[first_id:next_id],
                        olds, lasting, events])
    if encoded is None:
        return None
    kind, text = encoded
    spool = None
    if exact and type(text) is bytes:
        # the row's last item is the events' array: found by skipping the five before
        # it (at C speed), with the Lasting positions before it in the chunk
        unpacker = msgpack.Unpacker(max_buffer_size=len(text))
        unpacker.feed(text)
        for _ in range(5):
            unpacker.skip()
        spool = b"M" + msgpack.packb(lasting) + text[unpacker.tell():]
    # each cycle's lines: one an event, three a keyed update (the reader expands it)
    counts: list[tuple[int, int]] = []
    at = 0
    keyed_count = kinds.count
    for cycle, end in cycles:
        lines = end - at + 2 * keyed_count(E_KEYED_UPDATE, at, end)
        if extra:
            lines += sum(n for i, n in extra.items() if at <= i < end)
        counts.append((cycle, lines))
        at = end
    return RawRun(kind, text, sum(c[1] for c in counts), counts,
                  lambda: raw_names_text(trace), spool)


def raw_text(row: list[Any]) -> tuple[str, str | bytes] | None:
    """A raw row's list after its names (:func:`raw_run`) encoded: msgpack (format
    :data:`RAWM`, without the array's header), else JSON (:data:`RAW`, without its
    brackets) for what msgpack does not keep exactly, else None (nor JSON)."""
    try:
        packed = msgpack.packb(row, default=_default)
        if _NOT_FINITE.search(packed) is None:
            return RAWM, packed[1:]  # (a fixarray's header, 0x96: raw_row writes 0x97)
    except (TypeError, ValueError, OverflowError, RecursionError):
        pass
    try:
        return RAW, _dumps(row)[1:-1]
    except (TypeError, ValueError, OverflowError, RecursionError):
        return None


def raw_row(run: RawRun, names: str | None) -> str | bytes:
    """The text of the row of format :data:`RAW` or :data:`RAWM` holding ``run``, with
    the job's names (JSON, :func:`raw_names_text`) when given."""
    text = run.text
    if isinstance(text, bytes):
        head: bytes = b"\xc0" if names is None else msgpack.packb(names)
        return b"\x97" + head + text
    return f"[{names or 'null'},{text}]"


def names_text(trace: Trace) -> str:
    """:func:`names_of` as the JSON text a row carries."""
    return _dumps(names_of(trace))


def row_text(cycle: CompactCycle, names: str | None) -> str:
    """The text of the row of ``cycle``, with the job's ``names`` (JSON, from
    :func:`names_text`) when given."""
    if cycle.kind == EVENTS:
        return f"[{names or 'null'},{cycle.text}]"
    return cycle.text


def joined_text(cycles: Sequence[CompactCycle], names: str | None) -> str:
    """The text of one row holding the events of ``cycles`` (all of format
    :data:`EVENTS`, each with lines) in order, with the job's ``names`` when given:
    one list of their events, read back as the lines of each cycle in turn (a row's
    events name every fact their lines need, so a row of several cycles reads as
    they would one by one)."""
    if len(cycles) == 1:
        return row_text(cycles[0], names)
    return f"[{names or 'null'},[{','.join([c.text[1:-1] for c in cycles])}]]"


def text_row(lines: Sequence[str]) -> CompactCycle:
    """Trace lines handed to a store as text (by a sink that re-executes a job, say)
    as a row of format :data:`TEXT`: read back as they were given."""
    return CompactCycle(TEXT, _dumps(list(lines)), len(lines), status_of(lines))


def status_of(lines: Sequence[str]) -> tuple[str, str] | None:
    """The ``(status, detail)`` of the last status event among trace ``lines``, if
    any."""
    for line in reversed(lines):
        if '"event":"status"' in line:
            doc = json.loads(line)
            if doc.get("event") == "status":
                return str(doc["status"]), str(doc["detail"])
    return None


def row_hash(previous: str, text: str | bytes, columns: str = "") -> str:
    """The row chain: ``SHA-256(previous row's hash + columns + the row's text)`` in
    hex (the first row of a job follows :data:`~converge_rules.integrity.GENESIS`),
    ``columns`` the row's other columns (:func:`row_columns`); rows written before
    the chain covered the columns (session 23) hashed the text alone (``columns``
    empty). A row of format :data:`RAWM`'s text is its bytes."""
    import hashlib  # here: a run without a store does not load OpenSSL (~2 ms)

    return hashlib.sha256(bytes.fromhex(previous) + columns.encode("utf-8", "replace")
                          + (text if isinstance(text, bytes)
                             else text.encode("utf-8", "surrogatepass"))).hexdigest()


def row_columns(seq: object, cycle: object, lines: object, kind: object) -> str:
    """What the row chain covers of a row besides its text: its first line's number,
    its cycle, how many lines it gives and its format, as ``"seq cycle lines kind\n"``
    (an edit of any of them breaks the chain; a row's text starts with ``[``, so a
    hash over the columns never equals one over the text alone)."""
    return f"{seq} {cycle} {lines} {kind}\n"


FIRST_ROW = GENESIS.hex()
"""What the first row of a job's chain follows (``SqliteStore`` keeps its own copy)."""


class _Replica:
    """What the line writer reads of a trace, rebuilt from a row: the facts the row's
    lines name and the job's names (no program, no fact store)."""

    __slots__ = ("_names", "_program", "_store", "type_of", "values")

    def __init__(self) -> None:
        self.type_of: dict[int, int] = {}
        self.values: dict[int, Any] = {}
        self._store = self
        self._program: Any = None
        self._names: Any = None

    def _plain_ids(self, ev: Any) -> Sequence[int]:
        ids: Sequence[int] = ev[4]
        return ids

    def _models(self, raw: Any) -> Any:  # pragma: no cover - encoded rows always write
        raise ValueError("a stored event the line writer cannot write")


class Expander:
    """Reads a job's rows back as its canonical trace lines (without hash members), in
    order: the names of the last row that carried them serve the rows after it."""

    def __init__(self) -> None:
        self._replica = _Replica()
        self._writer: _LineWriter | None = None
        #: each type's reason for its updates in place (the names of a raw row)
        self._reasons: list[str | None] = []

    def lines(self, kind: str, text: str | bytes) -> list[str]:
        """The canonical lines of a row of format ``kind`` (``rawm``, ``raw``,
        ``events``, ``lines`` or ``text``); ``text`` bytes for ``rawm`` alone."""
        if type(text) is bytes:
            if kind != RAWM:
                raise ValueError("a trace row of bytes that is not of format rawm")
            doc = _unpack(text)
            if type(doc) is not list or len(doc) != 7:
                raise ValueError("a trace row of format rawm that is no row")
            names, first_id, fact_types, fact_values, olds, lasting, events = doc
            if names is not None:
                if type(names) is not str:
                    raise ValueError("a trace row of format rawm whose names are not text")
                names = json.loads(names)
            kind = RAW
        elif kind in (LINES, TEXT):
            texts: list[str] = json.loads(text)
            # a row of events read as lines (its format column edited): not lines
            if type(texts) is not list or not all(
                    type(t) is str and t.startswith("{") and t.endswith("}")
                    for t in texts):
                raise ValueError("a trace row of lines that are not lines")
            return texts
        elif kind == RAW:
            names, first_id, fact_types, fact_values, olds, lasting, events = json.loads(text)
        elif kind == EVENTS:
            names, events = json.loads(text)
        else:
            raise ValueError(f"unknown trace row format {kind!r}")
        # a row whose chain holds may still be forged or written by a broken converge:
        # an event of no kind a trace has is an unreadable row (the line writer would
        # take it for a bug of its own)
        if type(events) is not list or not all(
                type(ev) is list and ev and type(ev[0]) is int and ev[0] in _KINDS
                for ev in events):
            raise ValueError("a trace row with an event of no known kind")
        replica = self._replica
        if names is not None:
            if kind == RAW:
                *names, self._reasons = names
            agents, types, fields, keys = names
            from converge_rules.engine.trace import _encode_str

            replica._names = ([_encode_str(a) for a in agents],
                              [_encode_str(t) for t in types],
                              [tuple(f) for f in fields])
            # what the conflict lines read of the program: each type's key positions
            replica._program = SimpleNamespace(
                types=[SimpleNamespace(key_positions=tuple(k)) for k in keys])
            self._writer = None
        if self._writer is None:
            if replica._names is None:
                raise ValueError("a trace row without the job's names before it")
            self._writer = _LineWriter(replica)  # type: ignore[arg-type]
        type_of = replica.type_of
        values = replica.values
        type_of.clear()
        values.clear()
        raw = (self._raw(events, type_of, values) if kind == EVENTS else
               self._tuples(events, first_id, fact_types, fact_values, olds, lasting))
        out: list[str] = []
        for texts in self._writer.event_lines(raw):
            out += texts
        return out

    def _tuples(self, events: list[list[Any]], first_id: int, types: list[int],
                vals: list[Any], olds: list[list[Any]], lasting: list[int]
                ) -> Iterator[tuple[Any, ...]]:
        """The raw events of a row of format :data:`RAW` (:func:`raw_run`), the facts
        they name put in the replica, a keyed update as the three events it stands
        for."""
        replica = self._replica
        type_of, values = replica.type_of, replica.values
        ids = range(first_id, first_id + len(types))
        # (strict: a row whose facts do not match their types raises ValueError)
        type_of.update(zip(ids, types, strict=True))
        values.update(zip(ids, vals, strict=True))
        for fid, t, v in olds:
            type_of[fid] = t
            values[fid] = v
        for i in lasting:
            ev = events[i]
            at = 5 if ev[0] == E_KEYED_UPDATE else 4
            ev[at] = Lasting(ev[at])
        reasons = self._reasons
        keys = replica._program.types
        for ev in events:
            if ev[0] != E_KEYED_UPDATE:
                yield tuple(ev)
                continue
            _, cycle, agent, fid, old, support, confidence = ev
            t = type_of[fid]
            new = values[fid]
            positions = keys[t].key_positions
            key = new[positions[0]] if len(positions) == 1 else [new[p] for p in positions]
            yield (E_CONFLICT, cycle, t, key, new, [values[old]], reasons[t])
            yield (E_FACT_ADDED, fid, agent, cycle, support, confidence)
            yield (E_REPLACED, cycle, old, fid)

    def _raw(self, events: Iterable[list[Any]], type_of: dict[int, int],
             values: dict[int, Any]) -> Iterator[tuple[Any, ...]]:
        """The raw events of a row, the facts they name put in the replica."""
        self_fields = self._replica._names[2]
        for ev in events:
            kind = ev[0]
            if kind == E_PLAIN:
                first = ev[4]
                ids: Sequence[int]
                if ev[7] is None:  # columns: one type, ids and support packed
                    t, width = ev[8], ev[10]
                    # (ids as their count: each output a new fact, see compact)
                    ids = (range(first, first + ev[3]) if type(ev[3]) is int
                           else _unpacked(ev[3]))
                    support = _unpacked(ev[9])
                    new = ev[6]
                    if type(new) is str:  # packed ints, as many per fact as fields
                        flat = _unpacked(new)
                        arity = len(self_fields[t])
                        new = [tuple(flat[k:k + arity]) for k in range(0, len(flat), arity)]
                    for i, vals in enumerate(new):
                        type_of[first + i] = t
                        values[first + i] = vals
                    outputs: Any = [(EMIT, t, None, 1.0, tuple(support[k:k + width]))
                                    for k in range(0, len(ids) * width, width)]
                else:
                    ids = _unints(ev[3])
                    for i, (t, vals) in enumerate(zip(ev[5], ev[6], strict=True)):
                        type_of[first + i] = t
                        values[first + i] = vals
                    outputs = ev[7]
                yield (E_PLAIN, ev[1], ev[2], outputs, ids, first)
            elif kind == E_FACT_ADDED:
                _, fid, agent, cycle, support, confidence, lasting, t, vals = ev
                type_of[fid] = t
                values[fid] = vals
                yield (E_FACT_ADDED, fid, agent, cycle,
                       Lasting(support) if lasting else support, confidence)
            elif kind == E_FACT_SUPPORTED:
                _, fid, agent, cycle, support, lasting = ev
                yield (E_FACT_SUPPORTED, fid, agent, cycle,
                       Lasting(support) if lasting else support)
            elif kind in _REMOVALS:
                _, cycle, fid, other, t, vals = ev
                type_of[fid] = t
                values[fid] = vals
                yield (kind, cycle, fid, other)
            elif kind == E_INPUTS:
                for fid, (t, vals) in enumerate(zip(ev[2], ev[3], strict=True)):
                    type_of[fid] = t
                    values[fid] = vals
                yield (E_INPUTS, ev[1])
            elif kind == E_LINE:
                for text in ev[1]:
                    yield (E_LINE, text)
            else:
                yield tuple(ev)


BROKEN = "0" * 64
"""The hash member a line read from a row whose own hash does not follow gets: the
line chain then breaks where the store was tampered with (``converge verify``)."""

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
"""The digits of a row hash (64 of them: what ``bytes.fromhex`` reads)."""


Row = tuple[int, int, int, str, str | bytes, str]
"""A stored trace row as :func:`read_rows` reads it: ``(seq, cycle, lines, format,
text (the bytes of a row of format ``rawm``), row hash)``, the columns of
``trace_rows`` (docs/store.md)."""


def read_rows(rows: Iterable[Row], head: bytes = GENESIS, seq: int = 0
              ) -> Iterator[str]:
    """The trace lines (with their hash members) of a job's rows (:data:`Row`) in
    order, the line chain going on from ``head`` (the hash of the line before the first
    row's, raw), the first row's first line numbered ``seq``. The row chain
    (:func:`row_hash`) is checked as the rows are read: the first line of a row whose
    hash does not follow — a row edited (any column: its text, ``seq``, ``cycle``,
    ``lines``, format), deleted, moved or inserted — carries :data:`BROKEN` as its
    hash, and so does the one line a row that cannot be read at all gives. A job's
    rows written before the chain covered the columns (their hash over the text alone)
    are accepted until its first row that covers them; for those, a ``seq`` or
    ``lines`` that does not count the lines read is caught all the same."""
    expander = Expander()
    previous = FIRST_ROW
    covered = False  # a row of the job hashed its columns: every later one must
    from hashlib import sha256

    for first, cycle, count, kind, text, digest in rows:
        intact = row_hash(previous, text, row_columns(first, cycle, count, kind)) == digest
        if intact:
            covered = True
        elif not covered:  # written before the columns were hashed (session 23)
            intact = row_hash(previous, text) == digest
        # (a hash edited to what is no hex at all: the next row follows from none)
        previous = digest if intact or (len(digest) == 64
                                        and _HEX_DIGITS.issuperset(digest)) else BROKEN
        try:
            texts = expander.lines(kind, text)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            yield '{"event":"unreadable_trace_row"' + HASH_MEMBER + BROKEN + '"}'
            if type(first) is int and type(count) is int:
                seq = first + count
            continue
        if first != seq or count != len(texts):
            intact = False
            if type(first) is int:  # one row's number edited: the rows after it read on
                seq = first
        seq += len(texts)
        if kind == TEXT:  # verbatim; the chain goes on from the last one's hash
            for line in texts:
                if not intact:
                    line, intact = split_hash(line)[0][:-1] + HASH_MEMBER + BROKEN + '"}', True
                yield line
            if texts:
                digest_hex = split_hash(texts[-1])[1]
                if digest_hex is not None:
                    head = bytes.fromhex(digest_hex)
            continue
        for text_line in texts:
            head = sha256(head + text_line.encode("utf-8", "surrogatepass")).digest()
            shown = head.hex() if intact else BROKEN
            intact = True
            yield f'{text_line[:-1]}{HASH_MEMBER}{shown}"}}'
