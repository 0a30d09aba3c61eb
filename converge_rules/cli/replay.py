"""``converge replay``: run a ruleset again from a recorded trace — the same input facts,
every tool answered from the recording — and check that the new trace is the recorded
one, byte for byte. The recording is a JSON Lines trace file or a job of a store
(``run.db``, ``sqlite:///…``, ``postgresql://…``); the first divergence is reported with
its cycle, agent and fact."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from converge_rules.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    allow_path_option,
    check_executor,
    is_store,
    load_plugins,
    missing_path,
    refuse_to_overwrite,
    report_diagnostics,
    report_input_error,
    report_internal_errors,
)
from converge_rules.errors import CheckError, InputError
from converge_rules.files import write_text_atomic

if TYPE_CHECKING:
    from converge_rules.api import Ruleset
    from converge_rules.engine.result import RunResult
    from converge_rules.program import Program
from converge_rules.integrity import split_hash
from converge_rules.jsontext import jsonl_lines


@click.command("replay")
@click.argument("ruleset", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("trace", metavar="TRACE_OR_STORE")
@click.option("--job", "job", type=click.IntRange(min=1), default=None, metavar="ID",
              help="With a store: replay this job (default: the newest).")
@click.option("--executor", default="serial", show_default=True, metavar="NAME",
              help="Replay with this executor (serial, threads, asyncio, processes, or a "
                   "plugin's).")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Workers for the executor.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE", help="Also write the new trace to FILE.")
@click.option("--no-plugins", is_flag=True,
              help="Load the ruleset without the installed plugins (tools are answered "
                   "from the trace either way).")
@allow_path_option
@report_internal_errors
def command(ruleset: Path, trace: str, job: int | None, executor: str,
            workers: int | None, output: Path | None, no_plugins: bool,
            allow_paths: tuple[Path, ...]) -> None:
    """Replay a recorded job against RULESET: TRACE_OR_STORE is a trace (written by
    `converge run --trace`) or a store (`converge run --store`: run.db, sqlite:///PATH,
    postgresql://HOST/DB; --job ID, else its newest job).

    The input facts are read from the recording, every tool call is answered with the
    recorded result (no network), and the new trace must equal the recorded one line
    for line; the first difference is shown with its cycle, agent and fact. Use it to
    check determinism, or that a changed ruleset still does exactly what yesterday's
    run did.

    \b
    Examples:
      converge run pricing.cvg --facts in.jsonl --trace run.jsonl
      converge replay pricing.cvg run.jsonl
      converge replay pricing.cvg run.jsonl --executor threads --workers 8
      converge replay pricing.cvg run.jsonl -o replayed.jsonl
      converge replay pricing.cvg run.db --job 3
      converge replay pricing.cvg postgresql://db.internal/jobs --job 3

    \b
    Exit codes:
      0  the replayed trace is identical
      1  it differs (the first differing line is shown)
      2  an unreadable trace or store, a ruleset with errors, or bad usage
    """
    from converge_rules import api

    store = is_store(trace)
    if not ruleset.exists():
        raise missing_path(ruleset)
    if not store and not Path(trace).exists():
        raise missing_path(trace)
    if job is not None and not store:
        raise click.UsageError(f"--job is for a store; {trace} is a trace file, which "
                               "holds one job")
    if store and trace.startswith("sqlite:"):
        from converge_rules.store.sqlite import sqlite_path

        read: list[str | Path] = [ruleset, sqlite_path(trace)[0]]
    else:
        read = [ruleset] + ([] if "://" in trace else [trace])
    refuse_to_overwrite(output, read, "--output")
    registries = load_plugins(no_plugins=no_plugins)
    check_executor(executor, registries)
    unfinished: str | None = None
    later: list[Any] = []  # a stored job's later inputs, as given: [[cycle, rows], …]
    try:
        if store:
            recorded, events, source, unfinished, later = read_store_recording(trace, job)
        else:
            recorded, events = read_recording(Path(trace))
            source = trace
    except InputError as exc:
        report_input_error(exc)
        sys.exit(EXIT_USAGE)
    try:
        loaded = api.load(ruleset, plugins=registries, allow_paths=allow_paths)
    except CheckError as exc:
        report_diagnostics(exc, False)
        sys.exit(EXIT_USAGE)
    refuse_to_overwrite(output, loaded.files, "--output")  # its imports and cases files
    # Tools are answered from the recording only, never by a plugin: a call the
    # recording does not hold fails, and the traces then differ.
    loaded = replace(loaded, tools={})
    stop = recorded_stop(events, unfinished=unfinished is not None)
    try:
        steps = [] if later else session_steps(events, loaded.program)
        if not later and steps and not any(gone for _, gone in steps) and (
                recorded_decisions(events)):
            # a session that took decisions between its runs: each applied at the pause
            # it was taken at, before the facts added after it (as Session.run does)
            later = [[None, [[t, f] for t, f in added]] for added, _ in steps]
            result = _replay_later(loaded, events, later, executor, workers, stop,
                                   retractable=True)
        elif later:
            result = _replay_later(loaded, events, later, executor, workers, stop)
        elif not steps:
            result = api.run(loaded, input_facts(events, loaded.program), executor=executor,
                             workers=workers,
                             tools=recorded_tools(events, _called_tools(loaded)),
                             now=recorded_time(events), stop=stop,
                             decisions=recorded_decisions(events))
        else:
            result = _replay_session(loaded, events, steps, executor, workers, stop)
    except InputError as exc:
        if exc.source == "<facts>":
            # the facts are the recording's, read by a ruleset that does not declare
            # them: say so of the recording, not of an unnamed list of facts
            exc = InputError(
                f"the recorded input fact {exc.line} does not fit {ruleset}: {exc.message}",
                source=source, help=(f"{exc.help}; " if exc.help else "") + "replay a "
                "job against the ruleset it ran (a fact type or field it no longer "
                "declares makes another ruleset)")
        report_input_error(exc)
        sys.exit(EXIT_USAGE)
    replayed = list(result.trace.lines())
    if recorded and split_hash(recorded[0])[1] is None:
        # a trace written before the integrity chain: compared without the hashes
        replayed = list(result.trace.bare_lines())
    if output is not None:
        try:
            write_text_atomic(output, "".join(line + "\n" for line in replayed))
        except OSError as exc:
            raise click.UsageError(
                f"cannot write the replayed trace to {output}: {exc.strerror or exc}"
            ) from None
    # a job that did not finish is compared as far as it got: its committed cycles
    compared = replayed[:len(recorded)] if unfinished is not None else replayed
    difference = first_difference(recorded, compared)
    if difference is None:
        if unfinished is not None:
            click.echo(f"identical as far as it got: {len(recorded):,} events replayed "
                       f"({unfinished})")
        else:
            click.echo(f"identical: {len(replayed):,} events replayed, status "
                       f"{result.status}")
        sys.exit(EXIT_OK)
    line, was, now = difference
    click.echo(f"differs at line {line} of {source}: "
               f"{describe_divergence(recorded, compared, line)}")
    click.echo(f"  recorded: {was if was is not None else '(end of trace)'}")
    click.echo(f"  replayed: {now if now is not None else '(end of trace)'}")
    sys.exit(EXIT_FINDINGS)


def read_store_recording(location: str, job: int | None
                         ) -> tuple[list[str], list[dict[str, Any]], str, str | None,
                                    list[Any]]:
    """The recording of ``job`` (the newest when None) in the store at ``location``:
    its trace lines, its events, the name to show (``run.db job 3``), for a job
    that did not finish (it is ``running`` or ``aborted``: its trace ends after its
    last committed cycle) a note saying so, else None, and the inputs it took later
    (:func:`stored_later_inputs`). A damaged trace is an :class:`InputError`; a store
    that cannot be read, a ``StoreError``."""
    from converge_rules.analysis.runview import TRACE_HELP, trace_events
    from converge_rules.cli.store import open_existing

    with open_existing(location) as opened:
        info = opened.job(job)
        lines = list(opened.trace_lines(info.id))
        shown = f"{opened.location} job {info.id}"
        later = stored_later_inputs(opened, info.id)
    if not lines:
        raise InputError("the job recorded no trace", source=shown, help=TRACE_HELP)
    text = "".join(line + "\n" for line in lines)
    unfinished = None
    if info.status in ("running", "aborted"):
        unfinished = (f"job {info.id} did not finish, status {info.status}: its trace "
                      f"ends after cycle {info.cycles}")
    return lines, trace_events(text, shown), shown, unfinished, later


def stored_later_inputs(store: Any, job: int) -> list[Any]:
    """The input facts the job ``job`` of ``store`` took after it started
    (``converge run --resume DB --facts``), as its settings record them: ``[[cycle,
    [[type, fields], …]], …]``, empty for a job that took none. The trace is no
    faithful record of them (a keyed input shows as what its policy made of it, a
    ``combine`` total; one equal to a live fact shows not at all): a replay merges
    these, as a resume of the job does (:mod:`converge_rules.store.extend`)."""
    found = store.job_spec(job) if hasattr(store, "job_spec") else None
    if found is None:
        return []
    try:
        settings = json.loads(found[0].settings)
    except ValueError:
        return []
    later = settings.get("later") if isinstance(settings, dict) else None
    return list(later) if isinstance(later, list) else []


def describe_divergence(recorded: Sequence[str], replayed: Sequence[str], line: int
                        ) -> str:
    """Where two traces part, for people: the cycle, the agent and the fact of the
    event at ``line`` (1-based) in each, e.g. ``cycle 1, agent undercut: recorded
    added Price {…}, replayed added Price {…}``."""
    was = _event_at(recorded, line)
    now = _event_at(replayed, line)
    cycle = _cycle_at(recorded, line)
    where = f"cycle {cycle}" if cycle is not None else "after the last cycle"
    agents = {a for a in (_agent_of(recorded, line), _agent_of(replayed, line)) if a}
    if len(agents) == 1:
        where += f", agent {next(iter(agents))}"
    elif was is not None and now is None and was.get("event") == "fact_added" and (
            was.get("agent") is None and cycle == 0):
        where += ", the input facts"
    elif not agents and cycle and _input_cycle(recorded, line, cycle):
        where += ", the input facts given later"
    if len(agents) > 1:
        return (f"{where}: recorded {_what(was)} by agent {_agent_of(recorded, line)}, "
                f"replayed {_what(now)} by agent {_agent_of(replayed, line)}")
    if was is not None and now is not None and _what(was) == _what(now):
        # the same in words (a conflict's losers, a fact's confidence): name what differs
        differ = sorted(k for k in set(was) | set(now)
                        if k != "hash" and was.get(k) != now.get(k))
        if differ:
            key = differ[0]
            return (f"{where}: {_what(was)}, with {key} {_compact(was.get(key))} recorded, "
                    f"{_compact(now.get(key))} replayed")
    return f"{where}: recorded {_what(was)}, replayed {_what(now)}"


def _input_cycle(lines: Sequence[str], line: int, cycle: int) -> bool:
    """Whether ``cycle``, the cycle of the event at ``line``, is an input cycle: the
    facts a session or a resumed job took later (its ``cycle_start`` names no agents,
    and no approval decision was applied in it)."""
    for number in range(min(line, len(lines)), 0, -1):
        event = _event_at(lines, number)
        if event is None or event.get("cycle") != cycle:
            continue
        if event.get("event") == "cycle_start":
            # (the decisions of a cycle of decisions come first in it)
            after = _event_at(lines, number + 1)
            return not event.get("agents") and (
                after is None or after.get("event") != "approval_decided")
    return False


def _agent_of(lines: Sequence[str], line: int) -> str | None:
    """The agent behind the event at ``line``: its own ``agent``; for a conflict, the
    agent whose output won (the ``fact_added`` of the winner that follows it in the
    cycle); for a fact replaced or retracted, the agent that added the fact that did
    it (``by``). None for the input facts, or when the trace does not say."""
    event = _event_at(lines, line)
    if event is None:
        return None
    if event.get("agent"):
        return str(event["agent"])
    cycle = event.get("cycle")
    if event.get("event") == "conflict" and event.get("winner") is not None:
        def made_it(e: dict[str, Any]) -> bool:
            return (e.get("event") == "fact_added" and e.get("type") == event.get("type")
                    and e.get("fields") == event["winner"])
    elif isinstance(event.get("by"), int):
        def made_it(e: dict[str, Any]) -> bool:
            return e.get("event") == "fact_added" and e.get("id") == event["by"]
    else:
        return None
    for number in range(line + 1, min(len(lines), line + 5000) + 1):
        later = _event_at(lines, number)
        if later is None or later.get("cycle") != cycle:
            break
        if made_it(later):
            return str(later["agent"]) if later.get("agent") else None
    return None


def _event_at(lines: Sequence[str], line: int) -> dict[str, Any] | None:
    if line > len(lines):
        return None
    try:
        event = json.loads(lines[line - 1])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _cycle_at(lines: Sequence[str], line: int) -> int | None:
    """The cycle of the event at ``line`` of ``lines``, or of the last event before it
    that has one (None after the last cycle: the budget and status events)."""
    event = _event_at(lines, line)
    if event is not None and event.get("event") in ("status", "budget"):
        return None
    for number in range(min(line, len(lines)), 0, -1):
        earlier = _event_at(lines, number)
        if earlier is not None and isinstance(earlier.get("cycle"), int):
            return int(earlier["cycle"])
    return None


def _what(event: dict[str, Any] | None) -> str:
    """One event in words: what happened, to which fact."""
    from converge_rules.text import printable

    if event is None:
        return "nothing (end of trace)"
    kind = str(event.get("event"))
    verb = {"fact_added": "added", "replaced": "replaced", "retracted": "retracted",
            "pruned": "pruned", "intent_closed": "closed", "output_skipped": "skipped",
            "conflict": "a conflict on", "fact_supported": "supported",
            "tool_call": "called", "effect_merged": "merged the effect of",
            "effect_discarded": "discarded the effect of", "status": "ended with status",
            "cycle_start": "started cycle", "cycle_end": "ended cycle"}.get(kind, kind)
    if kind == "tool_call":
        what = f"{verb} {event.get('tool')} {_compact(event.get('args'))}"
    elif kind == "conflict":
        what = f"{verb} {event.get('type')} {_compact(event.get('key'))} (winner " \
               f"{_compact(event.get('winner'))})"
    elif "fields" in event and "type" in event:
        what = f"{verb} {event['type']} {_compact(event['fields'])}"
    elif kind == "fact_supported":
        what = f"{verb} fact #{event.get('id')}"
    elif kind in ("effect_merged", "effect_discarded"):
        what = f"{verb} agent {event.get('agent')}"
    elif kind == "status":
        what = f"{verb} {event.get('status')}"
    elif kind == "cycle_start":
        what = f"{verb} {event.get('cycle')} with agents " + (
            ", ".join(map(str, event.get("agents") or ())) or "none")
    elif kind == "cycle_end":
        what = f"{verb} {event.get('cycle')}"
    else:
        what = kind
    return printable(what)


def _compact(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)
    return text if len(text) <= 160 else text[:157] + "..."


def read_recording(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The trace's lines (as recorded, for the comparison) and its events. A damaged
    trace (not UTF-8, not JSON, an unknown event, a missing or mistyped field, a value
    nested too deeply, an event about a fact never added) is an :class:`InputError`
    naming the line."""
    from converge_rules.analysis.runview import (
        TRACE_HELP,
        decode_trace,
        read_trace_bytes,
        trace_events,
    )

    data = read_trace_bytes(path)
    text = decode_trace(data, str(path))
    lines = jsonl_lines(text)
    if not any(line.strip() for line in lines):
        raise InputError("the trace is empty", source=str(path), help=TRACE_HELP)
    return lines, trace_events(text, str(path))


def input_facts(events: Sequence[dict[str, Any]], program: Program | None = None
                ) -> list[tuple[str, Any]]:
    """The job's input facts: the ``fact_added`` events of cycle 0 without an agent,
    and the contenders of the conflicts among them (cycle 0 ``conflict`` events), which
    the trace records as the winner and the losers. Each conflict's contenders stand
    where its winner was added, the winner among them where ``program``'s policy
    chooses it again with the recorded reason (a tie on ``first`` or ``latest``
    depends on that order); a conflict that stopped the job, or whose type was never
    added, comes last, in trace order."""
    added = [e for e in events if e["event"] == "fact_added" and e.get("agent") is None
             and e.get("cycle") == 0]
    conflicts = [e for e in events if e["event"] == "conflict" and e.get("cycle") == 0]
    if not conflicts:
        return [(e["type"], e["fields"]) for e in added]
    by_winner = {(c["type"], _canon(c["winner"])): c for c in conflicts
                 if c.get("winner") is not None}
    out: list[tuple[str, Any]] = []
    placed: set[int] = set()
    for e in added:
        conflict = by_winner.get((e["type"], _canon(e["fields"])))
        if conflict is None or id(conflict) in placed:
            out.append((e["type"], e["fields"]))
            continue
        placed.add(id(conflict))
        out.extend((e["type"], f) for f in _contenders(conflict, program))
    for conflict in conflicts:
        if id(conflict) not in placed:
            out.extend((conflict["type"], f) for f in _contenders(conflict, program))
    return out


Step = tuple[list[tuple[str, Any]], list[tuple[str, Any]]]


def session_steps(events: Sequence[dict[str, Any]], program: Program | None = None
                  ) -> list[Step]:
    """For the trace of a :class:`~converge_rules.engine.session.Session`, what each
    run after the first took: ``(facts added, facts retracted)``, from the cycles in
    which no agent ran (a ``cycle_start`` without agents and without approval decisions:
    an input cycle). Of a conflict
    among a run's inputs, the losers that were not the live fact (the incumbent) are
    added too, before the winner — but a winner that ``program``'s ``combine`` policy
    made of them (the total, not a value given) is not an input; empty for the trace
    of one run."""
    # a cycle in which approval decisions were applied starts without agents too
    decided = {e["cycle"] for e in events if e["event"] == "approval_decided"}
    if not any(e["event"] == "cycle_start" and not e["agents"] and e["cycle"] not in decided
               for e in events):
        return []
    steps: list[Step] = []
    live: dict[int, tuple[str, str]] = {}  # fact id → (type, canonical fields)
    step: Step | None = None
    cycle = -1
    made: set[tuple[str, str]] = set()  # combined winners of this input cycle
    for e in events:
        kind = e["event"]
        if kind == "cycle_start":
            step = None
            if not e["agents"] and e["cycle"] not in decided:
                cycle = e["cycle"]
                step = ([], [])
                steps.append(step)
                made = set()
        elif kind == "fact_added":
            live[e["id"]] = (e["type"], _canon(e["fields"]))
            if step is not None and e.get("agent") is None and e["cycle"] == cycle and (
                    e["type"], _canon(e["fields"])) not in made:
                step[0].append((e["type"], e["fields"]))
        elif kind in ("replaced", "retracted", "pruned", "intent_closed", "input_retracted"):
            live.pop(e["id"], None)
            if kind == "input_retracted" and step is not None:
                step[1].append((e["type"], e["fields"]))
        elif kind == "conflict" and step is not None and e["cycle"] == cycle:
            held = set(live.values())
            step[0].extend((e["type"], f) for f in e.get("losers", ())
                           if (e["type"], _canon(f)) not in held)
            if _combined(e, program):
                made.add((e["type"], _canon(e["winner"])))
    return steps


def _combined(conflict: Mapping[str, Any], program: Program | None) -> bool:
    """Whether the winner of ``conflict`` is what ``program``'s ``combine`` policy made
    of its contenders (they combine to it without it), not one of them."""
    if program is None or conflict.get("winner") is None:
        return False
    type_id = program.type_ids.get(conflict["type"])
    policy = None if type_id is None else program.policies.get(type_id)
    if policy is None or policy.mode != "combine":
        return False
    winner = _canon(conflict["winner"])
    return all(_canon(f) != winner for f in _contenders(conflict, program))


def _replay_session(loaded: Ruleset, events: Sequence[dict[str, Any]], steps: list[Step],
                    executor: str, workers: int | None,
                    stop: Callable[[], bool] | None = None) -> RunResult:
    """Replay a session's trace run by run: its first inputs, then each later run's
    additions and retractions (retracted by their whole fields)."""
    from converge_rules.engine.session import Session

    session = Session(loaded, input_facts(events, loaded.program), executor=executor,
                      workers=workers, tools=recorded_tools(events, _called_tools(loaded)),
                      now=recorded_time(events), stop=stop)
    with session:
        result = session.run()
        for added, gone in steps:
            if result.status in ("conflict", "budget_exceeded", "oscillating"):
                break
            session.add(added)
            if gone:
                session.retract(gone)
            result = session.run()
    return result


def _replay_later(loaded: Ruleset, events: Sequence[dict[str, Any]], later: list[Any],
                  executor: str, workers: int | None, stop: Callable[[], bool] | None,
                  *, retractable: bool | None = None) -> RunResult:
    """Replay a stored job that took later inputs as its resume re-executes it
    (:func:`converge_rules.store.extend.extend`): its first inputs and the decisions
    its trace records, each applied at the pause it was taken at, then each batch of
    ``later`` merged as given, as the input cycle it was. ``retractable``: as a
    :class:`~converge_rules.engine.session.Session` keeps derivations (True), or as
    the program needs (None: a stored job)."""
    from converge_rules.engine.inputs import validate_pairs
    from converge_rules.engine.runner import _Job, job_clock
    from converge_rules.engine.session import _resolve
    from converge_rules.store.extend import GOES_ON
    from converge_rules.store.extend import _run as run_part

    program, tools, exe = _resolve(loaded, executor, workers,
                                   recorded_tools(events, _called_tools(loaded)))
    try:
        batches = [validate_pairs(program, [(str(t), f) for t, f in rows],
                                  source="the job's inputs" + (
                                      "" if cycle is None else f" of cycle {cycle}"))
                   for cycle, rows in later]
    except InputError:
        raise  # a value the ruleset no longer accepts: named with its source
    except (TypeError, ValueError):
        raise InputError("the job's record of the facts it took later is damaged "
                         "(its settings' 'later')", help="replay a copy of the job's "
                         "trace instead: converge trace export STORE --job ID") from None
    inputs = validate_pairs(program, input_facts(events, program))
    job = _Job(program, inputs, exe, tools, None, stop, job_clock(recorded_time(events)),
               retractable=retractable, decisions=recorded_decisions(events) or None)
    del inputs
    try:
        result = run_part(job, None)
        for batch in batches:
            if result.status not in GOES_ON:
                break  # the recorded job went on: the traces differ from here
            result = run_part(job, batch)
    finally:
        job.tools.close()
    return result


def _canon(fields: Any) -> str:
    return json.dumps(fields, sort_keys=True)


def _contenders(conflict: Mapping[str, Any], program: Program | None
                ) -> list[dict[str, Any]]:
    """The input facts of one recorded conflict, in an order that resolves as recorded:
    the losers as listed (input order, without the winner), the winner among them at
    the first place where the policy picks it with the same reason, or not among them
    when the policy made it (``combine``)."""
    from converge_rules.engine.inputs import validate_pairs
    from converge_rules.engine.policies import Contender, resolve
    from converge_rules.engine.trace import jsonable

    losers: list[dict[str, Any]] = list(conflict["losers"])
    winner = conflict.get("winner")
    if winner is None:
        return losers
    orders = [[*losers[:i], winner, *losers[i:]] for i in range(len(losers) + 1)]
    type_id = program.type_ids.get(conflict["type"]) if program is not None else None
    if program is None or type_id is None:
        return orders[0]  # a ruleset without the type: the replay differs anyway
    spec = program.types[type_id]
    policy = program.policies.get(type_id)
    if policy is not None and policy.mode == "combine":
        orders.insert(0, losers)
    for order in orders:
        try:
            rows = validate_pairs(program, [(spec.name, f) for f in order]).rows
        except InputError:
            break  # fields the ruleset no longer declares: the replay differs anyway
        res = resolve(policy, spec, [Contender(vals, 1.0, None, 0, (), False, i)
                                     for i, (_, vals) in enumerate(rows)])
        if res.values is not None and res.reason == conflict.get("reason") and _canon(
                {n: jsonable(v) for n, v in zip(spec.field_names, res.values, strict=True)}
        ) == _canon(winner):
            return order
    return orders[0]


def _called_tools(loaded: Ruleset) -> set[str]:
    """The tools the ruleset's agents call."""
    return {name for agent in loaded.program.agents for name in agent.tools}


def recorded_tools(events: Sequence[dict[str, Any]], called: Iterable[str] = ()
                   ) -> dict[str, _Recorded]:
    """One replaying tool per tool name in the trace's ``tool_call`` events, and one
    that holds no answers for each of ``called`` the trace never shows called (the
    recorded job had it, or it would have refused to start, but made no call it
    completed). A tool that was missing when the trace was recorded stays absent."""
    from converge_rules.engine.tools import ABANDONED, canonical_args

    answers: dict[str, dict[str, tuple[dict[str, Any] | None, str | None]]] = {}
    missing: set[str] = set()  # tools the recorded job did not have
    for e in events:
        if e["event"] != "tool_call":
            continue
        error = str(e.get("error") or "")
        if error.startswith("no tool named"):
            missing.add(e["tool"])
        # Neither a missing tool nor a call its timed-out agent abandoned is an answer
        # of the tool: a real answer to the same call, recorded elsewhere, must win.
        elif not error.startswith(ABANDONED):
            answers.setdefault(e["tool"], {})[canonical_args(e["args"])] = (
                e.get("result"), e.get("error"))
    for name in set(called) - missing:
        answers.setdefault(name, {})
    return {name: _Recorded(name, calls) for name, calls in sorted(answers.items())}


def recorded_time(events: Sequence[dict[str, Any]]) -> datetime | None:
    """The job's time the trace records (its ``job_time`` event), or None when it has
    none: its program did not read the time, and the replay gives it none either (a
    ruleset changed to read it then fails where it does, and the traces differ). A
    ``job_time`` that is not a UTC datetime is an :class:`InputError`."""
    from converge_rules.language.builtins import TimeError, parse_datetime

    for number, e in enumerate(events, start=1):
        if e["event"] == "job_time":
            try:
                return parse_datetime(e["now"])
            except TimeError as exc:
                raise InputError(f"event {number}: the job's time {exc}") from None
    return None


def recorded_decisions(events: Sequence[dict[str, Any]]) -> list[Any]:
    """The decisions the trace records (its ``approval_decided`` events) as
    :class:`~converge_rules.engine.gates.Decision` values: a replay applies them where
    the job did (the engine applies decisions only when nothing else can change)."""
    from converge_rules.engine.gates import Decision

    # a decision applied in cycle N was taken at the point of decision after N - 1
    return [Decision(str(e["id"]), e.get("decision") == "approve", by=str(e.get("by", "")),
                     at=str(e.get("at", "")), note=str(e.get("note", "")),
                     edits=dict(e.get("edits") or {}), paused_at=int(e["cycle"]) - 1)
            for e in events if e["event"] == "approval_decided"]


def recorded_stop(events: Sequence[dict[str, Any]], *, unfinished: bool = False
                  ) -> Callable[[], bool] | None:
    """For a trace of a job that was interrupted (Ctrl-C, SIGTERM, ``run(stop=...)``),
    or that did not finish (``unfinished``: its process died; the trace ends after its
    last committed cycle), a ``stop`` that ends the replay where it ended: the job asks
    before every cycle, and the recorded one was stopped when it asked before the cycle
    after its last ``cycle_start``. None for a job that ran to its end. The job asks
    only before a cycle of agents: an input cycle (facts given later) and a cycle of
    approval decisions (their ``cycle_start`` names no agents) are not counted."""
    if not unfinished and not any(e["event"] == "status" and e.get("status") == "interrupted"
                                  for e in events):
        return None
    cycles = sum(1 for e in events if e["event"] == "cycle_start" and e.get("agents"))
    asked = itertools.count(1)
    return lambda: next(asked) > cycles


class _Recorded:
    """A tool that answers from the recording: the recorded result, or the recorded
    failure raised again (as an exception of the recorded type name, or as the
    ``ToolError`` it was, so the replayed trace reads the same)."""

    def __init__(self, name: str,
                 calls: dict[str, tuple[dict[str, Any] | None, str | None]]) -> None:
        self.name = name
        self.calls = calls

    def __call__(self, args: dict[str, Any]) -> dict[str, Any]:
        from converge_rules.engine.tools import canonical_args

        key = canonical_args(args)
        if key not in self.calls:
            raise LookupError(f"the trace records no call {self.name}({key})")
        result, error = self.calls[key]
        if error is not None:
            kind, _, message = error.partition(": ")
            if kind.isidentifier() and message:
                raise type(kind, (Exception,), {})(message)
            # A tool's own ToolError is recorded as its bare message.
            from converge_rules.errors import ToolError

            raise ToolError(error)
        return dict(result or {})


def first_difference(
    recorded: Sequence[str], replayed: Sequence[str]
) -> tuple[int, str | None, str | None] | None:
    """``(line number, recorded line, replayed line)`` of the first difference, or
    None when they are identical."""
    for number in range(max(len(recorded), len(replayed))):
        was = recorded[number] if number < len(recorded) else None
        now = replayed[number] if number < len(replayed) else None
        if was != now:
            return number + 1, was, now
    return None
