"""``converge run``: run a ruleset on input facts and print the result, as tables for a
person or as the JSON document LANGUAGE.md specifies for a program."""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from converge_rules.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    Interrupts,
    allow_path_option,
    check_executor,
    check_registered,
    color_option,
    echo_out,
    key_values,
    load_plugins,
    missing_path,
    now_option,
    plugin_modules,
    refuse_to_overwrite,
    report_diagnostics,
    report_input_error,
    report_internal_errors,
    use_color,
)
from converge_rules.errors import CheckError, InputError, PluginError
from converge_rules.jsontext import dumps
from converge_rules.program import CLOCK
from converge_rules.text import printable

if TYPE_CHECKING:
    from rich.console import Console

    from converge_rules.api import Ruleset
    from converge_rules.engine.result import RunResult
    from converge_rules.engine.runner import CycleProgress
    from converge_rules.engine.timings import Timings
    from converge_rules.plugins.registries import Registries
    from converge_rules.store.resume import Resumable

FORMATS = ("table", "json")
EXIT_INVARIANT = 3
"""The job ended because an invariant over its context was broken."""
EXIT_AWAITING = 4
"""The job stopped with facts held by approval gates, awaiting decisions."""
STATUS_EXIT = {"converged": EXIT_OK, "invariant_violated": EXIT_INVARIANT,
               "awaiting_approval": EXIT_AWAITING}
"""The exit code of a job's status; any other status (interrupted aside) exits 1."""
DEFAULT_MAX_ROWS = 100
_PROGRESS_INTERVAL = 0.1  # seconds between two refreshes of the progress line


@click.command("run")
@click.argument("ruleset", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--facts", "-f", "facts", multiple=True, metavar="FILE | TYPE=FILE.csv",
    help="Input facts: a JSON Lines file ({\"Cost\": {\"sku\": \"A1\", \"amount\": 10.0}} "
         "per line), a JSON array of such objects, or TYPE=FILE.csv (a header row of field "
         "names). Repeatable; read in order.",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
    help="table: a table per fact type and a status line; json: one JSON document "
         "{status, cycles, facts, conflicts, budget, unmet}, facts sorted by their fields.",
)
@click.option(
    "--executor", default="serial", show_default=True, metavar="NAME",
    help="How agents run in each cycle: serial, threads (for agents that wait on "
         "tools), asyncio (agents as tasks on one event loop awaiting their tool calls: "
         "thousands in flight), processes (forked workers with replicas, for CPU-bound "
         "agents), or an executor a plugin registers. The result is the same for all.",
)
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Workers for the executor (threads: default 64; asyncio: its "
                   "max_concurrency, the agents in flight at once, default 1024).")
@click.option(
    "--executor-option", "executor_options", multiple=True, metavar="KEY=VALUE",
    help="An option for the executor, passed to its factory (e.g. --executor ray "
         "--executor-option address=auto). Repeatable; an executor that takes none, or "
         "not this KEY, says so.",
)
@click.option(
    "--trace", "trace", type=click.Path(dir_okay=False, path_type=Path), default=None,
    metavar="FILE",
    help="Write the trace (every fact, conflict, retraction, tool call and the status) "
         "to FILE as JSON Lines; byte-for-byte the same for the same inputs.",
)
@click.option(
    "--timings", "timings_file", type=click.Path(dir_okay=False, path_type=Path),
    default=None, metavar="FILE",
    help="Write the job's wall-clock timings (each tool call's latency, each agent run's "
         "time, each cycle's evaluation and merge) to FILE as JSON Lines when it ends, "
         "for `converge report TRACE --timings FILE`. Never in the trace, which is the "
         "same on every executor and run. A --store keeps them itself.",
)
@click.option(
    "--trace-store", default="jsonl", show_default=True, metavar="NAME",
    help="The store that writes --trace: jsonl (a JSON Lines file), or a store a plugin "
         "registers (see `converge plugins`).",
)
@click.option(
    "--store", "store", default=None, metavar="FILE | URL",
    help="Keep the job in a store: a SQLite file (created if absent; run.db or "
         "sqlite:///run.db) or a URL of a store a plugin registers. Each cycle's trace is "
         "committed as the cycle ends; one file holds many jobs. `converge trace export` "
         "writes a job's trace as --trace would.",
)
@click.option(
    "--keep-last", "keep_last", type=click.IntRange(min=1), default=None, metavar="N",
    help="With --store: when the job ends, delete the store's finished jobs but the N "
         "newest (this one included); `converge store gc` also shrinks the file.",
)
@click.option(
    "--resume", "resume", default=None, metavar="FILE | URL",
    help="Continue a job of this store (the newest resumable one, or --job ID) from "
         "its last committed cycle: a job whose process died, interrupted, aborted, "
         "out of job_timeout, or awaiting approval once a fact it waits on has a "
         "decision (`converge approve`/`reject`; it applies them and pauses again, "
         "exit 4, on facts still undecided). Its inputs, time, recorded tool "
         "answers and decisions are used; "
         "the result and trace are an uninterrupted run's. RULESET may be omitted (the "
         "job's own path is used). With --facts, the job (a converged one too, or one "
         "awaiting approval, decided or not) takes them as more input: merged after "
         "its end (after the decisions recorded), recorded in the store, and "
         "re-converged incrementally.",
)
@click.option("--job", "job", type=click.IntRange(min=1), default=None, metavar="ID",
              help="With --resume: the job to continue (`converge store info` lists them).")
