"""The integrity proof of a job (issue 14, item 3): a hash chain over its trace and a
Merkle root over its final facts. docs/integrity.md says what they prove and what not.

**The chain.** Every trace line ends with a ``hash`` member, the last one of the line::

    {"cycle":1,"event":"cycle_start",...,"tier":0,"hash":"<64 hex digits>"}

The line without that member (its *canonical encoding*: the event as converge writes
it, sorted keys, compact, UTF-8) is hashed with the hash of the line before it:
``hash[i] = SHA-256(hash[i-1] + utf8(canonical[i]))`` (the 32 raw bytes of the previous
hash, :data:`GENESIS` before the first line). A line edited, deleted, moved or
inserted breaks the chain at the first line whose hash no longer follows; a trace cut
at the end is told by its missing ``status`` event, or by the result's ``trace_head``.

**The facts.** The result's ``integrity.facts_root`` is the Merkle root of its final
facts: each fact's leaf is ``SHA-256(0x00 + utf8(["Type",{fields}]))`` (compact JSON,
sorted keys), the leaves sorted, each pair combined as ``SHA-256(0x01 + left +
right)``, an odd one out carried up unchanged; no facts give ``SHA-256(b"")``.
``integrity.trace_head`` is the hash of the trace's last line.

Both digests depend only on the trace and the facts, which are the same bytes under
every executor and worker count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from converge_rules.jsontext import dumps
from converge_rules.records import record

ALGORITHM = "sha256"
GENESIS = (b"\x06$\xc5\xcc!X*\xa7W \x00D\x83u\xd5\x82A\x93\xe7.\x7f\xd9\x05\xb7\xcc\x92\xa7B"
           b"\xb6\x8b\xb0\xf0")
"""What the first line's hash is chained to: ``sha256(b"converge trace chain v1")``,
written out so that importing this module (every run does) does not load OpenSSL for
``hashlib`` (~2 ms); ``hashlib`` is imported where a hash is made."""

HASH_MEMBER = ',"hash":"'
_SUFFIX = len(HASH_MEMBER) + 64 + 2  # ,"hash":" + 64 hex digits + "}
_HEX = frozenset("0123456789abcdef")


def chain(lines: Iterable[str], head: bytes = GENESIS) -> Iterator[tuple[str, bytes]]:
    """Each canonical line with its ``hash`` member appended, and that hash (raw), the
    chain going on from ``head`` (the hash of the line before the first, raw)."""
    from hashlib import sha256 as _sha256

    for line in lines:
        head = _sha256(head + line.encode("utf-8", "surrogatepass")).digest()
        yield f'{line[:-1]}{HASH_MEMBER}{head.hex()}"}}', head


def split_hash(line: str) -> tuple[str, str | None]:
    """A trace line as (its canonical encoding, its hash in hex), or ``(line, None)``
    when it carries no well-formed hash member at its end."""
    if len(line) > _SUFFIX and line.endswith('"}'):
        at = len(line) - _SUFFIX
        if line.startswith(HASH_MEMBER, at):
            digest = line[at + len(HASH_MEMBER):-2]
            if _HEX.issuperset(digest):
                return line[:at] + "}", digest
    return line, None


def strip_hash(line: str) -> str:
    """The line without its ``hash`` member (unchanged when it has none)."""
    return split_hash(line)[0]


def fact_leaf(type_name: str, fields: Mapping[str, Any]) -> bytes:
    """The Merkle leaf of one fact (see the module's docstring)."""
    import hashlib  # here: see GENESIS

    text = dumps([type_name, dict(fields)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(b"\x00" + text.encode("utf-8", "surrogatepass")).digest()


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """The root over ``leaves`` sorted (an odd node is carried up unchanged)."""
    from hashlib import sha256 as _sha256

    level = sorted(leaves)
    if not level:
        return _sha256(b"").digest()
    while len(level) > 1:
        nxt = [_sha256(b"\x01" + level[i] + level[i + 1]).digest()
               for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def facts_root(facts: Mapping[str, Iterable[Mapping[str, Any]]]) -> str:
    """The Merkle root (hex) of a result's ``facts`` (type name → list of fields as
    JSON values); the ``@`` keys ``--confidence`` adds are not the fact's."""
    return merkle_root(
        fact_leaf(name, {k: v for k, v in fields.items() if not k.startswith("@")})
        for name, group in facts.items() for fields in group
    ).hex()


def _is_status(line: str) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("event") == "status"


@record
class Verdict:
    """What :func:`verify_lines` found. ``ok``: the chain holds from the first line to
    the last and the trace ends with its status; else ``line`` (1-based; the line
    after the last when the trace was cut) and ``problem`` say where it first fails.
    ``unhashed``: no line carries a hash (a trace written before the chain existed).
    ``head``: the last line's hash (hex), ``lines``: how many there were."""

    ok: bool
    lines: int
    head: str | None
    line: int | None = None
    problem: str | None = None
    unhashed: bool = False


def verify_lines(lines: Iterable[str], *, finished: bool = True) -> Verdict:
    """Check the chain of a trace's lines (no newlines). With ``finished`` the last
    line must be the job's ``status`` event (a finished job's trace ends with it); a
    job that never finished (a store's ``running`` job) is checked up to its last
    committed line."""
    from hashlib import sha256 as _sha256

    head = GENESIS
    number = 0
    last = ""
    rest = iter(lines)
    for number, line in enumerate(rest, 1):
        canonical, digest = split_hash(line)
        if digest is None:
            if number == 1 and not any(split_hash(other)[1] for other in rest):
                return Verdict(False, 0, None, 1, "the trace carries no hashes: it was "
                               "written by a converge without the integrity chain, or "
                               "its hashes were removed", unhashed=True)
            return Verdict(False, number, head.hex(), number,
                           'the line has no "hash" member (it was edited or inserted)')
        expected = _sha256(head + canonical.encode("utf-8", "surrogatepass")).digest()
        if expected.hex() != digest:
            return Verdict(False, number, head.hex(), number,
                           "the hash does not follow from this line and the one before it "
                           "(this line was edited, or a line before it was edited, "
                           "deleted or moved)")
        head = expected
        last = canonical
    if number == 0:
        return Verdict(False, 0, None, 1, "the trace is empty")
    if finished and not _is_status(last):
        return Verdict(False, number, head.hex(), number + 1,
                       "the trace ends without its status event: it was cut after "
                       f"line {number}")
    return Verdict(True, number, head.hex())
