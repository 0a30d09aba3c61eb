"""Checkpoints of a job at its cycle boundaries: what a resume restores instead of
re-executing the job from its inputs.

A job whose cycle sink keeps checkpoints (``stage_checkpoint``: a job of the SQLite
store) stages one with every transaction, for the cycle it ends with, written in it:
with group commit (the sink's ``commit_due`` says whether a cycle is committed as it
comes) the cycles that wait have none — a crash loses them anyway — and the job's last
cycle gets its own with the job's end (:meth:`Checkpointer.flush`). Each is

* a **delta** — what the cycles since the last one changed: the facts they added
  (types and values), the older facts whose state changed (left the context, closed,
  their derivations or the facts resting on them changed: :attr:`FactStore.touched`),
  confidences and
  evaluations set, removal counts and logs, refraction sets, and the job's own small
  state (watermarks, ran/fired flags, seen removals, the budget meter, the tool calls
  counted, the conflicts counted, the trace lines so far, what comes next);
* or a **snapshot** — the whole state, when the deltas since the last snapshot hold
  more bytes than that snapshot beyond what a snapshot holds again anyway (every fact
  ever merged, every cycle's start: the deltas' share of those is counted out, in
  proportion to their JSON text), or after ``snapshot_every`` deltas (the sink's
  setting, :data:`DEFAULT_EVERY` by default): the store grows with what changed, and
  a resume reads one snapshot, the facts merged since and at most about one
  snapshot's bytes of the deltas' other state. (A resumed job counts its deltas since
  the snapshot whole: its next snapshot may come sooner than without the resume.)

Both are JSON, with lists of ints as binary columns after it (format 4 and on: see
:func:`pack`), zlib-compressed from :data:`COMPRESS_FROM` bytes, versioned by
:data:`FORMAT` (a newer format is not
read: the resume re-executes instead). Values are JSON with tuples as lists and dates,
datetimes and durations tagged (``{"d": ordinal}``, ``{"dt": [...]}``, ``{"td": [days,
seconds, µs]}``); nothing is pickled. Indexes and the "same fact" and key lookups are
rebuilt from the live facts. The context's fingerprints use Python's ``hash``, which
differs between processes: a resume recomputes them, and those of the earlier states
(oscillation), from the checkpoints since cycle 0 when the program can remove facts —
each checkpoint holding the ``steps`` of the cycles that waited for it (which facts
each added, which of them and of the facts it touched left or closed, whether the job
noted the context's fingerprint or started its fingerprints over).

The job state also holds what the program's features keep between cycles
(``features``): the invariants' guard (what each was last checked against, the
violations so far), the approval gates (facts pending, approved and rejected, the
decisions applied and used), and the number of knowledge rows the store holds (the
rows themselves are in the store, written in their cycles' transactions). ``blob``
values are held as their handles; a restore reads their payloads back from the store,
where the cycle that merged them wrote them. A cycle that applied decisions records
that the tiers run again from the first and the fingerprints start over there; so
does a cycle that merged a session's later input facts (``--resume --facts``), whose
checkpoint also holds which facts are inputs now and that the store takes input facts
after cycle 0 (:func:`~converge_rules.engine.later_inputs.open_for_inputs`).

A value of a type the format does not know ends a job's checkpoints (a resume of it
re-executes the job, as a job stored without checkpoints does).
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgpack

from converge_rules.engine.factstore import (
    MASK,
    Dependents,
    Derivation,
    Derivations,
    FactStore,
    IdList,
    IdRange,
    dependent_ids,
    derivation_entry,
    fact_terms,
    records,
)
from converge_rules.engine.fingerprints import FingerprintIndex
from converge_rules.engine.trace import E_APPROVAL_DECIDED, E_CYCLE_END, E_CYCLE_START
from converge_rules.jsontext import c_encoder

if TYPE_CHECKING:
    from converge_rules.engine.runner import _Job
    from converge_rules.program import Program

FORMAT = 5
"""The version of the checkpoint format written here; a newer one is not read (2:
a checkpoint is staged only with a transaction's last cycle, and holds ``steps``, what
the fingerprints' replay needs of the cycles before it since the last checkpoint; 3:
the facts' ``types`` may be a string, a character a fact — see :data:`TYPE_CHARS`; 4:
the facts' ``values`` are a list of parts, some of them columns of ints in binary after
the JSON text — see :data:`COLUMNS_FROM`; 5: the ``steps`` are columns in that binary,
after the facts' — see :func:`steps_part` —, and a delta's ``gone``, ``starts`` and
``numbers`` after them — see :func:`columns_part` —; the values of facts that are not
columns are msgpack in that binary — see :func:`_listed_part`)."""

TYPE_CHARS = bytes(c for c in range(33, 127) if c not in (34, 92))
"""The characters of the facts' types in a checkpoint of format 3 of a program of at
most this many types: ``types`` is then a JSON string whose character ``i`` is
``TYPE_CHARS[type id]`` of fact ``n0 + i`` (printable ASCII but ``"`` and ``\\``, which
JSON escapes), else a list of type ids as in format 2. The string is made and read by
C-level byte operations: a list of ints cost ~50 ns a fact to write, a tenth of what a
growing closure's checkpoints cost."""

_TO_CHAR = TYPE_CHARS + bytes(256 - len(TYPE_CHARS))
_FROM_CHAR = bytes(TYPE_CHARS.index(c) if c in TYPE_CHARS else 0 for c in range(256))

DEFAULT_EVERY = 10_000
"""Deltas (checkpoints: one per transaction) between two snapshots at most, when the
deltas stay smaller than the last snapshot (the size rule): a resume then applies at
most this many deltas."""

SNAPSHOT = "snapshot"
DELTA = "delta"


@runtime_checkable
class CheckpointSink(Protocol):
    """A cycle sink that keeps checkpoints: ``stage_checkpoint`` is written with the
    next ``cycle_committed``, in its transaction."""

    def stage_checkpoint(self, cycle: int, kind: str, data: bytes) -> None: ...


class Unsupported(Exception):
    """A state this format cannot hold (a value of an unknown type)."""


def checkpointable(program: Program) -> bool:
    """Whether jobs of ``program`` write checkpoints: all do now (invariants, gates,
    knowledge, blobs and later inputs included: see the module); a value the format
    cannot hold stops a job's checkpoints as it runs."""
    del program
    return True


def _has_blob(value_type: Any) -> bool:
    while value_type is not None:
        if getattr(value_type, "base", None) == "blob":
            return True
        value_type = getattr(value_type, "element", None)
    return False


# ------------------------------------------------------------------ values