@click.option(
    "--pruner", "pruners", multiple=True, metavar="NAME",
    help="Apply the plugin pruner NAME after each merge (see `converge plugins`). "
         "Repeatable.",
)
@click.option(
    "--max-rows", type=click.IntRange(min=0), default=DEFAULT_MAX_ROWS, show_default=True,
    metavar="N",
    help="table format: at most this many rows per table (0: all).",
)
@click.option(
    "--with-confidence", is_flag=True,
    help="json format: give each fact what policies rank it by: `@confidence` (what "
         "it was emitted with; inputs 1.0), `@score` (the mean of its evaluations, null "
         "without any) and `@evaluations` (agent, score, reason).",
)
@click.option(
    "--stream", is_flag=True,
    help="Write the job's live events (cycle_start, effect_merged, effect_discarded, "
         "conflict, tool_call, invariant_broken, cycle_end, budget, status) to stdout as "
         "JSON Lines while it runs, each line as the trace has it; the result (--format) "
         "goes to stderr.",
)
@click.option("--no-plugins", is_flag=True,
              help="Run without the installed plugins (their tools, functions, resolvers "
                   "and executors are unknown).")
@now_option
@allow_path_option
@color_option
@report_internal_errors
def command(
    ruleset: Path | None, facts: tuple[str, ...], fmt: str, executor: str,
    workers: int | None, executor_options: tuple[str, ...], trace: Path | None,
    timings_file: Path | None, trace_store: str, store: str | None,
    keep_last: int | None, resume: str | None, job: int | None,
    pruners: tuple[str, ...], max_rows: int,
    with_confidence: bool, stream: bool, no_plugins: bool, now: datetime | None,
    allow_paths: tuple[Path, ...], color: str,
) -> None:
    """Run RULESET on input facts until every tier converges, and print the result.

    Nothing runs when the ruleset has errors or an input fact does not match its
    declared type: the problem is reported with its file, line and field. An agent
    that fails on a match (a division by zero, a tool that raises or answers the
    wrong shape) emits nothing for it; every such agent is named in a warning on
    stderr, with where it is declared.

    \b
    Examples:
      converge run pricing.cvg --facts input.jsonl
      converge run pricing.cvg -f costs.jsonl -f Quote=quotes.csv
      converge run pricing.cvg -f input.jsonl --format json | jq .facts.Price
      converge run pricing.cvg -f input.jsonl --format json --with-confidence
      converge run pricing.cvg -f input.jsonl --trace trace.jsonl
      converge run pricing.cvg -f input.jsonl --store run.db
      converge run pricing.cvg -f input.jsonl --executor threads --workers 32
      converge run pricing.cvg -f input.jsonl --executor asyncio --workers 500
      converge run claims.cvg -f claims.jsonl --now 2026-12-06T09:00:00Z
      converge run claims.cvg -f claims.jsonl --stream 2>result.txt | jq .event
      converge run --resume run.db
      converge run --resume run.db --facts more.jsonl

    \b
    Exit codes:
      0  converged: every tier reached a fixpoint and every `require` holds
      1  any other status: conflict, budget_exceeded, unmet_goal, oscillating
      3  invariant_violated: an `invariant` did not hold after a cycle
      4  awaiting_approval: approval gates hold facts that wait for a decision
      2  bad input facts, a ruleset with errors, a tool no loaded plugin provides,
         a job that cannot be resumed, or bad usage
      130  interrupted (Ctrl-C; 143 for SIGTERM): the partial result is printed
    """
    from converge_rules import api

    resuming = None
    if resume is not None:
        resuming = _resumable(resume, job, facts, store, trace, now, pruners)
        if ruleset is None:
            ruleset = Path(resuming.ruleset_path)
            if not resuming.ruleset_path or not ruleset.exists():
                raise click.UsageError(
                    f"job {resuming.job.id} ran the ruleset "
                    f"{resuming.ruleset_path or '(given as text)'}, which is not there "
                    "now; give its path: converge run RULESET --resume STORE")
        click.get_current_context().call_on_close(resuming.store.close)
        pruners = resuming.pruners
    elif job is not None:
        raise click.UsageError("--job ID says which job --resume continues; give --resume "
                               "STORE too")
    if ruleset is None:
        raise click.UsageError("missing the RULESET to run (or --resume STORE to continue "
                               "a stored job)")
    if not ruleset.exists():
        raise missing_path(ruleset)
    if trace is not None and not trace.parent.is_dir():
        raise click.UsageError(f"cannot write the trace to {trace}: "
                               f"directory {str(trace.parent)!r} does not exist")
    fact_files = [spec.partition("=")[2] if "=" in spec and not Path(spec).exists() else spec
                  for spec in facts]
    refuse_to_overwrite(trace, [ruleset, *fact_files], "--trace")
    if timings_file is not None:
        if not timings_file.parent.is_dir():
            raise click.UsageError(f"cannot write the timings to {timings_file}: "
                                   f"directory {str(timings_file.parent)!r} does not exist")
        refuse_to_overwrite(timings_file, [ruleset, *fact_files], "--timings")
        if trace is not None and timings_file.resolve() == trace.resolve():
            raise click.UsageError("--timings and --trace name the same file: the timings "
                                   "go beside the trace, never in it; give another name "
                                   "(e.g. run.timings.jsonl)")
    store_file = _store_file(store)
    refuse_to_overwrite(store_file, [ruleset, *fact_files], "--store")
    for kept, option in ((store_file, "--store"), (_store_file(resume), "--resume")):
        # before the store is opened (or created): the timings file would replace it
        if timings_file is not None and kept is not None and \
                timings_file.resolve() == Path(kept).resolve():
            raise click.UsageError(f"--timings and {option} name the same file; the "
                                   "store keeps the timings itself: leave --timings out")
    if with_confidence and fmt != "json":
        raise click.UsageError("--with-confidence adds to the JSON result; give "
                               "--format json too")
    if store is not None and trace is not None:
        raise click.UsageError("give --store or --trace, not both: the store keeps the "
                               "trace; `converge trace export STORE -o FILE` writes it as "
                               "JSON Lines")
    if keep_last is not None and store is None and resume is None:
        raise click.UsageError("--keep-last N is how many jobs a store keeps; give "
                               "--store too")
    if trace is None and trace_store != "jsonl":
        raise click.UsageError(f"--trace-store {trace_store} says how to write the trace; "
                               "give --trace FILE too")
    registries = load_plugins(no_plugins=no_plugins)
    if resuming is not None and resuming.plugins and not no_plugins:
        from converge_rules.plugins import load_registries

        registries = load_registries(tuple(dict.fromkeys(plugin_modules()
                                                         + resuming.plugins)))
    check_executor(executor, registries)
    options = _executor_options(executor_options)
    # with options the executor is built here, before anything runs (a bad option is a
    # usage error); without, api.run builds and sizes the named one
    exe = registries.executor(executor, workers, options) if options else executor
    check_registered("store", trace_store, registries.stores)
    # opened before anything runs: a file that is no store, a newer schema or a lock
    # is reported (StoreError, by report_internal_errors) before the job starts; a store
    # file not there yet is created once the ruleset and the facts are read, so that a
    # run refused before it starts leaves no empty store behind
    new_store = store_file is not None and not os.path.lexists(store_file)
    job_store = registries.job_store(store) if store is not None and not new_store \
        else None
    if job_store is not None:
        click.get_current_context().call_on_close(job_store.close)
    for pruner in pruners:
        check_registered("pruner", pruner, registries.pruners)
    colour = use_color(color, sys.stderr)
    try:
        loaded = api.load(ruleset, plugins=registries, pruners=pruners,
                          allow_paths=allow_paths)
    except CheckError as exc:
        report_diagnostics(exc, colour)
        sys.exit(EXIT_USAGE)
    if resuming is not None:
        # before --facts are read against its types: another ruleset's job is said so,
        # not as facts of types it lacks
        from converge_rules.store.resume import check_ruleset

        check_ruleset(resuming, loaded)
    refuse_to_overwrite(trace, loaded.files, "--trace")  # its imports and cases files
    refuse_to_overwrite(store_file, loaded.files, "--store")
    refuse_to_overwrite(timings_file, loaded.files, "--timings")
    try:
        inputs = api.read_facts(loaded, *facts)
    except InputError as exc:
        report_input_error(exc)
        sys.exit(EXIT_USAGE)
    if new_store and store is not None:
        job_store = registries.job_store(store)
        click.get_current_context().call_on_close(job_store.close)
    console = _console(sys.stderr if stream else sys.stdout, color)
    interrupts = Interrupts("converge: interrupted; stopping after the current cycle and "
                            "printing the partial result (again to stop at once)")
    if resuming is not None:
        store = resume
    # timed when they can be kept: a store keeps them (its `timings` table), --timings
    # writes them to a file; never in the trace
    from converge_rules.engine.timings import Timings

    # (kept in memory only for the file: a store writes them as each cycle ends)
    timings = Timings(keep=timings_file is not None) \
        if timings_file is not None or store is not None else None
    kept = (f"; {trace} holds its trace" if trace is not None
            else f"; {store} holds the job" if store is not None else "")
    # From here to the exit, a signal never meets the default handler (click's
    # "Aborted!", exit 1, or a traceback): while the job runs, `interrupts` handles it;
    # after, `finishing` stops at once with exit code 128 + n.
    with interrupts.finishing("converge: interrupted: stopped at once while writing the "
                              f"result{kept}"):
        before = _identity(trace)
        try:
            with _progress(loaded, color) as progress, interrupts:
                if resuming is not None:
                    result = api.resume(resuming.store, resuming.job.id, ruleset=loaded,
                                        executor=exe, workers=None if options else workers,
                                        progress=progress, stop=interrupts.requested,
                                        observer=_stdout_events if stream else None,
                                        timings=timings,
                                        facts=inputs if facts else None)
                else:
                    result = api.run(loaded, inputs, executor=exe,
                                     workers=None if options else workers,
                                     trace=trace,
                                     trace_store=trace_store if trace else None,
                                     store=job_store, progress=progress,
                                     stop=interrupts.requested,
                                     now=CLOCK if now is None else now,
                                     plugin_modules=plugin_modules(),
                                     observer=_stdout_events if stream else None,
                                     timings=timings)
        except KeyboardInterrupt:
            if store is not None:
                left = f"; {store} holds the cycles committed, the job marked aborted"
            elif trace is None:
                left = ""
            elif _identity(trace) == before:
                left = f"; {trace} was left as it was"
            else:  # the signal came after the trace of the partial run was committed
                left = f"; {trace} holds the trace of the partial run"
            click.echo("converge: interrupted again: stopped at once, without a result" + left,
                       err=True)
            sys.exit(interrupts.exit_code())
        except OSError as exc:
            if trace is None or exc.filename not in (None, str(trace)):
                raise
            raise click.UsageError(
                f"cannot write the trace to {trace}: {exc.strerror or exc}") from None
        if timings_file is not None and timings is not None:
            _write_timings(timings_file, timings, result.trace.head())
        if resuming is not None:
            job_store = resuming.store
            done = result.resumed_from
            why = "no checkpoint to restore"
            click.echo(f"converge: job {resuming.job.id} resumed " + (
                f"by re-executing it from its inputs ({why})"
                if done is None else f"from its checkpoint after cycle {done}"), err=True)
        if job_store is not None and keep_last is not None:
            from converge_rules.errors import StoreError

            try:  # freed pages are reused by later jobs: no VACUUM after every run
                job_store.gc(keep_last, vacuum=False)
            except StoreError as exc:  # the job itself is stored: say so, go on
                click.echo(f"warning: old jobs were not deleted: {exc}", err=True)
        if not no_plugins:
            _notify_observers(result, registries)
        report_failures(result)
        if fmt == "json":
            echo_out(result.to_json(indent=2, with_confidence=with_confidence), err=stream)
        else:
            print_tables(console, result, max_rows=max_rows)
        if result.status == "awaiting_approval":
            _approval_hint(store)
        if result.status == "interrupted":
            sys.exit(interrupts.exit_code())
        sys.exit(STATUS_EXIT.get(result.status, EXIT_FINDINGS))


