"""``converge trace``: traces kept in a job store (``converge run --store``)."""

from __future__ import annotations

import sys

import click

from converge_rules.cli._common import EXIT_OK, report_internal_errors
from converge_rules.cli.store import open_existing


@click.group("trace")
def command() -> None:
    """Work with the traces of jobs kept in a store (`converge run --store run.db`)."""


@command.command("export")
@click.argument("store", metavar="STORE")
@click.option("--job", "job", type=click.IntRange(min=1), default=None, metavar="ID",
              help="The job whose trace to write (default: the newest; `converge store "
                   "info` lists them).")
@click.option("--output", "-o", "output", default="-", show_default=True, metavar="FILE",
              type=click.Path(dir_okay=False, allow_dash=True),
              help="Where to write the JSON Lines (- for standard output).")
@report_internal_errors
def export(store: str, job: int | None, output: str) -> None:
    """Write a job's trace from STORE as JSON Lines: byte for byte what
    `converge run --trace FILE` writes for the same run.

    \b
    Examples:
      converge trace export run.db -o trace.jsonl
      converge trace export run.db --job 3 | jq -c 'select(.event == "conflict")'

    A job that did not finish (its process died, or it was stopped at once), or that
    runs now in another process, is exported up to its last committed cycle, with a
    warning saying which.

    Exit codes: 0 written, 2 no such store or job, a file that is not a store, a store
    of a newer schema, an output that cannot be written, or bad usage.
    """
    from converge_rules.files import AtomicTextFile
    from converge_rules.store.resume import running_in

    with open_existing(store, output) as opened:
        info = opened.job(job)
        lines = opened.trace_lines(info.id)
        running = running_in(opened, info)
        if output == "-":
            # bytes, UTF-8 whatever the locale: the same bytes as the trace file
            sys.stdout.flush()
            out = sys.stdout.buffer
            for line in lines:
                out.write(line.encode("utf-8"))
                out.write(b"\n")
            out.flush()
        else:
            try:
                with AtomicTextFile(output) as file:
                    for line in lines:
                        file.write(line)
                        file.write("\n")
            except OSError as exc:
                raise click.UsageError(f"cannot write --output {output}: "
                                       f"{exc.strerror or exc}; nothing was written"
                                       ) from None
    if running is not None:
        click.echo(f"warning: job {info.id} is running now in process {running}: its "
                   f"trace so far ends after cycle {info.cycles}, the last one committed; "
                   "export it again when the job ends for the whole trace", err=True)
    elif info.status in ("running", "aborted"):
        click.echo(f"warning: job {info.id} did not finish (status {info.status}): its "
                   f"trace ends after cycle {info.cycles}, the last one committed; "
                   f"`converge run --resume {store} --job {info.id}` continues it",
                   err=True)
    raise click.exceptions.Exit(EXIT_OK)

