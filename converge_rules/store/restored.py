"""A job restored from its checkpoints, checked against its stored trace before it runs
on (``converge run --resume``).

The checkpoints and the trace are written in the same transactions, but they are two
records: the trace is what the job did (its hash chain proves it unchanged), the
checkpoints a faster way back to where it was. A checkpoint damaged in the store, or
read back wrongly by a converge with a bug in its reader, would otherwise restore a
context that is not the job's, and the job would run on from it to a wrong result —
silently, since a resume from checkpoints re-executes no committed cycle to compare.

So every fact the restored store holds is compared with the trace's ``fact_added``
event of its id (its type and fields), the number of facts with the number of those
events, and the number of live facts with the last ``cycle_end`` event's ``live``. A
difference refuses the resume with a :class:`~converge_rules.errors.StoreError` that
names the fact and both versions; nothing is written. (Which facts are live, their
derivations and the job's other state are not checked fact by fact: the count of live
facts is the check there.)

The check reads the lines the resumed trace starts with as they pass (the store reads
them once). A fact's line is first looked for as the trace writer writes it (its
fields' JSON text, its id, its type): no JSON is parsed for it. Only a line that does
not read so (a value the writer escapes or writes another way) is parsed and compared
field by field as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from converge_rules.engine.trace import jsonable
from converge_rules.errors import StoreError
from converge_rules.jsontext import c_encoder

if TYPE_CHECKING:
    from converge_rules.engine.runner import _Job

__all__ = ["checked_lines"]

_ADDED = '"event":"fact_added"'
_CYCLE_END = '"event":"cycle_end"'


def _iso(value: Any) -> str:
    if isinstance(value, date | timedelta):
        from converge_rules.language.builtins import iso_text

        return iso_text(value)
    raise TypeError(type(value).__name__)


# fields as the trace writes them: compact, sorted keys, non-ASCII as itself
_encode = c_encoder(_iso, ascii=False, sort_keys=True)


def checked_lines(job: _Job, lines: Iterable[str], *, where: str, job_id: int,
                  cycle: int) -> Iterator[str]:
    """``lines`` (the stored trace lines of the committed cycles of a job restored from
    the checkpoint of ``cycle``), passed on as they come; a :class:`StoreError` unless
    the facts of ``job`` are those the lines add, and as many of them are live as the
    last ``cycle_end`` says (raised, at the latest, once the lines are read)."""
    store, program = job.store, job.program
    values, type_of = store.values, store.type_of
    names = [t.field_names for t in program.types]
    heads = [',"type":' + json.dumps(t.name, ensure_ascii=False) + ',"hash":"'
             for t in program.types]
    count = store.next_id
    added = 0
    fid = 0  # the id the next fact's line has, most likely (facts come in id order)
    live: int | None = None

    def refuse(what: str) -> StoreError:
        return StoreError(
            f"{where}: job {job_id} cannot be resumed from its checkpoint after cycle "
            f"{cycle}: {what}. The checkpoint is damaged (the trace is the record of what "
            "the job did: `converge verify` checks its hash chain); nothing was "
            "written. To resume the job by re-executing its committed cycles, each "
            "checked against the trace, delete its checkpoints (`DELETE FROM "
            f"checkpoints WHERE job = {job_id}`) and resume again")

    for line in lines:
        if _ADDED in line:
            if fid < count:
                t = type_of[fid]
                fast = (f'"event":"fact_added","fields":'
                        f'{_encode(dict(zip(names[t], values[fid], strict=True)))},'
                        f'"id":{fid:d},')
                if fast in line and heads[t] in line:
                    fid += 1
                    added += 1
                    yield line
                    continue
            event = json.loads(line)
            if event.get("event") == "fact_added":  # (not words inside a string)
                fid = int(event["id"])
                _compare(job, fid, event, refuse)
                fid += 1
                added += 1
        elif _CYCLE_END in line:
            event = json.loads(line)
            if event.get("event") == "cycle_end":
                live = int(event["live"])
        yield line
    if added != count:
        raise refuse(f"it holds {count} facts, its trace adds {added}")
    held = sum(len(ids) for ids in store.live)
    if live is not None and held != live:
        raise refuse(f"{held} of its facts are live, {live} in the trace after cycle "
                     f"{cycle}")


def _compare(job: _Job, fid: int, event: dict[str, Any], refuse: Any) -> None:
    """Raise ``refuse(…)`` unless fact ``fid`` of the restored store is the one the
    ``fact_added`` ``event`` adds."""
    store = job.store
    traced = f"{event['type']}{_shown(event['fields'])}"
    if not 0 <= fid < store.next_id:
        raise refuse(f"its trace adds fact {fid}, {traced}, which the checkpoint lacks "
                     f"(it holds {store.next_id} facts)")
    spec = job.program.types[store.type_of[fid]]
    fields = {n: jsonable(v) for n, v in
              zip(spec.field_names, store.values[fid], strict=True)}
    # texts compared, not values: 1 and 1.0, -0.0 and 0.0 differ, and NaN is itself
    if spec.name != event["type"] or _encode(fields) != _encode(event["fields"]):
        raise refuse(f"fact {fid} is {spec.name}{_shown(fields)} there, but {traced} in "
                     "the trace")


def _shown(fields: dict[str, Any]) -> str:
    """``(name: value, …)``, the values as JSON, cut short when long."""
    from converge_rules.text import printable

    text = ", ".join(f"{n}: {json.dumps(v, ensure_ascii=False)}" for n, v in fields.items())
    if len(text) > 200:
        text = text[:199] + "…"
    return f"({printable(text)})"
