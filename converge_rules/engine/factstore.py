"""The fact store: a job-scoped arena of value tuples, the live context and its indexes.

:class:`FactStore` implements the compiler's :class:`~converge_rules.program.View`
directly, so generated agent code reads plain lists and dicts. Everything here is
tuned for the per-fact path: no objects per fact beyond the value tuple, its id and
the dict slots that index it.

Invariants the rest of the engine relies on:

* ids are handed out in merge order, ascending, never reused; ``values`` keeps dead
  facts so the trace and provenance can still name them;
* ``live[t]`` holds the live ids of type ``t`` in ascending order (ids are only ever
  inserted in increasing order, and deleting from a dict keeps the order);
* the "same fact" and "key" lookups of a type are built lazily, the first time a
  derived fact of that type is merged: types that are only ever given as input (the
  bulk of a large job) pay nothing for them;
* the fingerprint is two order-independent sums (modulo 2**64) over the live
  context (and the intents that were closed), maintained on every change; a fact's
  terms are :func:`fact_terms` (inlined in ``add`` and ``update_in_place``).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from itertools import chain, count, islice, repeat
from operator import add, itemgetter, mul, sub
from typing import Any, cast

from converge_rules.datetypes import datetime
from converge_rules.program import EVALUATE, Columns, Lasting, Output, Program, View
from converge_rules.records import record

MASK = (1 << 64) - 1


def fact_terms(type_id: int, vals: tuple[Any, ...], closed: bool = False) -> tuple[int, int]:
    """What one fact contributes to the store's fingerprint: its hash ``h`` and
    ``h * h``, which the store adds when the fact enters the context and subtracts
    when it leaves (the sums are read modulo 2**64), so the fingerprint does not
    depend on the order of either. ``closed`` gives a closed intent's terms, which
    differ from the open intent's so that opening and closing one never looks like a
    return to an earlier state.

    One hash of the fact, not two: both of the two tuple hashes this replaced were
    functions of ``hash(vals)`` and the type, so a second hash told no more facts
    apart, and its square keeps the second sum independent of the first (a sum of
    squares is not a multiple of the sum) at a multiplication's cost. The
    fingerprint is never written (a checkpoint's are recomputed in the process that
    reads it), so its definition is this process's alone."""
    h = hash((type_id, vals, "closed")) if closed else hash((type_id, vals))
    return h, h * h


def fingerprint_terms(type_ids: Iterable[int], rows: Iterable[tuple[Any, ...]]) -> tuple[int, int]:
    """The :func:`fact_terms` of many facts (``type_ids`` and ``rows`` side by side),
    summed modulo 2**64."""
    # fact_terms of each, summed at C speed: the same tuples hashed
    rows = rows if isinstance(rows, list) else list(rows)
    types = type_ids if isinstance(type_ids, repeat | array | list) else list(type_ids)
    hashes = list(map(hash, zip(types, rows, strict=False)))
    return sum(hashes) & MASK, sum(map(mul, hashes, hashes)) & MASK

#: an index bucket: the ids holding one key, ascending
Bucket = tuple[int] | list[int] | dict[int, None]

#: an index the store maintains for a type: (the index, values → key)
IndexUse = tuple[dict[Any, Bucket], Callable[[tuple[Any, ...]], Any]]

#: :meth:`FactStore.updater`'s function: (old id, new values, cycle, key) → new id
Updater = Callable[[int, tuple[Any, ...], int, Any], int]

#: derivation record: (agent index, cycle, support ids)
Derivation = tuple[int, int, tuple[int, ...]]

#: a fact's entry in :attr:`FactStore.derivations`: its only derivation as the record
#: itself (most facts have one; a one-item list per fact was ~15% of what the young
#: collections of Waltz 50 walk), else a list of the records in the order recorded
Derivations = Derivation | list[Derivation]


def records(entry: Derivations | None) -> Sequence[Derivation]:
    """The derivation records of an entry of :attr:`FactStore.derivations` (none for
    ``None``), in the order they were recorded. Read the entries through this only: a
    record is a tuple too."""
    if entry is None:
        return ()
    if isinstance(entry, list):
        return entry
    return (entry,)


def derivation_entry(derivs: list[Derivation]) -> Derivations:
    """The entry of :attr:`FactStore.derivations` that holds ``derivs``."""
    return derivs[0] if len(derivs) == 1 else derivs


#: a fact's entry in :attr:`FactStore.dependents`: the one fact resting on it as its id
#: (no one-item list per supporting fact), else a list of ids in the order recorded
Dependents = int | list[int]


def dependent_ids(entry: Dependents | None) -> Sequence[int]:
    """The ids in an entry of :attr:`FactStore.dependents` (none for ``None``), in the
    order they were recorded."""
    if entry is None:
        return ()
    if isinstance(entry, list):
        return entry
    return (entry,)


def _getter(positions: Sequence[int]) -> Callable[[tuple[Any, ...]], Any]:
    """``values → key``: the bare value for one position, a tuple for several."""
    return itemgetter(*positions)