def _tag(value: Any) -> Any:
    """JSON for the values JSON has no type for (``json.dumps``' ``default``)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() != timedelta(0):
            raise Unsupported(f"datetime {value.isoformat()} is not in UTC")
        return {"dt": [value.year, value.month, value.day, value.hour, value.minute,
                       value.second, value.microsecond, value.tzinfo is not None]}
    if isinstance(value, date):
        return {"d": value.toordinal()}
    if isinstance(value, timedelta):
        return {"td": [value.days, value.seconds, value.microseconds]}
    raise Unsupported(f"a value of type {type(value).__name__}")


def _value(doc: Any) -> Any:
    kind = type(doc)
    if kind is list:
        return tuple([_value(v) for v in doc])
    if kind is dict:
        if "d" in doc:
            return date.fromordinal(doc["d"])
        if "td" in doc:
            days, seconds, micro = doc["td"]
            return timedelta(days=days, seconds=seconds, microseconds=micro)
        y, mo, d, h, mi, s, us, aware = doc["dt"]
        return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC if aware else None)
    return doc


def _row(doc: list[Any]) -> tuple[Any, ...]:
    return tuple([_value(v) if type(v) in (list, dict) else v for v in doc])


COMPRESS_FROM = 256
"""Documents of this many bytes or more are stored zlib-compressed (a delta's JSON
shrinks by about 40%), smaller ones as their JSON text, which compressing would not
shrink."""


_dumps = c_encoder(_tag)
"""``json.dumps(doc, separators=(",", ":"), default=_tag)``, its C encoder made once and
without the check for circular containers (a document is built of fresh lists and dicts
and of fact values): the same text, ~10-20% less time."""


COLUMNS_FROM = 64
"""Format 4: the facts a checkpoint holds of one stretch of ids (a delta's, or one
delta's share of a snapshot's): each run of this many or more facts in a row of one
type whose fields are all ``int`` (required, and every value a plain ``int`` of 64
bits) is written as columns: a part ``{"c": [count, codes]}`` of ``values`` whose
field ``i`` is the next ``count`` ints of array typecode ``codes[i]`` (``h``, ``i`` or
``q``, the narrowest that holds the column; little-endian) of the binary that follows
the document's JSON text after a NUL byte (which JSON text never holds). The facts
between are parts that are lists of their values, as before. A growing closure's facts of two
ints cost about 40% less time to write (their JSON was ~130 ns a fact) and compress far
better (a chain of 800: 1 MB of deltas, now 46 kB); a resume reads them without parsing
JSON."""

BYTES = "bytes"
"""The key of a document (see :func:`unpack`) holding the binary after its JSON text."""

SUM = "sum"
"""Format 5: the key of a document with a binary holding the binary's Adler-32, which
:func:`unpack` checks. A binary's ints and msgpack read back as other values when a
byte changes (a cycle's start, a fact that left, a waiting cycle's number: a resume
to another result), where a changed byte of JSON text mostly no longer parses; zlib's
own sum covers the bytes stored, not a binary damaged before it compressed them."""

_CODES = "hiq"
_INT = frozenset({int})


def pack(doc: Mapping[str, Any], texts: Mapping[str, str] | None = None) -> bytes:
    """A checkpoint document as the bytes stored: its JSON text (it starts with
    ``{``), then, when ``doc[BYTES]`` is there, a NUL byte and those bytes (see
    :data:`COLUMNS_FROM`), zlib-compressed when long (a zlib stream never starts with
    ``{``). ``texts``: the JSON texts of some of ``doc``'s values, encoded already (the
    same texts), by key."""
    binary = doc.get(BYTES, b"")
    if BYTES in doc:
        doc = {key: value for key, value in doc.items() if key != BYTES}
    return _stored(_text(doc, texts), binary)


def _text(doc: Mapping[str, Any], texts: Mapping[str, str] | None) -> str:
    """The JSON text of a checkpoint document (see :func:`pack`)."""
    try:
        return _dumps(doc) if not texts else _spliced(doc, texts)
    except (TypeError, ValueError) as exc:
        raise Unsupported(str(exc)) from None


def _stored(text: str, binary: bytes = b"") -> bytes:
    """A checkpoint's JSON text and binary as the bytes stored (see :func:`pack`)."""
    data = text.encode("utf-8", "surrogatepass")
    if binary:
        data = b"%b\0%b" % (data, binary)
    return data if len(data) < COMPRESS_FROM else zlib.compress(data, 1)


def _spliced(doc: Mapping[str, Any], texts: Mapping[str, str]) -> str:
    """``_dumps(doc)`` with ``texts[key]`` as the text of ``doc[key]`` (keys that JSON
    writes as they are): the keys between encoded together."""
    parts: list[str] = []
    plain: dict[str, Any] = {}
    for key, value in doc.items():
        if key in texts:
            if plain:
                parts.append(_dumps(plain)[1:-1])
                plain = {}
            parts.append(f'"{key}":{texts[key]}')
        else:
            plain[key] = value
    if plain:
        parts.append(_dumps(plain)[1:-1])
    return "{" + ",".join(parts) + "}"


def _types(type_of: array[int], chars: bool) -> str | list[int]:
    """The ``types`` of a checkpoint's facts whose type ids are ``type_of``: a string
    of :data:`TYPE_CHARS` (``chars``: every id is below their number) or the ids."""
    if not chars:
        return type_of.tolist()
    size = type_of.itemsize  # (each id's low byte: it is below 256)
    low = 0 if sys.byteorder == "little" else size - 1
    return bytes(type_of)[low::size].translate(_TO_CHAR).decode("ascii")


def _type_ids(doc: str | list[int]) -> array[int]:
    """The type ids of a checkpoint's ``types`` (see :func:`_types`)."""
    if isinstance(doc, str):
        # (array("B", bytes) reads one id a byte; array("i", bytes) would read four)
        return array("i", array("B", doc.encode("ascii").translate(_FROM_CHAR)))
    return array("i", doc)


Packed = tuple[int, int, int, str, bytes]
"""One entry of :attr:`FactStore.packed`: first id, count, fields, code, bytes."""


def _facts_text(store: FactStore, n0: int, n1: int, chars: bool = False,
                columnar: Mapping[int, int] | None = None,
                packed: Sequence[Packed] = ()) -> tuple[dict[str, str], bytes]:
    """The JSON texts of the types and values of the facts ``n0`` to ``n1``, as
    :func:`pack` writes them (a value it cannot write raises :class:`Unsupported`), and
    the binary of their columns; ``chars``: the types as a string (see :func:`_types`);
    ``columnar``: the number of fields of each type whose fields are all ``int`` (see
    :data:`COLUMNS_FROM`); ``packed``: facts among them whose values the trace rows
    packed already (in order of their ids, :attr:`FactStore.packed`): their columns
    are taken from those bytes (:func:`_handed_columns`), not flattened and packed
    again."""
    try:
        type_chars = _types(store.type_of[n0:n1], chars)
        types = _dumps(type_chars)
        if n1 == n0:
            return {"types": types, "values": "[]"}, b""
        parts: list[str] = []
        chunks: list[bytes] = []
        at = n0
        type_of = store.type_of
        i, m = 0, len(packed)
        while i < m:
            first, count, fields, code, data = packed[i]
            t, end = type_of[first], first + count
            # (a stretch of entries one after another, of one type and typecode: one
            # part; an entry not among these facts is not used: never so, but safe)
            group = [data]
            i += 1
            while (i < m and packed[i][0] == end and packed[i][3] == code
                   and type_of[end] == t):
                end += packed[i][1]
                group.append(packed[i][4])
                i += 1
            if first < at or end > n1:
                continue
            if at < first:
                _parts(store, at, first, type_chars[at - n0:first - n0], columnar,
                       parts, chunks)
            parts.append(_dumps({"c": [end - first, code * fields]}))
            chunks.append(_handed_columns(group, fields, code))
            at = end
        if at < n1:
            _parts(store, at, n1, type_chars[at - n0:], columnar, parts, chunks)
        return {"types": types, "values": f"[{','.join(parts)}]"}, b"".join(chunks)
    except (TypeError, ValueError) as exc:
        raise Unsupported(str(exc)) from None


def _handed_columns(rows: Sequence[bytes], fields: int, code: str) -> bytes:
    """The binary of a part of columns (see :data:`COLUMNS_FROM`) of facts of
    ``fields`` ints whose values are ``rows``: the trace rows' packed values
    (little-endian ints of typecode ``code``, fact by fact), one after another. Taken
    apart at C speed: the ints are never read (a column as one array compresses far
    better than the facts' rows: ~1/20 of the bytes for a closure's paths)."""
    ints = array(code)
    for data in rows:
        ints.frombytes(data)
    if fields == 1:
        return ints.tobytes()
    return b"".join([ints[i::fields].tobytes() for i in range(fields)])


def _parts(store: FactStore, n0: int, n1: int, type_chars: str | list[int],
           columnar: Mapping[int, int] | None, parts: list[str],
           chunks: list[bytes]) -> None:
    """Append the parts of ``values`` of the facts ``n0`` to ``n1`` (whose types are
    ``type_chars``, see :func:`_types`) to ``parts``, their binary to ``chunks``: runs
    of :data:`COLUMNS_FROM` facts as columns, the rest as lists of their values."""
    if not columnar or n1 - n0 < COLUMNS_FROM:
        _listed_part(store.values[n0:n1], parts, chunks)
        return
    at = n0
    runs = ([(n0 + a, n0 + b) for a, b in _runs(type_chars, columnar)]
            if isinstance(type_chars, str) else [(n0, n1)])
    for a, b in runs:
        found = _columns(store, a, b, columnar)
        if found is not None:
            if at < a:
                _listed_part(store.values[at:a], parts, chunks)
            parts.append(found[0])
            chunks.append(found[1])
            at = b
    if at < n1:
        _listed_part(store.values[at:n1], parts, chunks)


def _listed_part(values: list[tuple[Any, ...]], parts: list[str],
                 chunks: list[bytes]) -> None:
    """Append the part of ``values`` of facts that are not columns to ``parts``, its
    binary to ``chunks``: format 5, ``{"m": [count, size]}``, the facts' values as a
    msgpack array of arrays of ``size`` bytes in the binary (~45% of the time of their
    JSON text and ~half its bytes, which zlib then compresses faster); a list of their
    values in JSON when msgpack does not hold them as they are (a date, a datetime, a
    duration, an int past 64 bits, a string that is not UTF-8)."""
    try:
        data = msgpack.packb(values, use_bin_type=True, datetime=False)
    except (TypeError, ValueError, OverflowError):
        parts.append(_dumps(values))
        return
    parts.append(f'{{"m":[{len(values)},{len(data)}]}}')
    chunks.append(data)


def _runs(type_chars: str, columnar: Mapping[int, int]) -> list[tuple[int, int]]:
    """The stretches ``(start, end)`` of ``type_chars`` (see :func:`_types`) of
    :data:`COLUMNS_FROM` or more facts of one type of ``columnar``, in order: found by
    C-level searches (a run starts where its type's first ``COLUMNS_FROM`` characters
    in a row do, and ends at the next other character), whatever the number of
    types and however they alternate."""
    runs: list[tuple[int, int]] = []
    for t in columnar:
        if t >= len(TYPE_CHARS):
            continue
        char = chr(TYPE_CHARS[t])
        if char not in type_chars:
            continue
        block = char * COLUMNS_FROM
        other = re.compile(f"[^{re.escape(char)}]")  # (re keeps it compiled)
        at = type_chars.find(block)
        while at >= 0:
            found = other.search(type_chars, at + COLUMNS_FROM)
            end = len(type_chars) if found is None else found.start()
            runs.append((at, end))
            at = type_chars.find(block, end)
    runs.sort()
    return runs


def _columns(store: FactStore, n0: int, n1: int,
             columnar: Mapping[int, int]) -> tuple[str, bytes] | None:
    """The facts ``n0`` to ``n1`` as a part of columns and its binary, or None when
    they are not all of one type of ``columnar`` with plain 64-bit ``int`` values."""
    type_of = store.type_of
    t = type_of[n0]
    arity = columnar.get(t)
    if arity is None:
        return None
    ids = type_of[n0:n1]
    if ids.count(t) != n1 - n0:
        return None
    values = store.values[n0:n1]
    codes: list[str] = []
    chunks: list[bytes] = []
    for i in range(arity):
        column = list(map(itemgetter(i), values))
        if set(map(type, column)) != _INT:  # (a bool is an int to array)
            return None
        for code in _CODES:
            try:
                ints = array(code, column)
            except OverflowError:
                continue
            break
        else:
            return None
        if sys.byteorder != "little":
            ints.byteswap()
        codes.append(code)
        chunks.append(ints.tobytes())
    return _dumps({"c": [n1 - n0, "".join(codes)]}), b"".join(chunks)


def _values(doc: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The facts' values of a checkpoint document (its ``values``: see
    :data:`COLUMNS_FROM`)."""
    if int(doc["format"]) < 4:
        return [_row(r) for r in doc["values"]]
    binary: bytes = doc.get(BYTES, b"")
    out: list[tuple[Any, ...]] = []
    at = 0
    for part in doc["values"]:
        if type(part) is list:
            out.extend([_row(r) for r in part])
            continue
        if "m" in part:  # (format 5: see _listed_part)
            count, size = (int(x) for x in part["m"])
            try:
                rows = msgpack.unpackb(binary[at:at + size], use_list=False, raw=False)
            except (ValueError, TypeError) as exc:
                raise Unsupported(f"a checkpoint's values: {exc}") from None
            if type(rows) is not tuple or len(rows) != count or size < 0:
                raise Unsupported("a checkpoint's values end early")
            out.extend(rows)
            at += size
            continue
        count, codes = part["c"]
        count = int(count)
        columns: list[list[int]] = []
        for code in codes:
            if code not in _CODES:
                raise Unsupported(f"a column of typecode {code!r}")
            ints = array(code)
            size = count * ints.itemsize
            ints.frombytes(binary[at:at + size])
            if len(ints) != count:
                raise Unsupported("a checkpoint's columns end early")
            if sys.byteorder != "little":
                ints.byteswap()
            columns.append(ints.tolist())
            at += size
        out.extend(zip(*columns, strict=True))
    if at != _columns_end(doc, binary):
        raise Unsupported("a checkpoint's columns do not fill its binary")
    return out


STEP_FIELDS = 3
"""Format 5: the ints a waiting cycle's step is noted as (see :func:`steps_part`)."""


def _planes(ints: array[int]) -> bytes:
    """``ints`` as little-endian bytes in planes: every int's lowest byte, then every
    int's next byte, and so on. Made by C-level slices; a column of ids or counts that
    grow a little at each row is then mostly runs (its high bytes) and short patterns,
    which zlib compresses ~3x faster and ~10x smaller than the ints' bytes in order
    (a step's columns: ~60 µs and 0.8 kB for 900 cycles, against 170 µs and 6.4 kB)."""
    data = ints.tobytes()
    size = ints.itemsize
    if sys.byteorder != "little":
        swapped = array(ints.typecode, ints)
        swapped.byteswap()
        data = swapped.tobytes()
    return b"".join([data[k::size] for k in range(size)])


def _from_planes(data: bytes, code: str) -> array[int]:
    """The ints of typecode ``code`` whose :func:`_planes` are ``data``."""
    ints = array(code)
    size = ints.itemsize
    count = len(data) // size
    ordered = bytearray(len(data))
    for k in range(size):
        ordered[k::size] = data[k * count:(k + 1) * count]
    ints.frombytes(bytes(ordered))
    if sys.byteorder != "little":
        ints.byteswap()
    return ints


def _int_array(ints: Sequence[int]) -> array[int]:
    """``ints`` as an array of typecode ``i`` (4 bytes), or ``q`` when one does not
    fit."""
    try:
        return array("i", ints)
    except OverflowError:
        return array("q", ints)


def steps_part(steps: Sequence[int], left: Sequence[int],
               closed: bytes | bytearray | None, at: int) -> tuple[dict[str, Any], bytes]:
    """Format 5: the ``steps`` of a checkpoint, as its document holds them, and their
    binary, which starts at byte ``at`` of the document's (after the facts' columns).
    ``steps``: :data:`STEP_FIELDS` ints a waiting cycle — its number times 4 plus 1
    when the job noted the context's fingerprint after it and 2 when the fingerprints
    started over there, the next fact id after it, and how many of ``left`` (the ids
    of the facts that left the context or closed, in order) had left by its end —;
    ``closed``: a byte per id of ``left``, 1 when it closed (an intent), or None when
    none can. Each a column of ints of the typecode ``codes`` gives (``i`` or ``q``) in
    :func:`_planes`, then the ``closed`` bytes: a few bytes a cycle before zlib, made
    and read at C speed (as lists in JSON, formats 2–4, they were ~40 bytes a cycle,
    half of a pruning job's delta text, and its most costly part to write)."""
    count = len(steps) // STEP_FIELDS
    ints, ids = _int_array(steps), _int_array(left)
    chunks = [_planes(ints[0::STEP_FIELDS]), _planes(ints[1::STEP_FIELDS]),
              _planes(ints[2::STEP_FIELDS]), _planes(ids)]
    doc: dict[str, Any] = {"n": count, "left": len(ids),
                           "codes": ints.typecode * STEP_FIELDS + ids.typecode, "at": at}
    if closed is not None:
        doc["closed"] = True
        chunks.append(bytes(closed))
    return doc, b"".join(chunks)


Step = tuple[int, int, Sequence[int], Sequence[int], bool, bool]
"""A waiting cycle's step as the fingerprints' replay reads it: the cycle, the next
fact id after it, the facts that left the context in it, those that closed, whether
the job noted the context's fingerprint, whether the fingerprints started over."""


def steps_of(doc: Mapping[str, Any]) -> list[Step]:
    """The steps of a checkpoint document (of any format read: lists in 2–4, columns
    in 5, see :func:`steps_part`); a damaged part raises :class:`Unsupported`."""
    part = doc.get("steps")
    if not part:
        return []
    if int(doc["format"]) < 5:
        return [(int(c), int(n1), gone, closed, bool(noted), bool(reset))
                for c, n1, gone, closed, noted, reset in part]
    binary: bytes = doc.get(BYTES, b"")
    count, m, codes, at = int(part["n"]), int(part["left"]), str(part["codes"]), int(part["at"])
    if len(codes) != STEP_FIELDS + 1 or not set(codes) <= set(_CODES) or at < 0:
        raise Unsupported("a checkpoint's steps are not columns this converge reads")
    columns: list[list[int]] = []
    for code, n in zip(codes, (count, count, count, m), strict=True):
        size = n * array(code).itemsize
        chunk = binary[at:at + size]
        if len(chunk) != size:
            raise Unsupported("a checkpoint's steps end early")
        columns.append(_from_planes(chunk, code).tolist())
        at += size
    flags, ends, left = columns[0], columns[2], columns[3]
    closed = binary[at:at + m] if part.get("closed") else bytes(m)
    if len(closed) != m:
        raise Unsupported("a checkpoint's steps end early")
    out: list[Step] = []
    start = 0
    for flag, n1, end in zip(flags, columns[1], ends, strict=True):
        if not start <= end <= m:
            raise Unsupported("a checkpoint's steps name facts that left twice")
        gone = [left[i] for i in range(start, end) if not closed[i]]
        shut = [left[i] for i in range(start, end) if closed[i]]
        out.append((flag >> 2, n1, gone, shut, bool(flag & 1), bool(flag & 2)))
        start = end
    return out


DELTA_COLUMNS = ("gone", "starts", "numbers")
"""Format 5: a delta's lists of ints held as columns in its binary (see
:func:`columns_part`), not in its JSON text."""


def columns_part(columns: Mapping[str, Sequence[int]], at: int
                 ) -> tuple[list[Any], bytes]:
    """Format 5: lists of ints of a checkpoint (a delta's :data:`DELTA_COLUMNS`) as its
    document's ``cols`` holds them, ``[at, [name, count, typecode], ...]``, and their
    binary, which starts at byte ``at`` of the document's: each list 4-byte ints (8
    when one does not fit) in :func:`_planes`, one after another. A pruning job's
    delta holds ~3 ids a cycle in them: as JSON they were a third of its text, and
    zlib took ~3x longer on them than on their planes."""
    entry: list[Any] = [at]
    chunks: list[bytes] = []
    for name, ints in columns.items():
        column = _int_array(ints)
        entry.append([name, len(column), column.typecode])
        chunks.append(_planes(column))
    return entry, b"".join(chunks)


def columns_of(doc: Mapping[str, Any]) -> dict[str, list[int]]:
    """The lists of ints a checkpoint document holds as columns (format 5: see
    :func:`columns_part`), by name; none in older formats. A damaged part raises
    :class:`Unsupported`."""
    part = doc.get("cols")
    if int(doc["format"]) < 5 or not part:
        return {}
    binary: bytes = doc.get(BYTES, b"")
    at = int(part[0])
    out: dict[str, list[int]] = {}
    for name, count, code in part[1:]:
        if code not in _CODES or at < 0:
            raise Unsupported(f"a column of typecode {code!r}")
        size = int(count) * array(code).itemsize
        chunk = binary[at:at + size]
        if len(chunk) != size:
            raise Unsupported("a checkpoint's columns end early")
        out[str(name)] = _from_planes(chunk, code).tolist()
        at += size
    return out


def _delta_lists(doc: Mapping[str, Any]) -> tuple[list[int], list[int], list[int]]:
    """A delta's ``gone``, ``starts`` and ``numbers``: columns (format 5) or JSON."""
    cols = columns_of(doc)
    gone, starts, numbers = (cols[name] if name in cols else doc[name]
                             for name in DELTA_COLUMNS)
    return gone, starts, numbers


def _columns_end(doc: Mapping[str, Any], binary: bytes) -> int:
    """Where the facts' columns end in a document's binary: the steps' columns and
    the other lists' follow them (format 5)."""
    ends = [len(binary)]
    if int(doc["format"]) >= 5:
        if doc.get("steps"):
            ends.append(int(doc["steps"]["at"]))
        if doc.get("cols"):
            ends.append(int(doc["cols"][0]))
    return min(ends)


_ZLIB_HEAD = b"\x78\x01"
"""The header of a zlib stream of deflate blocks, with a 32 KiB window, at level 1."""

_LAST_BLOCK = b"\x03\x00"
"""A deflate block that holds nothing and is the stream's last (fixed codes: the end
of block)."""

_ADLER = 65521


def _deflated(data: bytes) -> tuple[bytes, int, int]:
    """``data`` as raw deflate blocks that end on a byte boundary (a sync flush), not
    the last: a zlib stream may hold them among others (see :func:`_zlib_stream`);
    with the length and the Adler-32 of ``data``."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    return (deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH), len(data),
            zlib.adler32(data))


def _adler32_combine(first: int, second: int, length: int) -> int:
    """The Adler-32 of two byte strings one after the other, from each one's and the
    second's ``length`` (zlib's ``adler32_combine``, which Python does not offer)."""
    rem = length % _ADLER
    sum1 = first & 0xFFFF
    sum2 = (rem * sum1) % _ADLER
    sum1 = (sum1 + (second & 0xFFFF) + _ADLER - 1) % _ADLER
    sum2 = (sum2 + (first >> 16) + (second >> 16) + _ADLER - rem) % _ADLER
    return sum1 | (sum2 << 16)


def _zlib_stream(parts: Iterable[tuple[bytes, int, int]]) -> bytes:
    """The zlib stream (as ``zlib.compress`` makes, which ``zlib.decompress`` reads) of
    the bytes whose :func:`_deflated` parts are ``parts``, in order."""
    out = [_ZLIB_HEAD]
    adler = 1
    for deflated, length, checksum in parts:
        out.append(deflated)
        adler = _adler32_combine(adler, checksum, length)
    out.append(_LAST_BLOCK)
    out.append(adler.to_bytes(4, "big"))
    return b"".join(out)


def _joined(texts: Sequence[str]) -> str:
    """The JSON texts of consecutive slices of one list, or of one string, as the text
    of the whole."""
    if texts and texts[0][:1] == '"':
        return '"' + "".join([t[1:-1] for t in texts]) + '"'
    return "[" + ",".join([t[1:-1] for t in texts if len(t) > 2]) + "]"


def unpack(data: bytes) -> dict[str, Any]:
    """The document of stored checkpoint bytes (see :func:`pack`), with the binary
    after its JSON text, if any, as ``doc[BYTES]``."""
    text = data if data[:1] == b"{" else zlib.decompress(data)
    end = text.find(b"\0")
    doc: dict[str, Any] = json.loads(
        (text if end < 0 else text[:end]).decode("utf-8", "surrogatepass"))
    if end >= 0:
        doc[BYTES] = text[end + 1:]
    if SUM in doc and int(doc.get("format", 0)) >= 5 and zlib.adler32(
            doc.get(BYTES, b"")) != doc[SUM]:
        raise Unsupported("a checkpoint's binary is damaged (its Adler-32 differs)")
    return doc


def readable(data: bytes) -> bool:
    """Whether this converge reads the checkpoint ``data`` (its format is known)."""
    try:
        return int(unpack(data).get("format", FORMAT + 1)) <= FORMAT
    except (ValueError, TypeError, zlib.error, Unsupported):
        return False


# ------------------------------------------------------------------ writing


class Checkpointer:
    """Builds the checkpoint of each cycle a job commits and stages it with its sink."""

    def __init__(self, job: _Job, sink: CheckpointSink) -> None:
        self.job = job
        self.sink = sink
        every = getattr(sink, "snapshot_every", None)
        self.every = DEFAULT_EVERY if not every else int(every)
        #: cycles below this are being re-executed (a resume without checkpoints):
        #: none is written for them, and the first written is a snapshot
        self.start_at = int(getattr(sink, "checkpoint_from", 0))
        self.lines = 0          # trace lines committed so far
        self.snapshot_size = 0  # bytes of the last snapshot
        self.since = 0          # bytes of the deltas since
        self.since_cycles = 0
        self.need_snapshot = True
        store = job.store
        store.touched = set()
        store.packed = []  # (the trace rows hand over the new facts' values they pack)
        store.left = []
        #: the job's parts read at every cycle (none is replaced while it runs)
        self._store, self._merger, self._raw = store, job.merger, job.trace.raw
        self._n = 0
        self._cycles = 0
        self._confidence: dict[int, float] = {}
        self._evaluations: dict[int, int] = {}
        self._logs: list[int] = []
        self._fired: dict[str, set[tuple[int, ...]]] = {}
        self._later = False
        #: the last cycle handed to the sink waiting (no checkpoint staged yet): its
        #: number, lines, restarts flag and what comes after it (see :meth:`flush`)
        #: (the last element None: to be worked out from the cycle's end event, kept
        #: in _pending_end, when the job ends after it — see waits)
        self._pending: tuple[int, int, bool, tuple[int, bool, bool] | None] | None = None
        self._pending_end: tuple[Any, ...] = ()
        #: what comes after a waiting cycle is worked out at once (not when the job
        #: ends after it): a program whose gates or invariants may change it after
        self._eager = job.gates is not None or job.guard is not None
        #: a program that can remove facts: each waiting cycle's step for the
        #: fingerprints' replay (:meth:`_step`), the facts touched by those cycles,
        #: and the next id after the last step
        self._stepping = store.retractable
        #: stepping without intents: :meth:`waits` notes a step as three ints itself
        self._plain_steps = store.retractable and not store.intent_types
        #: the first cycle :meth:`waits` may leave what comes after it for later (not
        #: cycle 0, nor a re-executed one; none for a program with gates or invariants)
        self._waits_from = sys.maxsize if self._eager else max(self.start_at, 1)
        #: the first cycle the engine may hold and note later, with the others it held
        #: (:meth:`waited`), instead of calling :meth:`waits` as it ends (unless the
        #: next cycle restarts, :attr:`later`): a step is then read from the cycle's
        #: end event and what the engine noted of it (none for a program with intents,
        #: whose steps look at each fact that left)
        self._defers_from = (self._waits_from if self._plain_steps or not self._stepping
                             else sys.maxsize)
        self.defers_from = self._defers_from
        #: each tier's index among the program's (computed once: a property)
        self._tier_index = {t: i for i, t in enumerate(job.program.tiers)}
        #: each tier's ``one at a time`` agents (a tier whose firing changed nothing
        #: runs again while one of them fired): computed once, not every cycle
        self._one_at_a_time: dict[int, tuple[int, ...]] = {}
        for a, spec in enumerate(job.program.agents):
            if spec.one_at_a_time:
                self._one_at_a_time[spec.tier] = (
                    *self._one_at_a_time.get(spec.tier, ()), a)
        #: the waiting cycles' steps since the last checkpoint, STEP_FIELDS ints each
        #: (see steps_part), and for a program with intents a byte per id of the
        #: store's ``left`` the steps took, 1 for an intent that closed
        self._steps: list[int] = []
        self._closed_left = bytearray()
        #: a program with approval gates: a cycle may apply decisions (see _deciding)
        self._gated = job.gates is not None
        #: the JSON texts of the facts' types and values ``[0, n)`` as the deltas
        #: encoded them, slice by slice: a fact's never change, and a snapshot holds
        #: every fact's (for a job whose context grows, half what checkpoints encode)
        self._texts: dict[str, list[str]] = {"types": [], "values": []}
        self._binary: list[bytes] = []  # (their columns' binary, in the same order)
        self._texts_n = 0
        #: the facts' types, values and columns' binary as the snapshots hold them (the
        #: texts above, joined), compressed: a part a snapshot, for the facts it
        #: encoded (the pieces of the texts above are then dropped), which each later
        #: snapshot's zlib stream holds again as it is (see _snapshot_data)
        self._deflated: dict[str, list[tuple[bytes, int, int]]] = {
            "types": [], "values": [], "binary": [], "starts": [], "numbers": []}
        #: whether a part above holds list items (the next one starts with a comma)
        self._items: dict[str, bool] = {"types": False, "values": False}
        #: the cycles' starts and numbers the parts above hold (all but the last
        #: cycle's, which a later cycle may renumber: see FactStore.begin_cycle)
        self._cycles_kept = 0
        #: the number of fields of each type whose fields are all required ints: their
        #: facts may be written as columns (format 4; see COLUMNS_FROM)
        self._columnar = {
            t.id: len(t.fields) for t in job.program.types
            if t.fields and all(f.type.base == "int" and not f.type.optional
                                for f in t.fields)}
        #: the facts' types as a string (format 3; see TYPE_CHARS)
        self._chars = store.layout.types <= len(TYPE_CHARS)
        self._shadow()

    def later_inputs(self) -> None:
        """The next cycle merges input facts that came later (a session's): after it
        the tiers run from the first, and the fingerprints start over."""
        self._later = True
        self.defers_from = sys.maxsize  # (until that cycle's waits or stage)

    def stop(self) -> None:
        """Write no more checkpoints for this job."""
        self.job.checkpoints = None
        self.job.store.touched = None
        self.job.store.packed = None
        self.job.store.left = None

    def stage(self, cycle: int, lines: int) -> None:
        """Stage the checkpoint of ``cycle``, whose ``lines`` trace lines are being
        committed; a state the format cannot hold stops the checkpoints."""
        self.lines += lines
        restarts = self._restarts(cycle)
        if restarts is None:
            return
        try:
            self._stage(cycle, lines, restarts, self._next(cycle, restarts))
        except Unsupported:
            self.stop()

    def _restarts(self, cycle: int) -> bool | None:
        """What :meth:`stage` and :meth:`waits` first ask of ``cycle`` as it ends:
        whether it merged decisions or later inputs (``restarts``, as :meth:`_next`
        takes it), or None for a cycle before :attr:`start_at` (a resume's
        re-executed cycle: shadowed, nothing to stage)."""
        restarts = self._later
        if restarts:
            self._later = False
            self.defers_from = self._defers_from
        elif self._gated:
            restarts = self._deciding(cycle)
        if cycle < self.start_at:
            self._shadow()
            return None
        return restarts

    def waits(self, cycle: int) -> None:
        """``cycle`` ended and the sink keeps it waiting for a later transaction (group
        commit; its lines are counted at the commit): nothing is staged, only what the
        next checkpoint needs of this cycle is noted (see :meth:`flush`). A crash
        loses the waiting cycles anyway: only the checkpoint of the cycle a
        transaction ends with is ever read (the fingerprints' replay excepted: it
        gets this cycle's step)."""
        if self._later or cycle < self._waits_from:
            self._waits(cycle)
            return
        # what comes after the cycle (_next, half of this call's time) is read only
        # if it is the job's last: worked out then (flush), from the state the cycle
        # left, which no later step of the job changes without a cycle of its own (this
        # path is not taken by programs with gates or invariants, whose ending steps
        # do); a cycle followed by another went on, so its fingerprint was noted iff it
        # changed the context (flush corrects the last step's flag)
        raw = self._raw
        ev = raw[-1] if raw else None
        if ev is None or ev[0] != E_CYCLE_END or ev[1] != cycle:
            self.stop()  # (as _next: "a cycle that is not a tier's")
            return
        self._pending = (cycle, 0, False, None)
        self._pending_end = ev
        if self._plain_steps:  # (_step, inlined: this runs each waiting cycle)
            merger, store = self._merger, self._store
            left = store.left
            assert left is not None
            # (a list: array.extend of a tuple costs ~4x list.extend's)
            self._steps.extend((cycle * 4 + (1 if merger.added or merger.removed else 0),
                                len(store.values), len(left)))
        elif self._stepping:
            merger = self._merger
            self._step(cycle, bool(merger.added or merger.removed), False)

    def waited(self, held: Sequence[tuple[int, int, int, int]]) -> None:
        """:meth:`waits` for each cycle of ``held``, in order, each ``(cycle, where its
        events end in the trace, the fact store's next id and how many facts of its
        :attr:`~FactStore.left` had left as it ended)``: cycles from
        :attr:`defers_from` on, the next one no restart, that the engine held and
        handed to the sink together (their events still in the trace's memory)."""
        if not held or self.job.checkpoints is None:
            return
        raw = self._raw
        spilled = self.job.trace._spilled
        steps = self._steps if self._plain_steps else None
        ev: Any = None
        for cycle, end, n, gone in held:
            at = end - 1 - spilled
            ev = raw[at] if 0 <= at < len(raw) else None
            if ev is None or ev[0] != E_CYCLE_END or ev[1] != cycle:
                self.stop()  # (as _next: "a cycle that is not a tier's")
                return
            if steps is not None:  # (as waits notes it: its end event has added, removed)
                steps.extend((cycle * 4 + (1 if ev[3] or ev[4] else 0), n, gone))
        self._pending = (held[-1][0], 0, False, None)
        self._pending_end = ev

    def _waits(self, cycle: int) -> None:
        """:meth:`waits` for a cycle of a program with gates or invariants, cycle 0, a
        restart or a re-executed cycle: what comes after it worked out now."""
        restarts = self._restarts(cycle)
        if restarts is None:
            return
        try:
            after = self._next(cycle, restarts)
            self._pending = (cycle, 0, restarts, after)
            if self._stepping:
                self._step(cycle, after[2], restarts)
        except Unsupported:
            self.stop()

    def counted(self, lines: int, last: int) -> None:
        """The job ends: the cycles that waited (handed to :meth:`stage` with no
        lines: a sink counts them when it encodes them, at the commit) give ``lines``
        trace lines, ``last`` of them the last one's, whose checkpoint :meth:`flush`
        stages."""
        self.lines += lines
        pending = self._pending
        if pending is not None:
            self._pending = (pending[0], last, *pending[2:])

    def flush(self) -> None:
        """The job ended (cleanly) after its last cycle was handed to the sink waiting:
        stage that cycle's checkpoint now, for the sink's last transaction. (The state
        is the cycle's still: ending changes only the trace and the meter's report.)"""
        pending = self._pending
        if pending is None or self.job.checkpoints is None:
            return
        cycle, lines, restarts, after = pending
        try:
            if after is None:  # (waits left it for now)
                after = self._next(cycle, restarts, self._pending_end)
                steps = self._steps
                if steps and steps[-STEP_FIELDS] >> 2 == cycle:
                    steps[-STEP_FIELDS] = steps[-STEP_FIELDS] & ~1 | after[2]
            self._stage(cycle, lines, restarts, after)
        except Unsupported:
            self.stop()

    def _stage(self, cycle: int, lines: int, restarts: bool,
               after: tuple[int, bool, bool]) -> None:
        """Stage the checkpoint of ``cycle`` (a delta from the last one staged, with the
        steps of the cycles between, or a snapshot)."""
        try:
            state = self._job_state(cycle, lines, restarts, after)
            if not self.need_snapshot:
                doc, gone = self._delta(state)
                texts, binary = self._facts_texts(self._n)
                facts_binary = len(binary)
                if self._steps:
                    doc["steps"], steps = self._steps_part(len(binary))
                    binary += steps
                store, k = self._store, doc["k"]
                # (the cycles' starts and numbers: like the facts, only appended to)
                doc["cols"], cols = columns_part(
                    {"gone": gone, "starts": store.cycle_starts[k:],
                     "numbers": store.cycle_numbers[k:]}, len(binary))
                binary += cols
                doc[SUM] = zlib.adler32(binary)
                text = _text(doc, texts)
                data = _stored(text, binary)
                # the size rule counts what a snapshot taken now would not hold
                # again: a snapshot holds every fact ever merged and every cycle's
                # start, so the deltas' share of those is no extra work for a resume
                # (counting it wrote a growing context again at every doubling)
                # (in the binary: the facts' columns and the cycles', held again)
                again = sum(len(t) for t in texts.values()) + facts_binary + sum(
                    count * array(code).itemsize
                    for name, count, code in doc["cols"][1:] if name != "gone")
                whole = len(text) + len(binary)
                extra = len(data) * max(whole - again, 0) // max(whole, 1)
                if (self.since + extra <= self.snapshot_size
                        and self.since_cycles < self.every):
                    self.since += extra
                    self.since_cycles += 1
                    self.sink.stage_checkpoint(cycle, DELTA, data)
                    return
            data = self._snapshot_data(self._snapshot(state))
        finally:
            self._shadow()
        self.sink.stage_checkpoint(cycle, SNAPSHOT, data)
        self.snapshot_size, self.since, self.since_cycles = len(data), 0, 0
        self.need_snapshot = False

    def _snapshot_data(self, doc: dict[str, Any]) -> bytes:
        """The snapshot ``doc`` as :func:`pack` stores it, with the facts' types and
        values (and their columns) of every fact ever merged and every cycle's start
        and number, whose zlib stream is made of the compressed parts of those that
        earlier snapshots made (a snapshot holds every fact and cycle, and a job whose
        dead facts pile up wrote them all again at each one: for item 10's pruned job
        most of what its snapshots encoded and compressed) and the rest, compressed
        now: the same bytes once uncompressed."""
        self._keep()
        store = self.job.store
        texts, parts = self._texts, self._deflated
        for key in ("types", "values"):
            pieces = texts[key]
            if not pieces:
                continue
            if pieces[0][:1] == '"':  # (the types as a string: see _types)
                text = "".join([t[1:-1] for t in pieces])
            else:
                text = ",".join([t[1:-1] for t in pieces if len(t) > 2])
                if text and self._items[key]:
                    text = "," + text
                self._items[key] = self._items[key] or bool(text)
            if text:
                parts[key].append(_deflated(text.encode("utf-8", "surrogatepass")))
            texts[key] = []
        binary = b"".join(self._binary)
        if binary:
            parts["binary"].append(_deflated(binary))
        self._binary = []
        cycles = {"starts": store.cycle_starts, "numbers": store.cycle_numbers}
        kept, stable = self._cycles_kept, max(len(store.cycle_starts) - 1, 0)
        rest: dict[str, str] = {"types": "", "values": ""}
        for key, column in cycles.items():
            if kept < stable:
                text = _dumps(column[kept:stable].tolist())[1:-1]
                parts[key].append(_deflated((f",{text}" if kept else text).encode()))
            text = _dumps(column[stable:].tolist())[1:-1]
            rest[key] = f",{text}" if stable and text else text
        self._cycles_kept = stable
        steps = b""
        if self._steps:
            doc["steps"], steps = self._steps_part(
                sum(length for _, length, _ in parts["binary"]))
        if parts["binary"] or steps:  # (the binary's sum, from its parts' sums)
            adler = 1
            for _, length, checksum in parts["binary"]:
                adler = _adler32_combine(adler, checksum, length)
            doc[SUM] = zlib.adler32(steps, adler)
        brackets = {"types": ('"', '"') if self._chars else ("[", "]"),
                    "values": ("[", "]"), "starts": ("[", "]"), "numbers": ("[", "]")}
        # (a JSON text holds no NUL: it writes one in a string as \u0000)
        between = _text(doc, dict.fromkeys(brackets, "\0")).split("\0")
        stream: list[tuple[bytes, int, int]] = []
        text = between[0]
        for i, (key, (opens, closes)) in enumerate(brackets.items()):
            stream.append(_deflated(f"{text}{opens}".encode("utf-8", "surrogatepass")))
            stream.extend(parts[key])
            text = f"{rest[key]}{closes}{between[i + 1]}"
        if parts["binary"] or steps:
            text += "\0"  # (the columns' binary after the text: see pack)
        stream.append(_deflated(text.encode("utf-8", "surrogatepass")))
        stream.extend(parts["binary"])
        if steps:
            stream.append(_deflated(steps))
        if sum(length for _, length, _ in stream) < COMPRESS_FROM:  # (kept as text)
            return zlib.decompress(_zlib_stream(stream))
        return _zlib_stream(stream)

    def _keep(self) -> None:
        """Encode the facts not encoded yet and keep their texts for the next snapshot
        (see :meth:`_facts_texts`)."""
        store = self.job.store
        n1, kept = store.next_id, self._texts_n
        if kept < n1:
            new, binary = _facts_text(store, kept, n1, self._chars, self._columnar,
                                      self._handed())
            for key, text in new.items():
                self._texts[key].append(text)
            self._binary.append(binary)
            self._texts_n = n1

    def _handed(self) -> list[Packed]:
        """The new facts' values the trace rows packed since the last call
        (:attr:`FactStore.packed`), in order of their ids; the list is emptied."""
        store = self.job.store
        handed = store.packed
        if not handed:
            return []
        store.packed = []
        return handed

    def _facts_texts(self, n0: int) -> tuple[dict[str, str], bytes]:
        """The JSON texts of the facts' ``types`` and ``values`` from ``n0`` (where the
        last checkpoint ended) on, and their columns' binary: what was not encoded yet
        is, and kept for the next snapshot when it continues what is kept."""
        store = self.job.store
        n1, kept, texts = store.next_id, self._texts_n, self._texts
        chars, columnar = self._chars, self._columnar
        if n0 > kept:  # (a resumed job's first delta: the facts before are not kept)
            return _facts_text(store, n0, n1, chars, columnar, self._handed())
        self._keep()
        if n0 == kept and kept < n1:
            return {key: t[-1] for key, t in texts.items()}, self._binary[-1]
        return _facts_text(store, n0, n1, chars, columnar)

    def _steps_part(self, at: int) -> tuple[dict[str, Any], bytes]:
        """The waiting cycles' steps since the last checkpoint as :func:`steps_part`
        writes them, their binary from byte ``at`` of the checkpoint's."""
        steps = self._steps
        left = self._store.left
        assert left is not None
        end = steps[-1]
        closed = self._closed_left[:end] if self._store.intent_types else None
        return steps_part(steps, left[:end], closed, at)

    def _step(self, cycle: int, noted: bool, reset: bool) -> None:
        """Note what the fingerprints' replay needs of ``cycle``, which waits for a
        later cycle's checkpoint: the next fact id after it, how many of the store's
        :attr:`~FactStore.left` had left by its end (the facts that left the context
        or closed in it are the part since the last step: a fact leaves only through
        ``_unlink`` or ``update_in_place``, which append it there, and never comes
        back — its id is not used again —, so no look-up per fact the cycle touched),
        which of those closed, whether the job noted the context's fingerprint and
        whether the fingerprints started over (see :func:`steps_part`)."""
        store = self._store
        left = store.left
        assert left is not None
        n = len(left)
        if store.intent_types:  # (only an intent closes)
            marks = self._closed_left
            is_closed = store.is_closed
            marks.extend([1 if is_closed(fid) else 0 for fid in left[len(marks):n]])
        self._steps.extend((cycle * 4 + noted + 2 * reset, len(store.values), n))

    def resumed(self, snapshot_size: int, since: int, since_cycles: int) -> None:
        """The job was restored from checkpoints: go on with deltas after them."""
        self.snapshot_size, self.since, self.since_cycles = snapshot_size, since, since_cycles
        self.need_snapshot = False
        self._texts, self._texts_n = {"types": [], "values": []}, 0  # restored facts
        self._binary = []
        self._deflated = {"types": [], "values": [], "binary": [], "starts": [],
                          "numbers": []}
        self._items = {"types": False, "values": False}
        self._cycles_kept = 0
        self._shadow()

    def _shadow(self) -> None:
        """Note the state now: the next delta is what changed from here."""
        store = self.job.store
        self._n = store.next_id
        self._cycles = len(store.cycle_starts)
        assert store.touched is not None and store.left is not None
        store.touched.clear()
        store.left.clear()
        self._steps = []
        self._closed_left = bytearray()
        self._pending = None
        self._confidence = dict(store.confidence)
        self._evaluations = {fid: len(e) for fid, e in store.evaluations.items()}
        self._logs = [-1 if log is None else len(log) for log in store.removal_log]
        self._fired = {name: set(done) for name, done in store.fired.items()}
        job = self.job
        self._violations = 0 if job.guard is None else len(job.guard.violations)
        self._decided = 0 if job.gates is None else len(job.gates.decided)

    def _tails(self, features: dict[str, Any]) -> dict[str, Any]:
        """``features`` for a delta: the lists that only grow (the violations, the
        decisions applied) hold what came since the last checkpoint, from ``since``."""
        out = dict(features)
        for name, key, n in (("guard", "violations", self._violations),
                             ("gates", "decided", self._decided)):
            if name in out:
                part = dict(out[name])
                part[key], part["since"] = part[key][n:], n
                out[name] = part
        return out

    def _next(self, cycle: int, restarts: bool,
              ev: tuple[Any, ...] | None = None) -> tuple[int, bool, bool]:
        """What the job does after committing ``cycle`` (``restarts``: a cycle that
        merged decisions or later inputs): ``(tier index, whether it goes on — else it
        ends —, whether the context's fingerprint is noted)``; ``ev``: the cycle's end
        event (else the trace's last)."""
        if cycle == 0:
            return 0, True, False  # start() noted it before the commit
        if ev is None:
            raw = self._raw
            ev = raw[-1] if raw else None
        if ev is None or ev[0] != E_CYCLE_END or ev[1] != cycle:
            raise Unsupported("a cycle that is not a tier's")
        # (a program without agents has no tiers: its later inputs' cycles say 0)
        index = self._tier_index.get(ev[2], 0)
        job, merger = self.job, self._merger
        if (merger.stop is not None or job.tools.exhausted
                or (job.guard is not None and self._broke(cycle))):
            return index, False, False
        if restarts:
            # the decisions' or later inputs' own cycle: the tiers run again from the
            # first, and the fingerprints start over (a context brought back from
            # outside the job is no loop)
            return 0, True, self._stepping
        if not (merger.added or merger.removed):
            fired = job.fired
            stepped = any(fired[a] for a in self._one_at_a_time.get(ev[2], ()))
            return (index if stepped else index + 1), True, False
        if not self._stepping:
            return index, True, False
        asked, earlier = job.returned_to  # (the cycle loop's look-up, if it made it)
        if asked != cycle:
            earlier = job.fingerprints.get(self._store.fingerprint)
        if earlier is not None:
            return index, False, False  # oscillating: the job ends
        return index, True, True

    def _broke(self, cycle: int) -> bool:
        """Whether an invariant was found broken after ``cycle`` (the job ends)."""
        guard = self.job.guard
        if guard is None or not guard.violations:
            return False
        last = guard.violations[-1]
        return bool(last["cycle"] == cycle and last["outcome"] == "job_ended")

    def _deciding(self, cycle: int) -> bool:
        """Whether ``cycle`` applied decisions on held facts (a cycle of its own)."""
        if self.job.gates is None:
            return False
        for ev in reversed(self.job.trace.raw):
            if ev[0] == E_APPROVAL_DECIDED:
                return True
            if ev[0] == E_CYCLE_START and ev[1] == cycle:
                return False
        return False

    def _features(self) -> dict[str, Any]:
        """The state of the features a program may use, beyond the fact store's."""
        job = self.job
        doc: dict[str, Any] = {}
        if job.guard is not None:
            doc["guard"] = job.guard.state()
        if job.gates is not None:
            doc["gates"] = job.gates.state()
        if job.knowledge.size:
            doc["knowledge"] = job.knowledge.size
        store = job.store
        if store.later_inputs:
            doc["later_inputs"] = sorted(store.later_inputs)
        if not store.layout.static and not store.layout.lazy:
            # (the layout of a store that takes later inputs: see open_for_inputs;
            # opening one that had it from the start changes nothing)
            doc["opened"] = True
        return doc

    def _job_state(self, cycle: int, lines: int, restarts: bool,
                   after: tuple[int, bool, bool]) -> dict[str, Any]:
        job = self.job
        meter = job.meter
        tier, goes_on, noted = after
        return {
            "cycle": cycle, "lines": self.lines, "cycle_lines": lines,
            "tier": tier, "goes_on": goes_on, "noted": noted,
            "reset": restarts, "features": self._features(),
            "watermark": job.watermark, "ran": job.ran, "seen": job.seen_removals,
            "fired": job.fired,
            "meter": [meter.facts_peak, meter.cycles, meter.agents_peak, job.tools.used,
                      meter.timeouts],
            "conflicts": job.merger.keyed.count,
            "removals": job.store.removals, "live_count": job.store.live_count,
            "index_active": job.store.index_active,
        }

    def _delta(self, state: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        """A delta's document (its facts' texts, steps and columns not in it yet: see
        :meth:`_stage`) and the ids of the facts that left the context since the last
        checkpoint."""
        store = self.job.store
        n0, n1 = self._n, store.next_id
        assert store.touched is not None and store.left is not None
        # the facts older than n0 whose state changed are among those the store noted
        # as touched or as having left (FactStore.touched); those ids of new facts are
        # in the delta anyway, as any new fact's
        ids = sorted(store.touched.union(store.left))
        old = ids[:bisect_left(ids, n0)]
        live, type_of = store.live, store.type_of
        # a fact leaves the context only through the store's ``_unlink`` or
        # ``update_in_place``, which note it in ``left``: the facts added since that
        # are gone are among those, and asking the others (every fact added, for a
        # closure hundreds of thousands of bisections) was half of what a delta cost
        gone = [fid for fid in ids if fid not in live[type_of[fid]]]
        closed: list[int] = []
        if gone and store.intent_types:  # (only an intent closes)
            is_closed = store.is_closed
            closed = [fid for fid in gone if is_closed(fid)]
            gone = [fid for fid in gone if not is_closed(fid)]
        derivations, dependents = store.derivations, store.dependents
        k = self._cycles - 1
        doc: dict[str, Any] = {
            "format": FORMAT, "kind": DELTA, "n0": n0,
            "types": None, "values": None,  # (spliced: see _facts_texts)
            "k": k,  # (the columns gone, starts and numbers: see _stage)
            "closed": closed,
            "derivs": [[f, _listed(derivations.get(f))] for f in old]
            + ([[f, records(derivations[f])] for f in range(n0, n1) if f in derivations]
               if derivations else []),
            "deps": [[f, _ids(dependents.get(f))] for f in old]
            + ([[f, dependent_ids(dependents[f])] for f in range(n0, n1) if f in dependents]
               if dependents else []),
            "confidence": [[f, c] for f, c in store.confidence.items()
                           if self._confidence.get(f) != c],
            "evaluations": [[f, e[self._evaluations.get(f, 0):]]
                            for f, e in store.evaluations.items()
                            if len(e) != self._evaluations.get(f, -1)],
            "logs": [[t, log[self._logs[t]:].tolist()]
                     for t, log in enumerate(store.removal_log)
                     if log is not None and len(log) != self._logs[t]],
            "fired_sets": [[name, sorted(done - self._fired.get(name, set()))]
                           for name, done in store.fired.items()
                           if len(done) != len(self._fired.get(name, ()))],
            "job": {**state, "features": self._tails(state["features"])},
        }
        return doc, gone

    def _snapshot(self, state: dict[str, Any]) -> dict[str, Any]:
        store = self.job.store
        live: list[list[Any]] = []
        for ids in store.live:
            if isinstance(ids, IdRange):
                live.append(["r", ids.start, ids.stop])
            elif isinstance(ids, IdList):
                live.append(["l", ids.starts.tolist(), ids.stops.tolist()])
            else:
                live.append(["d", list(ids)])
        doc: dict[str, Any] = {
            "format": FORMAT, "kind": SNAPSHOT,
            # (spliced: see _snapshot_data)
            "types": None, "values": None, "starts": None, "numbers": None,
            "n_inputs": store.n_inputs, "live": live,
            "closed": sorted(f for closed in store._closed for f in closed.values()),
            "derivs": [[f, records(e)] for f, e in sorted(store.derivations.items())],
            "deps": [[f, dependent_ids(e)] for f, e in sorted(store.dependents.items())],
            "confidence": sorted(store.confidence.items()),
            "evaluations": sorted(store.evaluations.items()),
            "logs": [None if log is None else log.tolist() for log in store.removal_log],
            "fired_sets": sorted([name, sorted(done)] for name, done in store.fired.items()),
            "job": state,
        }
        return doc


# ------------------------------------------------------------------ restoring


def _listed(entry: Derivations | None) -> Sequence[Derivation] | None:
    """A fact's derivations as a checkpoint writes them (a list, whatever the store's
    entry), or None for none."""
    return None if entry is None else records(entry)


def _ids(entry: Dependents | None) -> Sequence[int] | None:
    """The facts resting on a fact as a checkpoint writes them (a list, whatever the
    store's entry), or None for none."""
    return None if entry is None else dependent_ids(entry)


def _dependents(ids: Sequence[int]) -> Dependents:
    return ids[0] if len(ids) == 1 else list(ids)


def _derivations(rows: Iterable[Sequence[Any]]) -> Derivations:
    return derivation_entry([(int(a), int(c), tuple(s)) for a, c, s in rows])


def _load_snapshot(store: FactStore, doc: dict[str, Any]) -> None:
    store.values = _values(doc)
    store.type_of = _type_ids(doc["types"])
    store.cycle_starts = array("q", doc["starts"])
    store.cycle_numbers = array("q", doc["numbers"])
    store.n_inputs = int(doc["n_inputs"])
    for t, (kind, *parts) in enumerate(doc["live"]):
        if kind == "r":
            store.live[t] = IdRange(parts[0], parts[1])
        elif kind == "l":
            ids = IdList()
            for start, stop in zip(parts[0], parts[1], strict=True):
                ids.extend(start, stop)
            store.live[t] = ids
        else:
            store.live[t] = dict.fromkeys(parts[0])
    for closed in store._closed:
        closed.clear()
    for fid in doc["closed"]:
        store._closed[store.type_of[fid]][store.values[fid]] = fid
    store.derivations = {int(f): _derivations(r) for f, r in doc["derivs"]}
    store.dependents = {int(f): _dependents(d) for f, d in doc["deps"]}
    store.confidence = {int(f): float(c) for f, c in doc["confidence"]}
    store.evaluations = {int(f): [(int(a), float(s), r) for a, s, r in e]
                         for f, e in doc["evaluations"]}
    store.removal_log = [None if log is None else array("q", log) for log in doc["logs"]]
    store.fired = {name: {tuple(s) for s in done} for name, done in doc["fired_sets"]}


def _apply_delta(store: FactStore, doc: dict[str, Any]) -> None:
    n0 = int(doc["n0"])
    if store.next_id != n0:
        raise Unsupported(f"a delta from fact {n0} on a state of {store.next_id} facts")
    store.values.extend(_values(doc))
    store.type_of.extend(_type_ids(doc["types"]))
    n1 = store.next_id
    k = int(doc["k"])
    del store.cycle_starts[k:]
    del store.cycle_numbers[k:]
    gone_ids, starts, numbers = _delta_lists(doc)
    store.cycle_starts.extend(array("q", starts))
    store.cycle_numbers.extend(array("q", numbers))
    gone, closed = set(gone_ids), set(doc["closed"])
    live, type_of, values = store.live, store.type_of, store.values
    for fid in sorted(gone | closed):
        if fid >= n0:
            break
        ids = live[type_of[fid]]
        if fid in ids:
            del ids[fid]
    for fid in range(n0, n1):
        if fid not in gone and fid not in closed:
            live[type_of[fid]][fid] = None
    for fid in closed:
        store._closed[type_of[fid]][values[fid]] = fid
    for fid, rows in doc["derivs"]:
        if rows is None:
            store.derivations.pop(fid, None)
        else:
            store.derivations[fid] = _derivations(rows)
    for fid, deps in doc["deps"]:
        if deps is None:
            store.dependents.pop(fid, None)
        else:
            store.dependents[fid] = _dependents(deps)
    for fid, c in doc["confidence"]:
        store.confidence[int(fid)] = float(c)
    for fid, added in doc["evaluations"]:
        store.evaluations.setdefault(int(fid), []).extend(
            (int(a), float(s), r) for a, s, r in added)
    for t, tail in doc["logs"]:
        log = store.removal_log[t]
        assert log is not None
        log.extend(array("q", tail))
    for name, done in doc["fired_sets"]:
        store.fired.setdefault(name, set()).update(tuple(s) for s in done)


def _finish_store(store: FactStore, state: dict[str, Any]) -> None:
    """What the checkpoints do not hold, rebuilt: indexes, lookups, fingerprint."""
    store.removals = [int(n) for n in state["removals"]]
    store.live_count = int(state["live_count"])
    store.index_active = [bool(a) for a in state["index_active"]]
    for index_id, index in enumerate(store.indexes):
        index.clear()
        if store.index_active[index_id]:
            store._fill(index_id)
    store._rebuild_plan()
    n = store.layout.types
    store._same = [None] * n
    store._keyed = [None] * n
    if store.retractable:
        fp1 = fp2 = 0
        values, type_of = store.values, store.type_of
        for t, ids in enumerate(store.live):
            for fid in ids:
                h1, h2 = fact_terms(t, values[fid])
                fp1 += h1
                fp2 += h2
        for closed in store._closed:
            for vals, fid in closed.items():
                h1, h2 = fact_terms(type_of[fid], vals, closed=True)
                fp1 += h1
                fp2 += h2
        store.fp1, store.fp2 = fp1 & MASK, fp2 & MASK


def _fingerprints(store: FactStore, rows: Iterable[bytes]) -> FingerprintIndex:
    """The fingerprints of the contexts after each cycle the job noted one for, in
    this process's ``hash``: the states replayed from the checkpoints since cycle 0
    (only which facts were live or closed; their values are the restored store's),
    each checkpoint's ``steps`` first (the cycles that waited for its transaction)."""
    index = FingerprintIndex()
    status = bytearray(store.next_id)  # 0 gone (or not yet there), 1 live, 2 closed
    values, type_of = store.values, store.type_of
    fp1 = fp2 = 0
    n = 0  # the facts replayed so far

    def shift(fid: int, was: int, new: int) -> None:
        """Move fact ``fid`` from state ``was`` to state ``new`` in the fingerprint."""
        nonlocal fp1, fp2
        if was:
            h1, h2 = fact_terms(type_of[fid], values[fid], closed=was == 2)
            fp1 -= h1
            fp2 -= h2
        if new:
            h1, h2 = fact_terms(type_of[fid], values[fid], closed=new == 2)
            fp1 += h1
            fp2 += h2

    def changes(n0: int, n1: int, gone: set[int], closed: set[int]) -> None:
        """The facts from ``n0`` to ``n1`` came, and those in ``gone`` and ``closed``
        are so now (the others of them live)."""
        for fid in [*sorted(f for f in gone | closed if f < n0), *range(n0, n1)]:
            new = 0 if fid in gone else 2 if fid in closed else 1
            if new != status[fid]:
                shift(fid, status[fid], new)
                status[fid] = new

    def note(cycle: int, noted: bool, reset: bool) -> None:
        nonlocal index
        if reset:
            index = FingerprintIndex()  # the job's fingerprints started over here
        if cycle == 0 or noted:
            fp = (fp1 & MASK, fp2 & MASK)
            if index.get(fp) is None:
                index.add(fp, cycle)

    first = True
    for data in rows:
        doc = unpack(data)
        state = doc["job"]
        for cycle, n1, gone, closed, noted, reset in steps_of(doc):
            if not n <= int(n1) <= len(status):  # (a damaged row: not a list of 10^9)
                raise Unsupported("a checkpoint's steps name facts the store lacks")
            changes(n, int(n1), set(gone), set(closed))
            n = int(n1)
            first = False
            note(int(cycle), bool(noted), bool(reset))
        if doc["kind"] == SNAPSHOT:
            now = bytearray(len(status))
            for kind, *parts in doc["live"]:
                if kind == "r":
                    ranges: Iterable[int] = range(parts[0], parts[1])
                elif kind == "l":
                    ranges = (f for a, b in zip(parts[0], parts[1], strict=True)
                              for f in range(a, b))
                else:
                    ranges = parts[0]
                for fid in ranges:
                    now[fid] = 1
            for fid in doc["closed"]:
                now[fid] = 2
            # only the facts whose state differs from the state replayed so far
            changed = range(len(now)) if first else (
                fid for fid, (a, b) in enumerate(zip(status, now, strict=True)) if a != b)
            for fid in changed:
                shift(fid, status[fid], now[fid])
            status = now
            n = len(doc["types"])
        else:
            if first:
                raise Unsupported("the checkpoints do not start with a snapshot")
            n0 = int(doc["n0"])
            n = n0 + len(doc["types"])
            changes(n0, n, set(_delta_lists(doc)[0]), set(doc["closed"]))
        first = False
        note(int(state["cycle"]), bool(state["noted"]), bool(state.get("reset")))
    return index


BlobText = Callable[[str], "str | None"]
"""The text of a payload by its handle, from the job's store (None: not there)."""


class _Blobs:
    """Gives the ``blob`` values of restored facts their payloads back: a checkpoint
    holds a blob as its handle (a ``str``), an agent reads its text (``blob_text``)."""

    def __init__(self, program: Program, text_of: BlobText | None) -> None:
        self.text_of = text_of
        #: per type id with blob fields, each such field's position and value type
        self.fields: dict[int, list[tuple[int, Any]]] = {}
        for t in program.types:
            found = [(i, f.type) for i, f in enumerate(t.fields) if _has_blob(f.type)]
            if found:
                self.fields[t.id] = found
        self._cache: dict[str, Any] = {}

    def values(self, type_id: int, vals: tuple[Any, ...]) -> tuple[Any, ...]:
        """``vals`` of a fact of ``type_id`` with each blob a :class:`Blob` again."""
        fields = self.fields.get(type_id)
        if not fields:
            return vals
        out = list(vals)
        for i, vt in fields:
            out[i] = self._value(vt, out[i])
        return tuple(out)

    def _value(self, vt: Any, value: Any) -> Any:
        if value is None:
            return None
        if vt.base == "blob":
            return self._blob(value)
        if isinstance(value, tuple) and vt.element is not None:
            return tuple([self._value(vt.element, v) for v in value])
        return value

    def _blob(self, handle: str) -> Any:
        from converge_rules.blobs import Blob

        blob = self._cache.get(handle)
        if blob is None:
            text = None if self.text_of is None else self.text_of(str(handle))
            if text is None:
                raise Unsupported(f"the payload of {handle[:80]} is not in the store")
            blob = self._cache[handle] = Blob(str(handle), text)
        return blob

    def restore(self, store: FactStore) -> None:
        """The store's facts (their values and the closed facts' lookup) with their
        blobs' payloads."""
        if not self.fields:
            return
        values, type_of = store.values, store.type_of
        for fid in range(store.next_id):
            t = type_of[fid]
            if t in self.fields:
                values[fid] = self.values(t, values[fid])
        for t in self.fields:
            closed = store._closed[t]
            for vals, fid in list(closed.items()):
                del closed[vals]
                closed[values[fid]] = fid


def _tuples(doc: Any) -> Any:
    """JSON lists as the tuples they were (the guard's state: ids and counts)."""
    return tuple([_tuples(x) for x in doc]) if type(doc) is list else doc


def _restore_features(job: _Job, doc: Mapping[str, Any], blobs: _Blobs) -> None:
    """The features' state of the last checkpoint (see :meth:`Checkpointer._features`)."""
    if job.guard is not None:
        guard = doc.get("guard")
        if guard is None:
            raise Unsupported("no invariants' state in the checkpoint")
        job.guard.restore({**guard, "state": [_tuples(x) for x in guard["state"]]})
    if job.gates is not None:
        gates = doc.get("gates")
        if gates is None:
            raise Unsupported("no gates' state in the checkpoint")
        job.gates.restore(gates, lambda t, vals: blobs.values(t, _row(vals)))
    size = int(doc.get("knowledge", 0))
    if size:
        try:
            job.knowledge.resumed(size)
        except RuntimeError as exc:
            raise Unsupported(str(exc)) from None
    job.payloads.resumed()


def _open_for_inputs(store: FactStore) -> None:
    from converge_rules.engine.later_inputs import open_for_inputs

    open_for_inputs(store)


def restore(job: _Job, rows: Sequence[bytes], history: Iterable[bytes] | None,
            blob_text: BlobText | None = None) -> dict[str, Any]:
    """Rebuild ``job`` (new, its inputs not merged) from the checkpoint ``rows`` (the
    newest snapshot, then the deltas after it, oldest first), and its fingerprints
    from ``history`` (every checkpoint since cycle 0; needed when the program can
    remove facts); ``blob_text`` reads the payloads of its blobs from its store.
    Returns the job state of the last checkpoint. Raises :class:`Unsupported` when
    the rows do not make a state this converge can restore."""
    store = job.store
    docs: Iterator[dict[str, Any]] = (unpack(d) for d in rows)
    state: dict[str, Any] = {}
    grown: dict[str, list[Any]] = {"guard": [], "gates": []}  # violations, decisions
    for i, doc in enumerate(docs):
        if int(doc.get("format", FORMAT + 1)) > FORMAT:
            raise Unsupported(f"checkpoint format {doc.get('format')}")
        if i == 0:
            if doc["kind"] != SNAPSHOT:
                raise Unsupported("the checkpoints do not start with a snapshot")
            _load_snapshot(store, doc)
        else:
            if (doc["job"].get("features") or {}).get("opened"):
                _open_for_inputs(store)  # a session's later inputs came since
            _apply_delta(store, doc)
        state = doc["job"]
        for name, key in (("guard", "violations"), ("gates", "decided")):
            part = (state.get("features") or {}).get(name)
            if part is not None:
                since = int(part.get("since", 0))
                if since > len(grown[name]):
                    raise Unsupported(f"the {key} from {since} on a state of "
                                      f"{len(grown[name])}")
                grown[name] = [*grown[name][:since], *part[key]]
    if not state:
        raise Unsupported("no checkpoint")
    blobs = _Blobs(job.program, blob_text)
    blobs.restore(store)
    features = dict(state.get("features") or {})
    for name, key in (("guard", "violations"), ("gates", "decided")):
        if name in features:
            features[name] = {**features[name], key: grown[name]}
    if features.get("opened"):
        _open_for_inputs(store)
    store.later_inputs = {int(f) for f in features.get("later_inputs", ())}
    _finish_store(store, state)
    _restore_features(job, features, blobs)
    job.inputs = None
    job.watermark = [int(w) for w in state["watermark"]]
    job.ran = [bool(r) for r in state["ran"]]
    job.seen_removals = [tuple(s) for s in state["seen"]]
    job.fired = [bool(f) for f in state["fired"]]
    meter = job.meter
    (meter.facts_peak, meter.cycles, meter.agents_peak, meter.tool_calls,
     meter.timeouts) = (int(x) for x in state["meter"])
    job.merger.keyed.count = int(state["conflicts"])
    if store.retractable:
        if history is None:
            raise Unsupported("no checkpoints since cycle 0 for the fingerprints")
        job.fingerprints = _fingerprints(store, history)
    return state


def run_restored(
    program: Program, rows: Sequence[bytes], history: Iterable[bytes] | None, *,
    sink: Any, prefix: Callable[[Mapping[str, Any]], Iterable[str]],
    reopen: Callable[[Mapping[str, Any]], None], answers: Mapping[str, Any],
    now: Any = None, executor: Any = None, tools: Mapping[str, Any] | None = None,
    progress: Any = None, stop: Any = None, observer: Any = None, summarize: Any = None,
    timings: Any = None, decisions: Any = None, blob_text: BlobText | None = None,
    then: Callable[[_Job, Any], Any] | None = None,
    check: Callable[[_Job, Mapping[str, Any], Iterable[str]], Iterable[str]] | None = None,
) -> Any:
    """Continue a stored job from its checkpoints: the job rebuilt from ``rows`` and
    ``history`` (see :func:`restore`), its trace from ``prefix(state)`` (the stored
    lines of its committed cycles: ``state["lines"]`` of them), its tool box holding
    the committed ``answers`` (and its gates every recorded ``decisions``, those
    applied before the checkpoint marked used), its blobs' payloads read with
    ``blob_text``; then ``reopen(state)`` (the store drops the old ending
    with the first commit), and the job runs on, live, into ``sink``. ``then(job,
    result)``, if given, goes on with the session after that run (its tools still
    open: more input facts) and returns the last run's result. None — nothing
    written, ``sink`` not entered — when the checkpoints cannot be restored or the job
    would end right after its last committed cycle (the caller re-executes the job).
    ``check(job, state, lines)``, if given, passes on the stored lines the trace
    resumes with, raising to refuse the restored job (see
    :mod:`converge_rules.store.restored`): before anything is written."""
    from converge_rules._gc import paused_gc
    from converge_rules.engine.executors import SerialExecutor
    from converge_rules.engine.inputs import validate_pairs
    from converge_rules.engine.runner import _Job, job_clock

    exe = SerialExecutor() if executor is None else executor
    with paused_gc():
        job = _Job(program, validate_pairs(program, []), exe, tools, progress, stop,
                   job_clock(now), sink, observer, None, summarize=summarize,
                   timings=timings, decisions=decisions)
        try:
            state = restore(job, rows, history, blob_text)
        except (Unsupported, KeyError, ValueError, TypeError, IndexError,
                AssertionError, zlib.error):
            return None
        if not state["goes_on"] or job.checkpoints is None:
            return None
        job.tools.preload(answers, job.meter.tool_calls)
        lines = prefix(state)
        job.trace.resume_from(lines if check is None else check(job, state, lines))
        job.committed = len(job.trace)
        if job.relay is not None:
            job.relay.seen = len(job.trace)  # the observer sees the events from here on
        sizes = [len(d) for d in rows]
        job.checkpoints.resumed(sizes[0], sum(sizes[1:]), len(sizes) - 1)
        job.checkpoints.lines = int(state["lines"])
        reopen(state)
        with sink:  # an exception marks the job aborted in the sink
            try:
                if then is None:
                    result = job.converge(first_tier=int(state["tier"]))
                else:
                    try:
                        result = then(job, job.converge(first_tier=int(state["tier"]),
                                                        last=False))
                    finally:
                        job.tools.close()
            except BaseException:
                job.release_held()  # (the sink commits the cycles that ended)
                job.end_events(wait=False)
                raise
            job.end_events()
            job.stage_timings()  # what came after the last cycle's commit
            job.end_lines(sink, result)
    result.trace.written = True
    result.resumed_from = int(state["cycle"])
    return result
