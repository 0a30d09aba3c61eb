"""A stored job that takes more input facts: ``converge run --resume run.db --facts
more.jsonl`` (``api.resume(store, facts=…)``).

A job in a store is a session (:class:`~converge_rules.Session`) that may take more
input. Resuming it with more facts restores it from its checkpoints
(:mod:`~converge_rules.store.checkpointed`), or without usable ones re-executes it as
:mod:`~converge_rules.store.resume` does — from its stored inputs, with the tool
answers its trace recorded, every stored cycle checked line for line — then merges
the new facts as an input cycle of their own
(:meth:`~converge_rules.engine.runner._Job.merge_later`, as ``Session.add`` + ``run``
does) and re-converges incrementally from there: agents see only what is new to them.

**The record of later inputs** is the job's stored settings, not its trace: each batch
is kept as ``later: [[cycle, [[type, fields], …]], …]`` in the job spec's settings
(``version`` 2), written no later than the resumed job's first commit: that commit
records the batch as pending (``[null, rows]``, ``version`` 3) and the one of the
cycle merging it records its cycle, so a crash after the first commit (between the
decisions' cycle of a paused job and the facts' input cycle, say) never loses the
batch — a plain resume merges it where it was due. The trace alone would not do: an input fact equal
to a live derived fact adds no trace event (it only becomes an input, which no cascade
retracts afterwards), so a batch rebuilt from ``fact_added`` events could replay to a
different job. A later resume (with or without more facts) and ``converge replay``
against the store re-execute the batches at their cycles; a converge that knows only
version 1 refuses the job ("stored by a newer converge") rather than diverge.

**What equals what.** The facts of a job resumed with more facts equal those of one run
over all the facts, for the rulesets of the session contract (monotone ones, keyed
aggregates updated in place; see :mod:`converge_rules.engine.session`). The traces
differ by their cycles: the later facts enter in a cycle of their own, after the status
of the run before them (each run of a session ends with a ``status`` event).

A job takes more facts when it reached its fixpoint (``converged`` or ``unmet_goal``),
paused ``awaiting_approval`` (decided or not: the decisions recorded are applied
first, at the pause, as :meth:`Session.run <converge_rules.Session.run>` applies those
taken before the facts added), or can be resumed
(:data:`~converge_rules.store.resume.RESUMABLE`: it first runs to its end as a plain
resume would); a job that ends its re-execution otherwise (interrupted
again, out of a budget) returns that result; the new facts stay pending when a plain
resume goes on with the job (interrupted, out of ``job_timeout``), else they are not
recorded. A job holding a pending batch refuses more facts until a resume merged it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from converge_rules.errors import StoreError
from converge_rules.store.resume import (
    ReplaySink,
    Resumable,
    check_ruleset,
    inputs_text,
    job_decisions,
    read_inputs,
    recorded_answers,
)

if TYPE_CHECKING:
    from converge_rules.api import Ruleset
    from converge_rules.engine.inputs import InputFacts
    from converge_rules.engine.result import RunResult
    from converge_rules.engine.runner import _Job
    from converge_rules.program import Program

LATER_VERSION = 2
"""The settings version of a job that took later inputs (``settings["later"]``)."""

PENDING_VERSION = 3
"""The settings version of a job holding a batch of later inputs not merged yet
(``[null, rows]``, the last of ``settings["later"]``): a converge that reads only
version 2 refuses the job rather than lose the batch."""

#: statuses after which a job's session goes on with more facts: its fixpoint, or its
#: pause awaiting approval (the facts merge after the decisions recorded since it)
GOES_ON = ("converged", "unmet_goal", "awaiting_approval")


def later_batches(found: Resumable, program: Program) -> list[tuple[int, InputFacts]]:
    """The input facts ``found`` took after it started: ``(cycle, facts)`` per batch, in
    order, validated against ``program``."""
    from converge_rules.engine.inputs import validate_pairs

    out: list[tuple[int, InputFacts]] = []
    for cycle, rows in found.settings.get("later") or ():
        if cycle is None:
            continue  # the pending batch: see pending_batch
        pairs = [(str(t), fields) for t, fields in rows]
        out.append((int(cycle), validate_pairs(
            program, pairs, source=f"job {found.job.id}'s inputs of cycle {cycle}")))
    return out


def pending_batch(found: Resumable, program: Program) -> InputFacts | None:
    """The input facts a resume with more facts recorded at its first commit and whose
    input cycle was not committed yet (a crash came between), validated against
    ``program``; None when there are none. They merge as that resume would have
    merged them: after the job's run, when its session goes on."""
    from converge_rules.engine.inputs import validate_pairs

    for cycle, rows in found.settings.get("later") or ():
        if cycle is None:
            pairs = [(str(t), fields) for t, fields in rows]
            return validate_pairs(program, pairs,
                                  source=f"job {found.job.id}'s inputs given later")
    return None


def later_settings(found: Resumable, program: Program, more: InputFacts | None,
                   cycle: int | None) -> str:
    """``found``'s settings (JSON) with its later batches merged (its pending one
    dropped) and ``more`` (None: nothing) as the batch merged at ``cycle`` — None:
    pending, recorded with the resumed job's first commit so that no crash after it
    loses the facts."""
    settings = dict(found.settings)
    later = [b for b in settings.get("later") or () if b[0] is not None]
    if more is not None:
        later.append([cycle, json.loads(inputs_text(program, more))])
    if later:
        settings["later"] = later
        settings["version"] = PENDING_VERSION if cycle is None and more is not None \
            else LATER_VERSION
    return json.dumps(settings, sort_keys=True)


