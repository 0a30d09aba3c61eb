"""Resuming a stored job from its checkpoints (``converge run --resume``): the job's
state is restored from the newest snapshot and the deltas after it
(:mod:`converge_rules.engine.checkpoints`), its trace and tool answers read back from
the store, and it runs on from its last committed cycle — no committed cycle is
executed again, no recorded tool answer asked again (but for a job ended by an
exception with cycles waiting for a group's transaction: those were committed without
a checkpoint, and run again from the one before them, as after a crash).

The re-executing resume (:mod:`converge_rules.store.resume`) stays the fallback, and
the oracle the tests compare against: for a job stored without checkpoints (by an
older converge), a checkpoint
format this converge does not know, a job cut by ``job_timeout`` inside a cycle
(re-run whole), or one that would end right after its last committed cycle.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

from converge_rules.store.restored import checked_lines
from converge_rules.store.resume import Resumable, job_decisions, recorded_answers

if TYPE_CHECKING:
    from converge_rules.api import Ruleset
    from converge_rules.engine.inputs import InputFacts
    from converge_rules.engine.runner import _Job
    from converge_rules.program import Program


def resume_from_checkpoints(found: Resumable, ruleset: Ruleset, *, executor: Any = None,
                            tools: Mapping[str, Any] | None = None, progress: Any = None,
                            stop: Callable[[], bool] | None = None, observer: Any = None,
                            summarize: Any = None, timings: Any = None,
                            more: InputFacts | None = None) -> Any:
    """The :class:`~converge_rules.engine.result.RunResult` of the job ``found``
    continued from its checkpoints (its ruleset already checked), or None when they
    cannot serve (see the module) — then nothing was written. ``more``: input facts
    the job takes once it ran to its end (``--resume --facts``: see
    :mod:`~converge_rules.store.extend`), recorded in its settings with the cycle
    that merges them."""
    from converge_rules.engine import checkpoints
    from converge_rules.engine.merge import needs_dependents

    store, job = found.store, found.job
    reader = getattr(store, "checkpoints", None)
    program = ruleset.program
    if reader is None or not checkpoints.checkpointable(program):
        return None
    if job.status == "budget_exceeded" and "while agent" in job.detail:
        return None  # that cycle is re-run whole: the re-executing resume does it
    sizes = store.cycle_sizes(job.id)
    if not sizes:
        return None
    # the job goes on from its newest checkpoint: that of its last committed cycle,
    # or of an earlier one when the last cycles were committed without theirs (a job
    # ended by an exception commits the cycles waiting for a group's transaction):
    # those are dropped and run again, as the cycles a crash loses are (they called
    # no tool: a cycle that does is committed with its checkpoint)
    found_rows = list(reader(job.id, sizes[-1][0]))
    if not found_rows or not checkpoints.readable(found_rows[0][2]):
        return None
    last = found_rows[-1][0]
    rows = [data for _, _, data in found_rows]
    # a context that can shrink: the fingerprints of its earlier states come from
    # every checkpoint since cycle 0
    history = ((data for _, _, data in reader(job.id, last, since=0))
               if needs_dependents(program) else None)
    expected = sum(n for _, n, _ in sizes)
    last_bytes = [0]

    def prefix(state: Mapping[str, Any]) -> Iterator[str]:
        keep = int(state["lines"])
        first = keep - int(state["cycle_lines"])
        size = 0
        for i, line in enumerate(islice(store.trace_lines(job.id), keep)):
            if i >= first:
                size += len(line.encode("utf-8", "surrogatepass")) + 1
            yield line
        last_bytes[0] = size

    target = store.resume_job(job.id, expected)
    then = None
    if more is not None and len(more):
        stage_settings = getattr(target, "stage_settings", None)
        if stage_settings is None:
            return None  # the re-executing path says why the store cannot take them
        from converge_rules.store.extend import later_settings

        # recorded with the first commit, pending: no crash after it loses them
        stage_settings(later_settings(found, program, more, None))
        then = functools.partial(_take_more, found, program, more, stage_settings)

    def reopen(state: Mapping[str, Any]) -> None:
        target.reopen(int(state["lines"]), last, int(state["cycle_lines"]), last_bytes[0])

    def check(restored: _Job, state: Mapping[str, Any], lines: Iterable[str]) -> Iterator[str]:
        return checked_lines(restored, lines, job_id=job.id, cycle=int(state["cycle"]),
                             where=str(getattr(store, "location", "the store")))

    answers = recorded_answers(store.trace_lines(job.id))
    return checkpoints.run_restored(
        program, rows, history, sink=target, prefix=prefix, reopen=reopen,
        answers=answers, now=found.now, executor=executor, tools=tools,
        progress=progress, stop=stop, observer=observer, summarize=summarize,
        timings=timings, decisions=job_decisions(found) or None,
        blob_text=getattr(store, "blob", None), then=then, check=check)


def _take_more(found: Resumable, program: Program, more: InputFacts,
               stage_settings: Callable[[str], None], job: _Job, result: Any) -> Any:
    """The job restored from its checkpoints ran to its end (``result``): when its
    session goes on, ``more`` is recorded with the cycle that merges it and merged,
    and the job converges again; the last run's result."""
    from converge_rules.store.extend import GOES_ON, _run, keeps_pending, later_settings

    if result.status not in GOES_ON:
        if not keeps_pending(result):  # never taken: the job's last commit drops them
            stage_settings(later_settings(found, program, None, None))
        return result
    stage_settings(later_settings(found, program, more, job.meter.cycles + 1))
    return _run(job, more)