def _write_timings(path: Path, timings: Timings, trace_head: str) -> None:
    """Write the job's timings to ``path`` (atomically), naming the run by its
    ``trace_head`` (so a report checks they belong to its trace). A file that cannot
    be written is warned about, naming it: the job and its result are not lost for it."""
    from converge_rules.engine.timings import write_timings

    try:
        write_timings(path, timings.records(), trace_head)
    except OSError as exc:
        click.echo(f"warning: the timings were not written to {path}: "
                   f"{exc.strerror or exc}", err=True)


def _approval_hint(store: str | None) -> None:
    """What to do with a job that awaits approval (on stderr)."""
    if store is None:
        click.echo("converge: the job awaits approval, but it was not kept in a store: "
                   "run it with --store run.db to decide (`converge approve`/`reject`) "
                   "and resume it, or give the decisions up front from Python "
                   "(run(..., decisions=[...]))", err=True)
        return
    click.echo(f"converge: the job awaits approval: `converge pending {store}` lists the "
               f"facts held; decide them, all or some (`converge approve {store} ID`, "
               f"`converge reject {store} ID`), then `converge run --resume {store}`",
               err=True)


def _stdout_events(event: dict[str, Any]) -> None:
    """``--stream``: one live event as a JSON line on stdout, flushed at once. A reader
    that went away (``| head``) makes it raise, which ends the stream, not the job."""
    sys.stdout.write(dumps(event, sort_keys=True, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _resumable(location: str, job: int | None, facts: tuple[str, ...], store: str | None,
               trace: Path | None, now: datetime | None, pruners: tuple[str, ...]
               ) -> Resumable:
    """The job ``--resume LOCATION [--job ID]`` continues, checked resumable (a
    ``StoreError`` saying why not, reported with exit code 2); the options a resumed
    job cannot take are usage errors. With ``facts`` (``--facts``: more input for the
    job) a job at its fixpoint may be resumed too."""
    for given, option, why in (
        (store, "--store", "it stays in the store it resumes from"),
        (trace, "--trace", "its trace is in its store (`converge trace export`)"),
        (now, "--now", "it reuses the time it started with"),
        (pruners, "--pruner", "it reuses the pruners it started with"),
    ):
        if given:
            raise click.UsageError(f"--resume continues a stored job; {option} cannot be "
                                   f"given with it: {why}")
    from converge_rules.cli.store import open_existing
    from converge_rules.store import resume as resuming

    opened = open_existing(location)  # a mistyped name must not become a new empty store
    try:
        return resuming.find(opened, job, more=bool(facts))
    except BaseException:
        opened.close()
        raise


def _executor_options(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--executor-option KEY=VALUE`` pairs as a dict; a pair without ``=`` or given
    twice is a usage error."""
    return key_values(pairs, "--executor-option", example="address=auto")


def _store_file(store: str | None) -> str | None:
    """The local file a ``--store`` location names (``run.db``, ``sqlite:///run.db``),
    or None for another store's URL: what must not be one of the command's inputs (an
    empty input file would silently become a database)."""
    if store is None or ("://" in store and not store.startswith("sqlite:")):
        return None
    from converge_rules.store.sqlite import sqlite_path

    return str(sqlite_path(store)[0])


def _identity(path: Path | None) -> tuple[int, int] | None:
    """The device and inode of ``path`` (None if absent): a trace is committed by
    renaming a new file over it, so a changed identity means a new trace."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


# ----------------------------------------------------------------------- loading


def _notify_observers(result: RunResult, registries: Registries) -> None:
    """Hand the finished job to the plugins' observer hooks. An observer that fails is
    reported and the job's result is still printed: a plugin never corrupts a run."""
    from converge_rules.plugins import notify_observers

    try:
        notify_observers(result, registries)
    except PluginError as exc:
        click.echo(f"warning: {exc} (the run's result below is complete)", err=True)


def report_failures(result: RunResult) -> None:
    """Warn on stderr about agent runs that failed (a runtime error such as a division
    by zero or a bad ``matches`` pattern, a tool that raised or answered the wrong
    shape): their effects were discarded, so the result lacks what they would have
    emitted. One line per agent, with its location. Outputs skipped because the fact
    they rested on was retracted in the same merge are ordinary retraction, recorded
    in the trace, not failures."""
    from converge_rules.engine.executors import DEADLINE_REASON
    from converge_rules.engine.invariants import INVARIANT_REASON_PREFIXES
    if not result.trace.may_hold("effect_discarded"):
        return  # (the common case: the event models, and pydantic, are not needed)
    from converge_rules.engine.trace_models import EffectDiscarded

    # agent name -> [failed runs, first cycle, first reason]; effects an invariant
    # stopped are not failures of the agent and get their own warning and help
    seen: dict[str, list[Any]] = {}
    stopped: dict[str, list[Any]] = {}
    for event in result.trace.events_of(EffectDiscarded):
        if event.reason == DEADLINE_REASON:
            continue  # cut when the job ran out of time, which the status already says
        into = stopped if event.reason.startswith(INVARIANT_REASON_PREFIXES) else seen
        into.setdefault(event.agent, [0, event.cycle, event.reason])[0] += 1
    for spec in result.program.agents:  # in declaration order
        if spec.name in seen:
            failed, cycle, reason = seen[spec.name]
            runs = f"{failed:,} cycle{'s' if failed != 1 else ''}"
            click.echo(f"warning: agent `{spec.name}` failed in {runs} and its effect was "
                       f"discarded (first in cycle {cycle}): {printable(reason)}", err=True)
            click.echo(f"  --> {spec.span}", err=True)
        if spec.name in stopped:
            count, cycle, reason = stopped[spec.name]
            runs = f"{count:,} cycle{'s' if count != 1 else ''}"
            click.echo(f"warning: an invariant discarded the effect of agent `{spec.name}` "
                       f"in {runs} (first in cycle {cycle}): {printable(reason)}", err=True)
            click.echo(f"  --> {spec.span}", err=True)
    if seen:
        click.echo("  = help: guard the failing expression with `where`, or fix the tool or "
                   "the input; `--trace FILE` records every failure", err=True)
    if stopped:
        click.echo("  = help: the invariant kept those facts out and the job went on; fix "
                   "the agent's rule (or the invariant, if it is too strict); `--trace "
                   "FILE` records each match that broke it", err=True)


# ---------------------------------------------------------------------- progress


def _console(stream: Any, color: str) -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # Rich exits 1 here, which `converge run` means as "not converged": the
            # command's wrapper ends a closed pipe quietly with its own status (141)
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    force = {"always": True, "never": False}.get(color)
    return _Console(file=stream, force_terminal=force, no_color=color == "never",
                    highlight=False, soft_wrap=False)


@contextmanager
def _progress(ruleset: Ruleset, color: str) -> Iterator[Any]:
    """A live status line on stderr while the job runs, only when stderr is a
    terminal; otherwise no callback at all (no extra output, no cost)."""
    console = _console(sys.stderr, color)
    if not console.is_terminal or not _isatty(sys.stderr):
        yield None
        return
    from rich.live import Live
    from rich.text import Text

    with Live(Text(f"running {ruleset.name} …"), console=console, transient=True,
              refresh_per_second=8) as live:
        shown = [0.0]

        def update(p: CycleProgress) -> None:
            now = time.monotonic()
            if now - shown[0] < _PROGRESS_INTERVAL:  # cycles can be µs apart
                return
            shown[0] = now
            live.update(Text.assemble(
                ("cycle ", "dim"), (str(p.cycle), "bold"), ("  tier ", "dim"), str(p.tier),
                ("  agents ", "dim"), str(p.agents), ("  live facts ", "dim"),
                f"{p.live_facts:,}", ("  conflicts ", "dim"), str(p.conflicts),
            ))

        yield update


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# ------------------------------------------------------------------------ tables


def print_tables(console: Console, result: RunResult, *,
                 max_rows: int = DEFAULT_MAX_ROWS) -> None:
    """The final (or partial) context as one table per fact type, in declaration
    order, then the conflicts, the unmet goals and intents, and the status line."""
    from rich.table import Table
    from rich.text import Text  # a cell is text as it is: `[bold]` is no markup in a value

    for spec in result.program.types:
        if spec.intent:
            continue
        count = result.count(spec.name)
        if not count:
            continue
        table = Table(title=f"{spec.name} ({count:,})", title_justify="left")
        for f in spec.fields:
            table.add_column(f.name + (" (key)" if f.key else ""),
                             justify="right" if f.type.base in ("int", "float") else "left")
        # only the rows shown are built: a million facts as dicts would be most of the
        # memory a large job takes
        shown = result.facts(spec.name, limit=None if max_rows == 0 else max_rows)
        for row in shown:
            table.add_row(*(Text(cell(row[f.name])) for f in spec.fields))
        if len(shown) < count:
            table.caption = f"… and {count - len(shown):,} more (--max-rows 0 shows all)"
        console.print(table)
    n_conflicts = result.conflict_count
    if n_conflicts:
        table = Table(title=f"Conflicts ({n_conflicts})", title_justify="left")
        for name in ("cycle", "type", "key", "winner", "reason"):
            table.add_column(name)
        # only the rows shown are built (a job of updates in place records thousands)
        conflicts = result.first_conflicts(None if max_rows == 0 else max_rows)
        for c in conflicts:
            # the key is in its own column: the winner shows what the policy chose
            winner = "— (none)" if c["winner"] is None else cell(
                {k: v for k, v in c["winner"].items() if k not in c["key"]}
            )
            table.add_row(str(c["cycle"]), c["type"], Text(cell(c["key"])), Text(winner),
                          Text(printable(c["reason"])))
        if len(conflicts) < n_conflicts:
            table.caption = (f"… and {n_conflicts - len(conflicts):,} more "
                             "(--max-rows 0 shows all)")
        console.print(table)
    for item in result.unmet:
        if "goal" in item:
            extra = f" ({item['error']})" if "error" in item else ""
            console.print(printable(f"unmet goal: require {item['goal']}{extra}"), markup=False,
                          soft_wrap=True)
        else:
            console.print(f"open intent: {item['intent']}{cell(item['fields'])}",
                          markup=False, soft_wrap=True)
    for broken in result.invariants:
        what = ("its effect was discarded" if broken["outcome"] == "effect_discarded"
                else "the job ended")
        facts = "; ".join(f"{f['type']}{cell(f['fields'])}" for f in broken["facts"])
        console.print(printable(
            f"invariant {broken['invariant']} broken in cycle {broken['cycle']} "
            f"(agents: {', '.join(broken['agents']) or 'none'}; {what}): {broken['rule']}; "
            f"facts: {facts}"), markup=False, soft_wrap=True)
    for held in result.pending:
        console.print(printable(
            f"pending approval {held['id']} (gate {held['gate']}, agent {held['agent']}, "
            f"cycle {held['cycle']}): {held['type']}{cell(held['fields'])}"),
            markup=False, soft_wrap=True)
    console.print(printable(status_line(result)), markup=False, soft_wrap=True,
                  style="bold green" if result.status == "converged" else "bold red")


def status_line(result: RunResult) -> str:
    """One line: the status, the cycles, and what ended the job when it did not
    converge (the exhausted budget, the unmet goals, the failed conflicts)."""
    cycles = f"{result.cycles} cycle{'s' if result.cycles != 1 else ''}"
    if result.status == "converged":
        return f"converged in {cycles}"
    if result.status == "budget_exceeded":
        names = [n for n, b in result.budget.items() if b.get("exceeded")]
        which = f" ({', '.join(names)})" if names else ""
        return f"budget_exceeded{which} after {cycles}: {result.detail}"
    if result.status == "unmet_goal":
        goals = [u["goal"] for u in result.unmet if "goal" in u]
        return f"unmet_goal after {cycles}: " + "; ".join(f"require {g}" for g in goals)
    return f"{result.status} after {cycles}: {result.detail}"


def cell(value: Any) -> str:
    """A value as a table cell: strings as they are (control characters escaped),
    everything else as JSON."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k}: {cell(v)}" for k, v in value.items()) + ")"
    return dumps(value)
