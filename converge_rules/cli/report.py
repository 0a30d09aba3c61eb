"""``converge report``: a job's report as one self-contained HTML page."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from converge_rules.cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    allow_path_option,
    is_store,
    missing_path,
    refuse_a_device,
    refuse_to_overwrite,
    report_input_error,
    report_internal_errors,
    write_output,
)
from converge_rules.errors import InputError

if TYPE_CHECKING:
    from converge_rules.analysis.runview import RunView
    from converge_rules.report.run import JobMeta

@click.command("report")
@click.argument("source", metavar="TRACE|STORE")
@click.option("--job", "job", type=click.IntRange(min=1), default=None, metavar="ID",
              help="With a STORE: the job to report (default: the newest; `converge store "
                   "info` lists them).")
@click.option("--ruleset", "-r", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="The ruleset the job ran: adds rule locations, bindings, "
                                 "tiers, field order and budget limits.")
@click.option("--output", "-o", required=True, metavar="FILE",
              help="Where to write the HTML page (- for standard output).")
@click.option("--timings", "timings_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="With a TRACE: the timings `converge run --timings FILE` wrote beside "
                   "it (tool latency, agent and cycle time). A STORE's are read from it.")
@click.option("--title", default=None, help="The page's title (default: from the job).")
@allow_path_option
@report_internal_errors
def command(source: str, job: int | None, ruleset: Path | None, output: str,
            timings_file: Path | None, title: str | None,
            allow_paths: tuple[Path, ...]) -> None:
    """Write a report of one job as one self-contained HTML page: a summary (status,
    cycles, facts, conflicts, budgets against their limits, unmet goals, failed agents,
    tool calls), a timeline per cycle and tier, the final facts as sortable, filterable
    tables per type, every conflict, a derivation explorer, agents and tool calls.

    TRACE is a file written by `converge run --trace FILE`; STORE a job store written by
    `converge run --store` (with --job ID, else its newest job). Tool latency, agent
    and cycle time come from the store, or for a TRACE from --timings FILE (`converge
    run --timings FILE`); the trace itself holds no clock readings. The page needs no
    network: open it from disk or from a CI artifact.

    \b
    Examples:
      converge run pricing.cvg --facts in.jsonl --trace run.jsonl --timings t.jsonl
      converge report run.jsonl -r pricing.cvg --timings t.jsonl -o report.html
      converge report run.db --job 3 -o report.html

    Exit codes: 0 written, 2 bad usage, an unreadable or damaged trace (the line and
    what is wrong), a bad --timings file, no such job, or a ruleset with errors.
    """
    from converge_rules.analysis.runview import read_trace

    store = is_store(source)
    if job is not None and not store:
        raise click.UsageError(f"--job is for a store, and {source} is a trace file: "
                               "drop --job, or give the store `converge run --store` wrote")
    if not store and not Path(source).exists():
        raise missing_path(source)
    if timings_file is not None and store:
        raise click.UsageError(f"--timings is for a trace file, and {source} is a store, "
                               "which keeps its job's timings itself: drop --timings")
    if timings_file is not None and not timings_file.exists():
        raise missing_path(timings_file)
    if timings_file is not None:
        refuse_a_device(timings_file, "--timings")
    refuse_to_overwrite(output, ([source] if not store else [])
                        + ([timings_file] if timings_file is not None else []), "--output")
    loaded = None
    if ruleset is not None:
        from converge_rules.cli.explain import _load

        refuse_to_overwrite(output, [ruleset], "--output")
        loaded = _load(ruleset, plugins=True, allow_paths=allow_paths)
        refuse_to_overwrite(output, loaded.files, "--output")
    meta = None
    timings: list[dict[str, Any]] = []
    try:
        if store:
            view, meta, timings = _from_store(source, job, output)
        else:
            view = read_trace(source)
    except InputError as exc:  # a damaged trace: the line and what is wrong
        report_input_error(exc)
        sys.exit(EXIT_USAGE)
    if timings_file is not None:
        timings = _read_timings(timings_file, Path(source))

    from converge_rules.report.html import render_run_report
    from converge_rules.report.run import build_run_report

    name = meta.ruleset if meta is not None else (
        loaded.checked.name if loaded is not None and loaded.checked is not None
        and getattr(loaded.checked, "name", None) else Path(source).stem)
    where = f"{source}, job {meta.id}" if meta is not None else source
    report = build_run_report(
        view, title=title or f"converge report: {name}", source=where,
        checked=loaded.checked if loaded is not None else None,
        program=loaded.program if loaded is not None else None,
        functions=loaded.functions if loaded is not None else None, job=meta,
        timings=timings)
    write_output(render_run_report(report), output)
    if output != "-":
        counts = ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in (
            (view.cycles, "cycle"), (len(view.facts), "fact"),
            (len(view.conflicts), "conflict")))
        click.echo(f"wrote {output}: {view.status or 'no status'}, {counts}", err=True)
    raise click.exceptions.Exit(EXIT_OK)


def _read_timings(path: Path, trace: Path) -> list[dict[str, Any]]:
    """The records of a ``--timings`` file, checked to belong to ``trace`` (the run's
    trace head it names is the hash of the trace's last line); a usage error naming the
    line that is not one (a trace given by mistake, say), or saying the file is of
    another run. A file without a run record (an older converge wrote it) is taken
    with a warning: it cannot be checked."""
    from converge_rules.engine.timings import read_timings_file

    try:
        head, records = read_timings_file(path)
    except UnicodeDecodeError:
        raise click.UsageError(f"--timings {path} is not UTF-8 text; give the file "
                               "`converge run --timings FILE` wrote") from None
    except OSError as exc:
        raise click.UsageError(f"cannot read --timings {path}: "
                               f"{exc.strerror or exc}") from None
    except ValueError as exc:
        raise click.UsageError(f"--timings {exc}") from None
    if head is None:
        click.echo(f"warning: --timings {path} does not say which run it belongs to (an "
                   "older converge wrote it): shown unchecked; run the job again with "
                   "--trace and --timings to get both from one run", err=True)
        return records
    own = _trace_head(trace)
    if own != head:
        raise click.UsageError(
            f"--timings {path} belongs to another run: it names the trace head "
            f"{head[:16]}…, and {trace} ends with "
            + (f"{own[:16]}…" if own else "no hashed line")
            + "; give the timings written by the run that wrote this trace (`converge run "
            "--trace TRACE --timings FILE`)")
    return records


def _trace_head(trace: Path) -> str | None:
    """The ``hash`` of the last line of a trace file (its chain head), if it has one."""
    last = ""
    with open(trace, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                last = line
    try:
        doc = json.loads(last)
    except ValueError:
        return None
    value = doc.get("hash") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def _from_store(source: str, job: int | None, output: str
                ) -> tuple[RunView, JobMeta, list[dict[str, Any]]]:
    """The view of a store's job (the newest without ``job``), what the store
    recorded of it, and its timings (none when the store or the job has none)."""
    from converge_rules.analysis.runview import trace_events, view_from_events
    from converge_rules.cli.store import open_existing
    from converge_rules.report.run import JobMeta
    with open_existing(source, output) as opened:
        info = opened.job(job)
        text = "\n".join(opened.trace_lines(info.id))
        read = getattr(opened, "timings", None)  # a plugin's store may keep none
        timings = read(info.id) if callable(read) else []
    name = f"{source} (job {info.id})"
    view = view_from_events(trace_events(text, name))
    if info.status in ("running", "aborted"):
        click.echo(f"warning: job {info.id} did not finish (status {info.status}): its "
                   f"trace ends after cycle {info.cycles}, the last one committed", err=True)
    return view, JobMeta(info.id, info.ruleset, info.status, info.started,
                         info.finished), timings