def keeps_pending(result: RunResult) -> bool:
    """Whether a pending batch outlives the run that ended ``result`` (not at its
    fixpoint nor a pause): kept when a plain resume goes on with the job (interrupted,
    or out of ``job_timeout``) and merges them at its end, else dropped."""
    return result.status == "interrupted" or (
        result.status == "budget_exceeded" and result.detail.startswith("job_timeout"))


def take_pending(found: Resumable, program: Program, more: InputFacts | None
                 ) -> InputFacts | None:
    """The facts to merge after the job's run: ``more``, or the batch a crashed resume
    left pending (giving facts again then is refused: they would merge twice)."""
    pending = pending_batch(found, program)
    if pending is None:
        return more
    if more is not None and len(more):
        raise StoreError(f"job {found.job.id} of {found.store.location} already holds "
                         "input facts given to a resume that did not finish; resume it "
                         "without --facts first (it merges them), then give the new ones")
    return pending


def extend(found: Resumable, ruleset: Ruleset, more: InputFacts | None, *,
           executor: Any = None, tools: Mapping[str, Any] | None = None,
           progress: Any = None, stop: Callable[[], bool] | None = None,
           observer: Any = None, summarize: Any = None, timings: Any = None
           ) -> RunResult:
    """Continue the job ``found`` with ``ruleset`` (checked to be the one it ran):
    re-execute it and the later inputs it recorded — with every decision recorded on
    its pending facts, each applied at the pause it was taken at, as the stored run
    did — then merge ``more`` (None or empty: none) as a cycle of its own, recorded
    with that cycle, and converge. ``timings`` collects the live cycles' timings. The
    result of the job's last run."""
    from converge_rules._gc import paused_gc
    from converge_rules.engine.executors import SerialExecutor
    from converge_rules.engine.runner import _Job, job_clock

    check_ruleset(found, ruleset)
    program = ruleset.program
    more = take_pending(found, program, more)
    from converge_rules.store.checkpointed import resume_from_checkpoints

    restored = resume_from_checkpoints(found, ruleset, executor=executor,
                                       tools={**ruleset.tools, **(tools or {})},
                                       progress=progress, stop=stop, observer=observer,
                                       summarize=summarize, timings=timings, more=more)
    if restored is not None:  # from the job's checkpoints: no cycle re-executed
        done: RunResult = restored
        return done
    inputs = read_inputs(found, program)
    batches = later_batches(found, program)
    store, info = found.store, found.job
    sizes = store.cycle_sizes(info.id)
    expected = sum(n for _, n, _ in sizes)
    last = sizes[-1][0] if sizes else -1
    if info.status == "budget_exceeded" and "while agent" in info.detail:
        last -= 1  # job_timeout cut agents inside the last cycle: run it again whole
    answers = recorded_answers(store.trace_lines(info.id))
    decisions = job_decisions(found)
    target = store.resume_job(info.id, expected)
    stage_settings = getattr(target, "stage_settings", None)
    if more is not None and len(more) and stage_settings is None:
        raise StoreError(f"{store.location}: this store ({type(store).__name__}) cannot "
                         "record the facts a job takes later; run a new job over all the "
                         "facts")
    if more is not None and len(more):
        assert stage_settings is not None  # recorded with the first commit, pending
        stage_settings(later_settings(found, program, more, None))
    sink = ReplaySink(target, info.id, store.trace_lines(info.id), sizes, last)
    merged: dict[str, Any] = dict(ruleset.tools)
    if tools:
        merged.update(tools)
    with sink, paused_gc():  # an exception marks the job aborted (once it went live)
        job = _Job(program, inputs, executor or SerialExecutor(), merged, progress, stop,
                   job_clock(found.now), sink, observer, answers, summarize=summarize,
                   timings=timings, decisions=decisions or None)
        del inputs
        try:
            try:
                result = _run(job, None)
                for cycle, batch in batches:
                    if result.status not in GOES_ON or job.meter.cycles + 1 != cycle:
                        sink.ended_early(result.status, result.detail)  # job_timeout
                        sink.diverged(job.meter.cycles + 1, f"the job took more input "
                                      f"facts in cycle {cycle}, after a run that ended "
                                      f"{result.status}")
                    result = _run(job, batch)
                if more is not None and len(more):
                    assert stage_settings is not None
                    if result.status in GOES_ON:  # the cycle merging them: its own
                        stage_settings(later_settings(found, program, more,
                                                      job.meter.cycles + 1))
                        result = _run(job, more)
                    elif not keeps_pending(result):  # never taken: the last commit
                        stage_settings(later_settings(found, program, None, None))
            finally:
                job.tools.close()
        except BaseException:
            job.end_events(wait=False)
            raise
        job.end_events()
        job.stage_timings()  # what came after the last cycle's commit
        sink.write_lines(result.trace.lines(job.committed))
    result.trace.written = True
    return result


def _run(job: _Job, batch: InputFacts | None) -> RunResult:
    """One run of the job's session: its start (``batch`` None) or ``batch`` merged as
    an input cycle, then converge (the tools stay open for the next run)."""
    from converge_rules.engine.runner import _Stop

    try:
        if batch is None:
            job.start()
        else:
            job.merge_later(batch)
    except _Stop as stop:
        return job._finish(stop.status, stop.detail, [], stop.loop)
    except MemoryError as exc:
        return job._out_of_memory(exc)
    return job.converge(last=False)


__all__ = ["GOES_ON", "LATER_VERSION", "PENDING_VERSION", "extend", "keeps_pending",
           "later_batches", "later_settings", "pending_batch", "take_pending"]