class IdRange(MutableMapping[int, None]):
    """The live ids of a *static* type (see :attr:`Layout.static`): its input facts,
    one contiguous run of ids that never changes. Two ints instead of a dict entry
    and an int object per fact (about 67 of the 254 bytes an input fact cost).
    Iterates and reverses at C speed; changing it is a bug and raises."""

    __slots__ = ("start", "stop")

    def __init__(self, start: int, stop: int) -> None:
        self.start = start
        self.stop = stop

    def __getitem__(self, fid: int) -> None:
        if self.start <= fid < self.stop:
            return None
        raise KeyError(fid)

    def __contains__(self, fid: object) -> bool:
        return isinstance(fid, int) and self.start <= fid < self.stop

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __reversed__(self) -> Iterator[int]:
        return reversed(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start

    def __setitem__(self, fid: int, value: None) -> None:
        raise TypeError("the live facts of a static type never change")

    def __delitem__(self, fid: int) -> None:
        raise TypeError("the live facts of a static type never change")

    def __reduce__(self) -> tuple[Any, ...]:
        return (IdRange, (self.start, self.stop))


class IdList(MutableMapping[int, None]):
    """The live ids of a type whose facts never leave the context once merged (see
    :meth:`FactStore.grows_only`), ascending, as runs of consecutive ids: a batch of
    new facts of one type is one run (two ints), however many facts it holds, where a
    dict costs an entry and an int object per fact. The ids from a watermark on
    (:meth:`FactStore.new`) are found by bisection: a ``range`` when they are one run.
    Adding an id below the newest or removing one is a bug and raises."""

    __slots__ = ("count", "starts", "stops")

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self.starts = array("q")   # the first id of each run, ascending
        self.stops = array("q")    # one past the last id of each run
        self.count = 0
        for fid in ids:
            self[fid] = None

    def __getitem__(self, fid: int) -> None:
        if fid in self:
            return None
        raise KeyError(fid)

    def __contains__(self, fid: object) -> bool:
        if not isinstance(fid, int):
            return False
        i = bisect_right(self.starts, fid) - 1
        return i >= 0 and fid < self.stops[i]

    def __iter__(self) -> Iterator[int]:
        return chain.from_iterable(map(range, self.starts, self.stops))

    def __reversed__(self) -> Iterator[int]:
        return chain.from_iterable(
            map(reversed, map(range, reversed(self.starts), reversed(self.stops))))

    def __len__(self) -> int:
        return self.count

    def __setitem__(self, fid: int, value: None) -> None:
        stops = self.stops
        if stops and fid < stops[-1]:
            if fid in self:
                return
            raise ValueError(f"id {fid} is older than the newest live id {stops[-1] - 1}")
        self.extend(fid, fid + 1)

    def __delitem__(self, fid: int) -> None:
        raise TypeError("the facts of a type that only grows never leave the context")

    def extend(self, start: int, stop: int) -> None:
        """Add the ids ``start`` to ``stop`` (all newer than the newest)."""
        if stop <= start:
            return
        stops = self.stops
        if stops and start <= stops[-1]:
            if start < stops[-1]:
                raise ValueError(f"id {start} is older than the newest live id "
                                 f"{stops[-1] - 1}")
            stops[-1] = stop  # continues the last run
        else:
            self.starts.append(start)
            stops.append(stop)
        self.count += stop - start

    def since(self, since: int) -> Sequence[int]:
        """The ids ``>= since``, ascending."""
        starts, stops = self.starts, self.stops
        i = bisect_right(stops, since)  # the first run with an id >= since
        if i == len(stops):
            return range(0)
        first = range(max(starts[i], since), stops[i])
        if i == len(stops) - 1:
            return first
        return [*first, *chain.from_iterable(map(range, starts[i + 1:], stops[i + 1:]))]

    def __reduce__(self) -> tuple[Any, ...]:
        return (IdList, (list(self),))


def index_insert(index: dict[Any, Bucket], key: Any, fid: int, lists: bool) -> None:
    """Add ``fid`` under ``key``: a bucket starts as a 1-tuple and grows into a list
    (``lists``: facts never leave the context) or a dict (facts may be removed).
    :meth:`FactStore.add_outputs` inlines this for speed; everything else calls it."""
    bucket = index.get(key)
    if bucket is None:
        index[key] = (fid,)
    elif isinstance(bucket, list):
        bucket.append(fid)
    elif isinstance(bucket, tuple):
        index[key] = [bucket[0], fid] if lists else {bucket[0]: None, fid: None}
    else:
        bucket[fid] = None


#: the live ids of one type: a dict used as an ordered set, a static type's range, or
#: the ids of a type that only grows
LiveIds = dict[int, None] | IdRange | IdList


@record
class Layout:
    """What a store needs of a program: type count, index positions, key positions,
    intent types. Plain and picklable (a program holds compiled functions)."""

    types: int
    indexes: tuple[tuple[int, tuple[int, ...]], ...]   # index id → (type id, positions)
    keys: tuple[tuple[int, ...], ...]                  # type id → key positions
    intents: frozenset[int]
    lazy: frozenset[int] = frozenset()                 # indexes driven by inputs only
    #: types whose live facts never change after loading: no agent emits them, no
    #: prune rule drops them, not intents (which close)
    static: frozenset[int] = frozenset()
    #: (index id, tier): indexes built at the first cycle of that tier (IndexSpec.tier)
    deferred: tuple[tuple[int, int], ...] = ()

    @staticmethod
    def of(program: Program) -> Layout:
        emitted = {t for agent in program.agents for t in agent.emits}
        pruned = {p.type_id for p in program.prunes}
        ordered = sorted(program.indexes, key=lambda ix: ix.id)
        return Layout(
            len(program.types),
            tuple((ix.type_id, ix.positions) for ix in ordered),
            tuple(t.key_positions for t in program.types),
            frozenset(t.id for t in program.types if t.intent),
            frozenset(
                ix.id for ix in ordered
                if ix.driven_by and not emitted.intersection(ix.driven_by)
            ),
            frozenset(
                t.id for t in program.types
                if t.id not in emitted and not t.intent and t.id not in pruned
            ),
            tuple((ix.id, ix.tier) for ix in ordered
                  if ix.tier and not (ix.driven_by and not emitted.intersection(ix.driven_by))),
        )


class FactStore:
    """The live context of one job. Implements ``View`` for agents (read-only in
    phase 1); only the merge mutates it."""

    __slots__ = (
        "_closed",
        "_index_get",
        "_index_plan",
        "_key_index",
        "_keyed",
        "_new",
        "_same",
        "_update_plan",
        "_update_split",
        "confidence",
        "cycle_numbers",
        "cycle_starts",
        "dependents",
        "derivations",
        "evaluations",
        "fired",
        "fp1",
        "fp2",
        "index_active",
        "indexes",
        "intent_types",
        "keyget",
        "later_inputs",
        "layout",
        "left",
        "list_buckets",
        "live",
        "live_count",
        "n_inputs",
        "now",
        "packed",
        "removal_log",
        "removals",
        "retractable",
        "touched",
        "type_of",
        "values",
    )

    def __init__(self, program: Program | Layout, *, retractable: bool = True) -> None:
        layout = program if isinstance(program, Layout) else Layout.of(program)
        self.layout = layout
        n = layout.types
        self.values: list[tuple[Any, ...]] = []
        self.type_of = array("i")
        # Ids grow with merge order and cycles only move forward, so a fact's cycle is
        # found by bisecting the first id of each cycle: no per-fact storage.
        self.cycle_starts = array("q", [0])   # arrays: 16 bytes a cycle, not 72
        self.cycle_numbers = array("q", [0])
        self.live: list[LiveIds] = [
            IdList() if self.grows_only(layout, t, retractable) else {} for t in range(n)
        ]
        #: per type, the last answer of :meth:`new` for a live dict and what it was
        #: for: (the dict, since, next id, removals of the type) → the ids
        self._new: list[tuple[Any, int, int, int, tuple[int, ...]] | None] = [None] * n
        # key → (id,) while one fact holds the key, then a list or an ordered-set dict
        self.indexes: list[dict[Any, Bucket]] = [{} for _ in layout.indexes]
        self._index_get = [_getter(positions) for _, positions in layout.indexes]
        # lazy indexes (see IndexSpec.driven_by) start unbuilt and unmaintained, and so
        # do those of a later tier (IndexSpec.tier)
        later = {index_id for index_id, _ in layout.deferred}
        self.index_active = [i not in layout.lazy and i not in later
                             for i in range(len(layout.indexes))]
        self._index_plan: list[tuple[IndexUse, ...]]
        self._update_split: list[tuple[tuple[IndexUse, ...], tuple[IndexUse, ...]]]
        self._rebuild_plan()
        self.keyget: list[Callable[[tuple[Any, ...]], Any] | None] = [
            _getter(k) if k else None for k in layout.keys
        ]
        self.intent_types = layout.intents
        self._same: list[dict[tuple[Any, ...], int] | None] = [None] * n
        self._keyed: list[dict[Any, int] | None] = [None] * n
        self._closed: list[dict[tuple[Any, ...], int]] = [{} for _ in range(n)]
        self.derivations: dict[int, Derivations] = {}
        self.dependents: dict[int, Dependents] = {}
        self.confidence: dict[int, float] = {}
        self.evaluations: dict[int, list[tuple[int, float, str | None]]] = {}
        self.removals = [0] * n
        #: per type, the ids that left the context in order (``removals[t]`` of them),
        #: for the types :meth:`log_removals` asked for; None for the others
        self.removal_log: list[array[int] | None] = [None] * n
        #: agent name → the matches (their facts' ids) a ``one at a time`` agent has
        #: fired: it fires each at most once (OPS5's refraction), so a firing whose
        #: facts all lost their conflicts does not come first again (View.fired)
        self.fired: dict[str, set[tuple[int, ...]]] = {}
        self.live_count = 0
        self.fp1 = 0
        self.fp2 = 0
        self.n_inputs = 0
        #: the ids of input facts merged after cycle 0 (a session's later ``add``);
        #: those of cycle 0 are the ids below :attr:`n_inputs`
        self.later_inputs: set[int] = set()
        self.now: datetime | None = None  # the job's time (View.now); set before a run
        # Only when a fact can leave the context (replaced or pruned) do derivations,
        # their reverse edges and the fingerprint matter; otherwise the context only
        # grows, provenance lives in the trace alone, and a growing context cannot
        # return to an earlier state.
        self.retractable = retractable
        # A bucket that grows past one id becomes a list (append-only, cheap) when
        # facts never leave the context, a dict (O(1) removal) when they may.
        self.list_buckets = not retractable
        #: while a job writes checkpoints (:mod:`~converge_rules.engine.checkpoints`;
        #: None when none is written), with :attr:`left`: the ids older than the last
        #: checkpoint whose state (live, derivations, dependents) changed since are in
        #: one of the two — a fact that left in :attr:`left` (here too or not), one that got
        #: another derivation, one a new derivation rests on (its dependents grew) and
        #: one resting on a fact that left (a cascade trims its derivations) here. A
        #: fact added since the checkpoint may be here or not (its whole state is in
        #: the delta anyway): the first derivation of a new fact notes only its support
        self.touched: set[int] | None = None
        #: the new facts' values of int-only types that the trace rows packed already,
        #: while a job writes checkpoints (None when none is): ``(first id, count,
        #: fields, struct code, little-endian bytes)`` of the facts ``[first, first +
        #: count)``, fact by fact, for the checkpoint of the same transaction
        self.packed: list[tuple[int, int, int, str, bytes]] | None = None
        #: the ids that left the context (removed, replaced, pruned, retracted,
        #: closed), in order, while :attr:`touched` is kept (set and unset with it; a
        #: checkpoint's delta reads it as the facts that left, and its step for
        #: each cycle that waits for a later one's reads its part: see
        #: :meth:`~converge_rules.engine.checkpoints.Checkpointer.waits`); else None
        self.left: list[int] | None = None

    @staticmethod
    def grows_only(layout: Layout, type_id: int, retractable: bool) -> bool:
        """Whether the facts of a type, once merged, never leave a store with this
        layout: not static (those are :class:`IdRange`), unkeyed (never replaced),
        not an intent (never closed), in a store that cannot retract or prune (a
        store that may is :attr:`retractable`). Its live ids are an :class:`IdList`."""
        return (not retractable and type_id not in layout.static
                and not layout.keys[type_id] and type_id not in layout.intents)

    # ------------------------------------------------------------------ View

    def as_view(self) -> View:
        """This store, typed as the read-only ``View`` agents receive."""
        return cast(View, self)

    def new(self, type_id: int, since: int) -> Iterable[int]:
        """Live ids of ``type_id`` that are ``>= since``, ascending. Costs the number of
        ids returned, not the size of the type: the live dict is walked backwards."""
        live = self.live[type_id]
        if since <= 0:
            return live
        if type(live) is IdList:
            return live.since(since)
        # the agents of a cycle mostly share a watermark: each of Waltz's labelling
        # agents asked for the same new edges, walked again for each (a dict cannot be
        # bisected); an answer stands while the dict, the ids and the removals do
        cached = self._new[type_id]
        next_id = len(self.values)
        removals = self.removals[type_id]
        if (cached is not None and cached[0] is live and cached[1] == since
                and cached[2] == next_id and cached[3] == removals):
            return cached[4]
        out: list[int] = []
        for fid in reversed(live):
            if fid < since:
                break
            out.append(fid)
        out.reverse()
        ids = tuple(out)
        self._new[type_id] = (live, since, next_id, removals, ids)
        return ids

    def cycle_of(self, fact_id: int) -> int:
        """The cycle in which a fact was merged (0 for input facts)."""
        return self.cycle_numbers[bisect_right(self.cycle_starts, fact_id) - 1]

    def begin_cycle(self, cycle: int) -> None:
        """Facts added from now on belong to ``cycle`` (called before each merge)."""
        start = len(self.values)
        if self.cycle_starts[-1] == start:
            self.cycle_numbers[-1] = cycle
        else:
            self.cycle_starts.append(start)
            self.cycle_numbers.append(cycle)

    # ---------------------------------------------------------------- queries

    @property
    def next_id(self) -> int:
        """The id the next merged fact will get (the watermark of a snapshot)."""
        return len(self.values)

    def is_input(self, fid: int) -> bool:
        """Whether fact ``fid`` was given as input (never retracted by a cascade)."""
        return fid < self.n_inputs or fid in self.later_inputs

    def is_live(self, fid: int) -> bool:
        return fid in self.live[self.type_of[fid]]

    def max_live_id(self, type_id: int) -> int:
        """The newest live id of a type, or -1."""
        live = self.live[type_id]
        if type(live) is IdList:
            return live.stops[-1] - 1 if live else -1
        return next(reversed(live), -1) if live else -1

    def same_fact(self, type_id: int, vals: tuple[Any, ...]) -> int | None:
        """The live fact (or closed intent) equal to ``vals``, if any."""
        keyget = self.keyget[type_id]
        if keyget is None:
            same = self._same[type_id]
            if same is None:
                same = self._build_same(type_id)
            fid = same.get(vals)
        else:
            keyed = self._keyed[type_id]
            if keyed is None:
                keyed = self._build_keyed(type_id)
            fid = keyed.get(keyget(vals))
            if fid is not None and self.values[fid] != vals:
                fid = None
        if fid is None and type_id in self.intent_types:
            return self._closed[type_id].get(vals)
        return fid

    def incumbent(self, type_id: int, key: Any) -> int | None:
        """The live fact of a keyed type holding ``key``, if any."""
        keyed = self._keyed[type_id]
        if keyed is None:
            keyed = self._build_keyed(type_id)
        return keyed.get(key)

    def key_table(self, type_id: int) -> dict[Any, int]:
        """Key → the live fact holding it, for a keyed type (what :meth:`incumbent`
        reads), built on first use. For reading during one merge or one cycle's agent
        runs (``View.key_table``: generated agents look a fact up by its whole key
        here): only the store writes it, and loading input facts replaces it."""
        keyed = self._keyed[type_id]
        return self._build_keyed(type_id) if keyed is None else keyed

    def is_closed(self, fid: int) -> bool:
        t = self.type_of[fid]
        return t in self.intent_types and self._closed[t].get(self.values[fid]) == fid

    def _build_same(self, type_id: int) -> dict[tuple[Any, ...], int]:
        values = self.values
        same = {values[f]: f for f in self.live[type_id]}
        self._same[type_id] = same
        return same

    def _build_keyed(self, type_id: int) -> dict[Any, int]:
        keyget = self.keyget[type_id]
        assert keyget is not None
        values = self.values
        keyed = {keyget(values[f]): f for f in self.live[type_id]}
        self._keyed[type_id] = keyed
        return keyed

    # -------------------------------------------------------------- mutation

    def add(self, type_id: int, vals: tuple[Any, ...], cycle: int, key: Any = None) -> int:
        """Append a fact to the arena and make it live; returns its id. The caller
        has checked that no equal fact is live and, for a keyed type, that the key
        (``key``, when the caller has it) is free."""
        if cycle != self.cycle_numbers[-1]:
            self.begin_cycle(cycle)
        fid = len(self.values)
        self.values.append(vals)
        self.type_of.append(type_id)
        self.live[type_id][fid] = None
        lists = self.list_buckets
        keyget = self.keyget[type_id]
        plan = self._index_plan[type_id]
        if keyget is not None:
            # one key object for the key table and the index on exactly the key (a
            # second equal tuple per keyed fact was one more object to allocate and
            # for the young collections to walk: 7,744 Edges of Waltz 50)
            if key is None:
                key = keyget(vals)
            index = self._key_index[type_id]
            if index is not None:
                plan = self._update_plan[type_id]
                bucket = index.get(key)
                if bucket is None:
                    index[key] = (fid,)
                else:
                    index_insert(index, key, fid, lists)
            keyed = self._keyed[type_id]
            if keyed is not None:
                keyed[key] = fid
        for index, get in plan:
            key = get(vals)
            bucket = index.get(key)
            if bucket is None:  # (index_insert's two usual cases, inlined)
                index[key] = (fid,)
            elif type(bucket) is dict:
                bucket[fid] = None
            else:
                index_insert(index, key, fid, lists)
        if keyget is None:
            same = self._same[type_id]
            if same is not None:
                same[vals] = fid
        self.live_count += 1
        if self.retractable:  # fact_terms, inlined (the sums are masked when read)
            h = hash((type_id, vals))
            self.fp1 += h
            self.fp2 += h * h
        return fid

    def update_in_place(self, old: int, vals: tuple[Any, ...], cycle: int,
                        key: Any = None) -> int:
        """A keyed fact's new value for its key: ``add(type, vals, cycle)`` of the new
        fact, then ``remove(old)``, fused — the same store afterwards, facts, ids, keys,
        removals and fingerprint alike (an index bucket that held only ``old`` holds
        only the new id, as a 1-tuple, where the two steps leave a one-id dict: the
        same ids either way). ``old`` is the live fact holding the key of ``vals``
        (``key``, when the caller has it); returns the new fact's id."""
        fact_key = key
        type_id = self.type_of[old]
        if cycle != self.cycle_numbers[-1]:
            self.begin_cycle(cycle)
        values = self.values
        old_vals = values[old]
        fid = len(values)
        values.append(vals)
        self.type_of.append(type_id)
        live = self.live[type_id]
        live[fid] = None
        del live[old]
        lists = self.list_buckets
        if fact_key is None:
            keyget = self.keyget[type_id]
            assert keyget is not None, "update_in_place is for keyed types"
            fact_key = keyget(vals)
        index = self._key_index[type_id]
        if index is not None:
            bucket = index[fact_key]
            if type(bucket) is tuple:  # (old,): the key's only fact, as it should be
                index[fact_key] = (fid,)
            else:  # a one-id dict (or list) a general add-then-remove left
                index_insert(index, fact_key, fid, lists)
                if isinstance(bucket, list):
                    bucket.remove(old)
                elif isinstance(bucket, dict):
                    del bucket[old]
        for index, get in self._update_plan[type_id]:
            key = get(vals)
            was = get(old_vals)
            if key == was:
                bucket = index[key]
                if type(bucket) is dict:  # (the usual bucket of several: inlined)
                    bucket[fid] = None
                    del bucket[old]
                    continue  # (never empty: it holds fid)
                if type(bucket) is tuple:  # (old,): the key's only fact
                    index[key] = (fid,)
                    continue
                index_insert(index, key, fid, lists)
            else:
                into = index.get(key)
                if into is None:  # (index_insert's two usual cases, inlined)
                    index[key] = (fid,)
                elif type(into) is dict:
                    into[fid] = None
                else:
                    index_insert(index, key, fid, lists)
                key = was
                bucket = index[key]
                if type(bucket) is dict:
                    del bucket[old]
                    if not bucket:
                        del index[key]
                    continue
                if type(bucket) is tuple:
                    del index[key]
                    continue
            # as _unlink takes ``old`` out of a bucket of several (dicts and 1-tuples
            # are done above)
            if isinstance(bucket, list):
                bucket.remove(old)
                if not bucket:
                    del index[key]
        keyed = self._keyed[type_id]
        if keyed is not None:
            keyed[fact_key] = fid  # the same key: old's entry is overwritten
        self.removals[type_id] += 1
        left = self.left
        if left is not None:
            # as remove(old): a checkpoint's delta says that ``old`` left the context
            # (``left``) and what the cascade trims (``touched``: see note_dependents)
            left.append(old)
            deps = self.dependents.get(old)
            if deps is not None:
                self.note_dependents(deps)
        log = self.removal_log[type_id]
        if log is not None:
            log.append(old)
        if self.retractable:  # fact_terms of both, inlined (once per keyed update)
            h = hash((type_id, vals))
            g = hash((type_id, old_vals))
            d = h - g
            self.fp1 += d
            self.fp2 += d * (h + g)  # h * h - g * g, one multiplication
        return fid

    def updater(self, type_id: int) -> Updater:
        """:meth:`update_in_place` for the facts of the keyed type ``type_id``, as a
        function ``(old, vals, cycle, key) -> new id`` that does the same to the
        store, with what it reads of the store looked up once, and the indexes on
        part of the key (whose bucket an update keeps: Waltz's Edge by ``p1``) told
        from those whose bucket may change. For one merge: the store's index plan,
        its live ids, its key table, its ``touched`` and ``left`` and removal log must
        not change between its calls (they change between cycles only)."""
        keyget = self.keyget[type_id]
        assert keyget is not None, "update_in_place is for keyed types"
        if self.removal_log[type_id] is not None or self._keyed[type_id] is None:
            # (a program whose agents are handed removals, a key table not built yet:
            # the general update, as it is)
            return self.update_in_place
        same_plan, moving_plan = self._update_split[type_id]
        values = self.values
        append_value = values.append
        append_type = self.type_of.append
        cycle_numbers = self.cycle_numbers
        live = self.live[type_id]
        key_index = self._key_index[type_id]
        keyed = self._keyed[type_id]
        assert keyed is not None
        removals = self.removals
        lists = self.list_buckets
        retractable = self.retractable
        begin_cycle = self.begin_cycle
        left = self.left  # (a job writing checkpoints: as update_in_place notes it)
        dependents = self.dependents

        def update(old: int, vals: tuple[Any, ...], cycle: int, fact_key: Any) -> int:
            if cycle != cycle_numbers[-1]:
                begin_cycle(cycle)
            old_vals = values[old]
            fid = len(values)
            append_value(vals)
            append_type(type_id)
            live[fid] = None
            del live[old]
            if key_index is not None:
                bucket = key_index[fact_key]
                if type(bucket) is tuple:  # (old,): the key's only fact, as it should be
                    key_index[fact_key] = (fid,)
                else:  # a one-id dict (or list) a general add-then-remove left
                    index_insert(key_index, fact_key, fid, lists)
                    if isinstance(bucket, list):
                        bucket.remove(old)
                    elif isinstance(bucket, dict):
                        del bucket[old]
            for index, get in same_plan:  # old's bucket is the new value's
                key = get(vals)
                bucket = index[key]
                if type(bucket) is dict:
                    bucket[fid] = None
                    del bucket[old]
                elif type(bucket) is tuple:
                    index[key] = (fid,)
                else:  # a list: as update_in_place treats one
                    index_insert(index, key, fid, lists)
                    cast(list[int], bucket).remove(old)  # (never empty: it holds fid)
            for index, get in moving_plan:  # as update_in_place's loop
                key = get(vals)
                was = get(old_vals)
                if key == was:
                    bucket = index[key]
                    if type(bucket) is dict:
                        bucket[fid] = None
                        del bucket[old]
                        continue
                    if type(bucket) is tuple:
                        index[key] = (fid,)
                        continue
                    index_insert(index, key, fid, lists)
                else:
                    into = index.get(key)
                    if into is None:
                        index[key] = (fid,)
                    elif type(into) is dict:
                        into[fid] = None
                    else:
                        index_insert(index, key, fid, lists)
                    key = was
                    bucket = index[key]
                    if type(bucket) is dict:
                        del bucket[old]
                        if not bucket:
                            del index[key]
                        continue
                    if type(bucket) is tuple:
                        del index[key]
                        continue
                if isinstance(bucket, list):
                    bucket.remove(old)
                    if not bucket:
                        del index[key]
            keyed[fact_key] = fid
            removals[type_id] += 1
            if left is not None:
                left.append(old)
                deps = dependents.get(old)
                if deps is not None:
                    self.note_dependents(deps)
            if retractable:
                h = hash((type_id, vals))
                g = hash((type_id, old_vals))
                d = h - g
                self.fp1 += d
                self.fp2 += d * (h + g)  # h * h - g * g, one multiplication
            return fid
        return update

    def add_inputs(self, type_id: int, rows: Iterable[tuple[Any, ...]]) -> int:
        """Bulk-add deduplicated input facts of one type (cycle 0, no provenance).
        Returns how many were added."""
        values = self.values
        live = self.live[type_id]
        plan = self._index_plan[type_id]
        lists = self.list_buckets
        start = fid = len(values)
        ranged = type_id in self.layout.static and not live
        # live ids set in the loop only for a dict; an IdRange or IdList takes them after
        per_fact = not ranged and type(live) is not IdList
        if not per_fact and not plan:
            values.extend(rows)  # nothing to do per fact: at C speed
            fid = len(values)
        else:
            for vals in rows:
                values.append(vals)
                if per_fact:
                    live[fid] = None
                for index, get in plan:
                    index_insert(index, get(vals), fid, lists)
                fid += 1
        added = fid - start
        if ranged:
            self.live[type_id] = IdRange(start, fid)
        elif type(live) is IdList:
            live.extend(start, fid)
        self.type_of.extend(array("i", [type_id]) * added)
        if self.retractable:
            h1, h2 = fingerprint_terms(repeat(type_id), values[start:fid])
            self.fp1 = (self.fp1 + h1) & MASK
            self.fp2 = (self.fp2 + h2) & MASK
        self.live_count += added
        self.n_inputs = fid
        self._same[type_id] = None
        self._keyed[type_id] = None
        return added

    def add_outputs(
        self, outputs: Sequence[Output], agent: int, cycle: int, limit: int,
        fids: array[int], evaluate: Callable[[Output], bool],
    ) -> int | None:
        """The fast bulk path for one effect's outputs of unkeyed, non-intent types,
        merged in order: an output equal to a live fact is one more derivation of it,
        any other becomes a new fact (ids from :attr:`next_id` on, below ``limit``);
        an evaluation goes to ``evaluate``. For each output appends to ``fids`` the id
        it merged into, or -1 / -2 for an evaluation ``evaluate`` attached / refused.
        Stops before the first output that would need an id at or above ``limit`` and
        returns its type id; None when every output was merged."""
        values = self.values
        append_value = values.append
        append_type = self.type_of.append
        live = self.live
        plans = self._index_plan
        sames = self._same
        confidence = self.confidence
        retractable = self.retractable
        lists = self.list_buckets
        derive = self.derive
        # a new fact's first derivation is recorded here, not by derive(): a
        # checkpoint's delta holds a new fact's whole state, and needs noted only the
        # facts its support is (their dependents grow)
        touched = self.touched
        derivations = self.derivations
        dependents = self.dependents
        mark = fids.append
        start = fid_next = len(values)
        # per-type lookups, redone only when the type changes (agents mostly emit one)
        last = -1
        same: dict[tuple[Any, ...], int] = {}
        live_t: LiveIds = {}
        # new ids of IdList types, added to their runs after the loop (or before an
        # evaluation looks at what is live): a call per fact would cost more than a dict
        grown: list[int] = []
        grow: Callable[[int], None] | None = None  # grown.append, or None for a dict
        plan: tuple[IndexUse, ...] = ()
        t: int
        try:
            for out in outputs:
                kind, t, vals, conf, support = out  # one unpack, not four subscripts
                if kind == EVALUATE:
                    if grown:
                        self._grow(grown)
                    mark(-1 if evaluate(out) else -2)
                    continue
                if t != last:
                    last = t
                    same = sames[t] or self._build_same(t)
                    live_t = live[t]
                    grow = grown.append if type(live_t) is IdList else None
                    plan = plans[t]
                if fid_next < limit:
                    fid = same.setdefault(vals, fid_next)  # one hash for lookup and insert
                elif vals in same:
                    fid = same[vals]
                else:
                    return t
                mark(fid)
                if fid == fid_next:
                    fid_next += 1
                    append_value(vals)
                    append_type(t)
                    if grow is None:
                        live_t[fid] = None
                    else:
                        grow(fid)
                    # index_insert, inlined: this is the per-fact hot path of a
                    # monotone ruleset, and the call cost a measurable share of it
                    for index, get in plan:
                        key = get(vals)
                        bucket: Any = index.get(key)
                        if bucket is None:
                            index[key] = (fid,)
                        elif lists:
                            try:
                                bucket.append(fid)
                            except AttributeError:  # a 1-tuple grows into a list
                                index[key] = [bucket[0], fid]
                        else:
                            try:
                                bucket[fid] = None
                            except TypeError:  # a 1-tuple grows into a dict
                                index[key] = {bucket[0]: None, fid: None}
                    if retractable:
                        if type(support) is Lasting:
                            # (derive() of an `emit lasting`: it rests on nothing)
                            derivations[fid] = (agent, cycle, ())
                        else:
                            # derive() of a new fact, inlined: its first derivation,
                            # and the reverse edges from its support
                            derivations[fid] = (agent, cycle, support)
                            for s in support:
                                edges = dependents.get(s)
                                if edges is None:
                                    dependents[s] = fid
                                elif isinstance(edges, list):
                                    edges.append(fid)
                                else:
                                    dependents[s] = [edges, fid]
                            if touched is not None and support:
                                touched.update(support)
                    if conf != 1.0:
                        confidence[fid] = conf
                else:
                    if retractable:
                        derive(fid, agent, cycle, support)
                    if conf != 1.0 and conf > confidence.get(fid, 1.0):
                        confidence[fid] = conf
            return None
        finally:
            if grown:
                self._grow(grown)
            self.live_count += fid_next - start
            if retractable:
                h1, h2 = fingerprint_terms(self.type_of[start:fid_next], values[start:fid_next])
                self.fp1 = (self.fp1 + h1) & MASK
                self.fp2 = (self.fp2 + h2) & MASK

    def _grow(self, fids: list[int]) -> None:
        """Make the new ``fids`` (ascending, of types whose live ids are an
        :class:`IdList`) live, and empty the list: one run when they are consecutive
        ids of one type, as an agent's new facts usually are."""
        first, last = fids[0], fids[-1]
        types = self.type_of[first:last + 1]
        if last - first + 1 == len(fids) and types.count(types[0]) == len(types):
            cast(IdList, self.live[types[0]]).extend(first, last + 1)
        else:
            live, type_of = self.live, self.type_of
            for fid in fids:
                live[type_of[fid]][fid] = None
        fids.clear()

    def add_columns(self, outputs: Columns, fresh: list[int] | None = None,
                    at: list[int] | None = None) -> int:
        """Merge columnar outputs as :meth:`add_outputs` merges the same outputs as
        tuples (the same facts and ids), when facts never leave the context (no
        derivation records: not :attr:`retractable`) and there is room for every
        output: one dict operation and one append per output in the loop, the rest
        per batch at C speed. Returns how many facts were added; :meth:`merged_ids`
        gives the id each output merged into, then and later. ``fresh``, when given
        and some output was no new fact, gets the position (in ``outputs``) of each
        new fact's first output, ascending. ``at``, when given, is the position of
        each of ``outputs.values`` in the outputs they stand for (a batch whose runs
        of one repeated object are given once, at their first output's position):
        merged as those outputs would be; ``fresh`` is then always filled."""
        assert not self.retractable, "derivations are recorded by add_outputs"
        t = outputs.type_id
        values = self.values
        start = fid_next = len(values)
        same = self._same[t]
        if same is None:
            same = self._build_same(t)
        batch = outputs.values
        known = len(same)
        # Each output into ``same`` at C speed: the fact equal to it, else its position
        # from ``start`` (one hash for lookup and insert). When every output is a new
        # fact, those are the ids; otherwise the new facts, in order, take the ids from
        # ``start`` on instead (the same ids the one-at-a-time merge gives). The pass's
        # results are not kept (a zero-length deque consumes it: no list of one id per
        # output, 0.05 ms of 10,000).
        deque(map(same.setdefault, batch,
                  count(start) if at is None else map(add, at, repeat(start))), maxlen=0)
        added = len(same) - known
        if added == len(batch) and at is None:
            values.extend(batch)
        elif added:
            # the new facts are the keys the pass above inserted: the last ``added``
            # of ``same``, in the order of their first outputs (a dict keeps insertion
            # order), found without a second pass over the outputs (many agents
            # deriving one fact many times each: a few new facts in each large batch)
            new = list(islice(reversed(same), added))
            new.reverse()
            if fresh is not None:
                # (the pass gave each new fact its first output's position + start)
                fresh.extend(map(sub, map(same.__getitem__, new), repeat(start)))
            same.update(zip(new, count(start)))
            values.extend(new)
        fid_next = start + added
        if not added:
            return 0
        self.type_of.extend(array("i", (t,)) * added)
        live = self.live[t]
        if type(live) is IdList:
            live.extend(start, fid_next)
        else:
            assert isinstance(live, dict), "a type agents emit is never static"
            live.update(dict.fromkeys(range(start, fid_next)))
        self.live_count += added
        lists = self.list_buckets
        for index, get in self._index_plan[t]:
            for fid, key in zip(range(start, fid_next), map(get, values[start:fid_next]),
                                strict=True):
                index_insert(index, key, fid, lists)
        return added

    def merged_ids(self, outputs: Columns) -> array[int]:
        """The id of the fact each output merged into, for outputs :meth:`add_columns`
        merged: the live fact equal to it, which stays so (its facts never leave)."""
        same = self._same[outputs.type_id]
        assert same is not None, "outputs add_columns merged"
        return array("q", map(same.__getitem__, outputs.values))

    def _unlink(self, fid: int) -> None:
        type_id = self.type_of[fid]
        vals = self.values[fid]
        del self.live[type_id][fid]
        for index, get in self._index_plan[type_id]:
            key = get(vals)
            bucket = index[key]
            if isinstance(bucket, tuple):
                del index[key]
            else:
                if isinstance(bucket, list):
                    bucket.remove(fid)
                else:
                    del bucket[fid]
                if not bucket:
                    del index[key]
        keyget = self.keyget[type_id]
        if keyget is None:
            same = self._same[type_id]
            if same is not None and same.get(vals) == fid:
                del same[vals]
        else:
            keyed = self._keyed[type_id]
            if keyed is not None:
                key = keyget(vals)
                if keyed.get(key) == fid:
                    del keyed[key]
        self.live_count -= 1
        self.removals[type_id] += 1
        left = self.left
        if left is not None:
            # it (``left``), and the facts resting on it, whose derivations a cascade
            # trims (``touched``)
            left.append(fid)
            deps = self.dependents.get(fid)
            if deps is not None:
                self.note_dependents(deps)
        log = self.removal_log[type_id]
        if log is not None:
            log.append(fid)

    def log_removals(self, type_ids: Iterable[int]) -> None:
        """Keep the ids that leave the context, in order, for each of ``type_ids``
        (from now on; call it before the first removal): :meth:`removed` reads them."""
        for t in type_ids:
            if self.removal_log[t] is None:
                self.removal_log[t] = array("q")

    def removed(self, type_id: int, after: int, below: int) -> tuple[int, ...]:
        """The ids of ``type_id`` below ``below`` that left the context after its
        first ``after`` removals (``removals[type_id]`` counts them), in the order
        they left. The type's removals must be logged (:meth:`log_removals`)."""
        log = self.removal_log[type_id]
        assert log is not None, "removals of this type are not logged"
        return tuple(f for f in log[after:] if f < below)

    def remove(self, fid: int) -> None:
        """Take a live fact out of the context (replaced, retracted or pruned)."""
        vals = self.values[fid]
        type_id = self.type_of[fid]
        self._unlink(fid)
        h1, h2 = fact_terms(type_id, vals)
        self.fp1 -= h1
        self.fp2 -= h2

    def close_intent(self, fid: int) -> None:
        """Close an open intent: it leaves the live context but is not retracted, and
        intending it again is a no-op. The fingerprint keeps it (with a closed mark),
        so opening and closing an intent never looks like a return to an old state."""
        vals = self.values[fid]
        type_id = self.type_of[fid]
        self._unlink(fid)
        self._closed[type_id][vals] = fid
        h1, h2 = fact_terms(type_id, vals, closed=True)
        self.fp1 += h1
        self.fp2 += h2

    @property
    def fingerprint(self) -> tuple[int, int]:
        """The state of the live context (and the closed intents) as two 64-bit sums
        over its facts' :func:`fact_terms`: equal contexts, equal fingerprints.
        (:attr:`fp1` and :attr:`fp2` are the sums as added, unmasked: one operation
        less per change.)"""
        return (self.fp1 & MASK, self.fp2 & MASK)

    def note_dependents(self, deps: Dependents) -> None:
        """Note for the next checkpoint's delta the facts of an entry of
        :attr:`dependents` (resting on a fact that left: a cascade trims their
        derivations). Only while :attr:`touched` is kept."""
        touched = self.touched
        assert touched is not None
        if isinstance(deps, list):
            touched.update(deps)
        else:
            touched.add(deps)

    def derive_new(self, fid: int, agent: int, cycle: int,
                   support: tuple[int, ...]) -> None:
        """:meth:`derive` of the fact ``fid`` just added: its first derivation. A
        checkpoint's delta holds a new fact's whole state: only its support, whose
        dependents grow, is noted in :attr:`touched`."""
        if not self.retractable:
            return
        if type(support) is Lasting:
            self.derivations[fid] = (agent, cycle, ())
            return
        self.derivations[fid] = (agent, cycle, support)
        self._rests_on(fid, support)

    def derive(self, fid: int, agent: int, cycle: int, support: tuple[int, ...]) -> None:
        """Record one derivation of a fact and the reverse edges from its support —
        only when retraction is possible (the trace records every derivation anyway)."""
        if not self.retractable:
            return
        if type(support) is Lasting:
            # an `emit lasting` rests on nothing: no reverse edges, and a derivation
            # no removal can take away
            support = ()
        record = (agent, cycle, support)
        touched = self.touched
        if touched is not None:
            touched.add(fid)
        derivs = self.derivations.get(fid)
        if derivs is None:
            self.derivations[fid] = record
        elif isinstance(derivs, list):
            derivs.append(record)
        else:
            self.derivations[fid] = [derivs, record]
        self._rests_on(fid, support)

    def _rests_on(self, fid: int, support: tuple[int, ...]) -> None:
        """The reverse edges of a new derivation of ``fid`` from its ``support`` (see
        :attr:`dependents`) and, while a job writes checkpoints, the support noted in
        :attr:`touched`: their dependents grew."""
        if not support:
            return
        dependents = self.dependents
        for s in support:
            lst = dependents.get(s)
            if lst is None:
                dependents[s] = fid
            elif isinstance(lst, list):
                lst.append(fid)
            else:
                dependents[s] = [lst, fid]
        touched = self.touched
        if touched is not None:
            touched.update(support)

    # ----------------------------------------------------------- lazy indexes

    def _rebuild_plan(self) -> None:
        """Which indexes ``add`` and ``remove`` maintain, per type: the active ones;
        for :meth:`update_in_place`, a keyed type's active index on exactly its key
        apart (an update keeps the key: its bucket is the key's, no getter to call)
        and the others; for :meth:`updater`, those others split into the indexes on
        part of the key (an update keeps their bucket too) and the rest."""
        layout = self.layout
        plan: list[list[IndexUse]] = [[] for _ in range(layout.types)]
        update: list[list[IndexUse]] = [[] for _ in range(layout.types)]
        same: list[list[IndexUse]] = [[] for _ in range(layout.types)]
        moving: list[list[IndexUse]] = [[] for _ in range(layout.types)]
        key_index: list[dict[Any, Bucket] | None] = [None] * layout.types
        for index_id, (type_id, positions) in enumerate(layout.indexes):
            if self.index_active[index_id]:
                use = (self.indexes[index_id], self._index_get[index_id])
                plan[type_id].append(use)
                key = layout.keys[type_id]
                if positions == key and key_index[type_id] is None:
                    key_index[type_id] = use[0]
                else:
                    update[type_id].append(use)
                    (same if key and set(positions) <= set(key) else moving)[type_id].append(use)
        self._index_plan = [tuple(p) for p in plan]
        self._update_plan = [tuple(p) for p in update]
        self._update_split = [(tuple(s), tuple(m)) for s, m in zip(same, moving, strict=True)]
        self._key_index = key_index

    def set_lazy_indexes(self, needed: bool) -> None:
        """Build the lazy indexes (from the live facts) when a cycle may look them up,
        drop them when it cannot. Called between cycles, never during a phase."""
        changed = False
        for index_id in self.layout.lazy:
            if self.index_active[index_id] == needed:
                continue
            changed = True
            self.index_active[index_id] = needed
            index = self.indexes[index_id]
            index.clear()
            if needed:
                self._fill(index_id)
        if changed:
            self._rebuild_plan()

    def reach_tier(self, tier: int) -> None:
        """Build the indexes of the tiers up to ``tier`` (:attr:`Layout.deferred`) not
        built yet, from the live facts: kept from then on. Called before a cycle."""
        changed = False
        for index_id, first in self.layout.deferred:
            if first <= tier and not self.index_active[index_id]:
                changed = True
                self.index_active[index_id] = True
                self.indexes[index_id].clear()
                self._fill(index_id)
        if changed:
            self._rebuild_plan()

    def _fill(self, index_id: int) -> None:
        """Build an (empty) index from the live facts of its type: grouped in one pass,
        then each group stored in the bucket form :func:`index_insert` would have
        given it (a 1-tuple, else a list or an ordered-set dict)."""
        type_id, _ = self.layout.indexes[index_id]
        index = self.indexes[index_id]
        get = self._index_get[index_id]
        values = self.values
        live = self.live[type_id]
        rows = (values[live.start:live.stop] if isinstance(live, IdRange)
                else map(values.__getitem__, live))
        # (a subscript per fact, a missing key's list made in C: no KeyError caught
        # per key, ~3,000 instructions each: 1.5x fewer instructions than a try per
        # fact on 10,000 distinct keys, as many on 200 keys of 50 facts)
        groups: defaultdict[Any, list[int]] = defaultdict(list)
        for fid, key in zip(live, map(get, rows), strict=True):
            groups[key].append(fid)
        if self.list_buckets and min(map(len, groups.values()), default=2) > 1:
            index.update(groups)  # no key of one fact: every bucket a list, at C speed
            return
        lists = self.list_buckets
        for key, ids in groups.items():
            index[key] = (ids[0],) if len(ids) == 1 else ids if lists else dict.fromkeys(ids)

    # -------------------------------------------------------------- replicas

    def replicate(self) -> FactStore:
        """A replica of the live context for an executor's worker: the same arena and
        live facts (so ids agree), no provenance; picklable. Keep it current with
        :meth:`apply`."""
        replica = FactStore(self.layout, retractable=False)
        replica.values = list(self.values)
        replica.type_of = array("i", self.type_of)
        replica.cycle_starts = array("q", self.cycle_starts)
        replica.cycle_numbers = array("q", self.cycle_numbers)
        replica.n_inputs = self.n_inputs
        replica.now = self.now
        replica.fired = {name: set(done) for name, done in self.fired.items()}
        for type_id, live in enumerate(self.live):
            # (a replica replays removals: its live ids are dicts, whatever the primary's)
            replica.live[type_id] = live if isinstance(live, IdRange) else dict.fromkeys(live)
        replica.live_count = self.live_count
        # a replica keeps every index, lazy or not: it cannot tell when one is needed
        for index_id, index in enumerate(self.indexes):
            if self.index_active[index_id]:
                replica.indexes[index_id].update(
                    (k, b if isinstance(b, tuple) else b.copy()) for k, b in index.items()
                )
            else:
                replica._fill(index_id)
        replica.index_active = [True] * len(self.indexes)
        replica._rebuild_plan()
        return replica

    def apply(self, delta: Sequence[tuple[Any, ...]]) -> None:
        """Replay the merge's changes (a :data:`~converge_rules.engine.effects.Delta`)
        on a replica, in order: ids come out the same as in the primary store."""
        for change in delta:
            op = change[0]
            if op == 0:      # D_ADD: (op, fid, type, values, cycle)
                fid = self.add(change[2], change[3], change[4])
                if fid != change[1]:
                    raise AssertionError(f"replica out of step: got id {fid}, "
                                         f"the primary store gave {change[1]}")
            elif op == 1:    # D_REMOVE
                self.remove(change[1])
            elif op == 2:    # D_CLOSE
                self.close_intent(change[1])
            else:            # D_FIRED
                self.fired.setdefault(change[1], set()).add(change[2])

