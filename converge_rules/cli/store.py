"""``converge store``: inspect a job store and keep it small (``info``, ``gc``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from converge_rules.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    load_plugins,
    refuse_to_overwrite,
    report_internal_errors,
)
from converge_rules.errors import StoreNotCompacted

if TYPE_CHECKING:
    from converge_rules.store.base import JobStore


def open_existing(store: str, output: str | None = None) -> JobStore:
    """The job store at ``store``, which must exist when it is a SQLite file (reading
    must not create an empty store). ``output``, when given, must not be that file."""
    from converge_rules.store.sqlite import sqlite_path

    if "://" not in store or store.startswith("sqlite:"):
        path = sqlite_path(store)[0]
        # an empty file would become an empty store (SQLite takes it for a new database)
        if not path.exists() or (path.is_file() and path.stat().st_size == 0):
            what = "no store" if not path.exists() else "an empty file, no store,"
            raise click.UsageError(f"{what} at {path}: give a file that `converge run "
                                   "--store` wrote")
        if output is not None:
            refuse_to_overwrite(output, [path], "--output")
    return load_plugins().job_store(store)


@click.group("store")
def command() -> None:
    """Inspect a job store (`converge run --store run.db`) and keep it small."""


@command.command("info")
@click.argument("store", metavar="STORE")
@click.option("--job", "job", type=click.IntRange(min=1), default=None, metavar="ID",
              help="Also list this job's sizes cycle by cycle.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for scripts.")
@report_internal_errors
def info(store: str, job: int | None, fmt: str) -> None:
    """Sizes of STORE: the file, each table (rows and bytes), each job (status,
    cycles, trace size), and with --job ID that job's trace and checkpoint (a delta or
    a snapshot) sizes per cycle.

    \b
    Examples:
      converge store info run.db
      converge store info run.db --job 3 --format json

    Exit codes: 0 done, 2 no such store or job, a file that is not a store, a store of
    a newer schema, a store locked by another process, or bad usage.
    """
    with open_existing(store) as opened:
        summary = opened.info()
        cycles = opened.cycle_sizes(opened.job(job).id) if job is not None else None
        sizes = getattr(opened, "checkpoint_sizes", None)
        stored = sizes(opened.job(job).id) if job is not None and sizes else {}
    if fmt == "json":
        doc = {
            "store": summary.location, "schema_version": summary.schema_version,
            "bytes": summary.total_bytes, "tables": summary.tables,
            "jobs": [{"id": j.id, "ruleset": j.ruleset, "status": j.status,
                      "detail": j.detail, "started": j.started, "finished": j.finished,
                      "cycles": j.cycles, "trace_lines": j.trace_lines,
                      "trace_bytes": j.trace_bytes} for j in summary.jobs],
        }
        if cycles is not None:
            doc["cycles"] = [{"cycle": c, "trace_lines": n, "trace_bytes": b,
                              "checkpoint": stored.get(c, (None, 0))[0],
                              "checkpoint_bytes": stored.get(c, (None, 0))[1]}
                             for c, n, b in cycles]
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        raise click.exceptions.Exit(EXIT_OK)
    click.echo(f"{summary.location}: {summary.total_bytes:,} bytes, schema version "
               f"{summary.schema_version}, {len(summary.jobs):,} job"
               f"{'s' if len(summary.jobs) != 1 else ''}")
    click.echo(f"  {'table':<16}{'rows':>12}{'bytes':>14}")
    for name, sizes in summary.tables.items():
        click.echo(f"  {name:<16}{sizes['rows']:>12,}{sizes['bytes']:>14,}")
    if summary.jobs:
        click.echo(f"  {'job':>6}  {'ruleset':<16}{'status':<17}{'cycles':>8}"
                   f"{'trace bytes':>14}  started")
    for j in summary.jobs:
        click.echo(f"  {j.id:>6}  {j.ruleset:<16.16}{j.status:<17}{j.cycles:>8,}"
                   f"{j.trace_bytes:>14,}  {j.started}")
    if cycles is not None:
        click.echo(f"  job {job}, per cycle:")
        click.echo(f"  {'cycle':>8}{'lines':>10}{'bytes':>12}  {'checkpoint':<10}"
                   f"{'bytes':>10}")
        for c, n, b in cycles:
            kind, size = stored.get(c, ("-", 0))
            click.echo(f"  {c:>8,}{n:>10,}{b:>12,}  {kind:<10}{size:>10,}")
    raise click.exceptions.Exit(EXIT_OK)


@command.command("gc")
@click.argument("store", metavar="STORE")
@click.option("--keep-last", "keep_last", type=click.IntRange(min=0), required=True,
              metavar="N", help="Keep the N newest jobs; delete the older ones.")
@report_internal_errors
def gc(store: str, keep_last: int) -> None:
    """Delete every job of STORE but the N newest (their traces and cycles), then
    give the space back to the file system. A job still running (or whose process
    died: it can be resumed) and a job awaiting approval are never deleted, whatever N.
    On a full disk the jobs are deleted but the file may not shrink (compacting writes
    a copy of what the store keeps): the message says how much space that needs, and a
    later gc gives the space back.

    \b
    Examples:
      converge store gc run.db --keep-last 10

    Exit codes: 0 done, 1 jobs deleted but the file could not shrink (a full disk),
    2 no such store, a file that is not a store, a store of a newer schema, a store
    locked by another process, or bad usage.
    """
    with open_existing(store) as opened:
        before = opened.info().total_bytes
        jobs = opened.jobs()
        waiting = [(j.id, j.status) for j in jobs
                   if j.status in ("running", "awaiting_approval")]
        try:
            deleted = opened.gc(keep_last)
        except StoreNotCompacted as exc:
            click.echo(f"{store}: deleted {_jobs_text(exc.deleted)}" if exc.deleted else
                       f"{store}: nothing to delete", err=True)
            click.echo(f"converge: error: {exc}", err=True)
            raise click.exceptions.Exit(EXIT_FINDINGS) from None
        after = opened.info().total_bytes
    # `--keep-last 0` keeping a job must say why, not "0 newest jobs kept"
    kept = "; never deleted, whatever N: " + ", ".join(
        f"job {i} ({status.replace('_', ' ')})" for i, status in waiting) if waiting else ""
    shrunk = f"; {before:,} → {after:,} bytes" if after != before else ""
    if not deleted:
        # (was "1 newest finished jobs kept" of a store with no job, or one)
        finished = len(jobs) - len(waiting)
        held = (f"{finished:,} finished job{'s' if finished != 1 else ''}, at most "
                f"{keep_last:,} kept" if finished else "no finished job")
        # (the space an earlier gc could not give back, on a full disk, given now)
        freed = f"; the space of jobs deleted before given back{shrunk}" if shrunk else ""
        click.echo(f"{store}: nothing to delete ({held}{kept}){freed}")
    else:
        click.echo(f"{store}: deleted {_jobs_text(deleted)}; {before:,} → {after:,} "
                   f"bytes{kept}")
    raise click.exceptions.Exit(EXIT_OK)


def _jobs_text(ids: list[int]) -> str:
    return f"{len(ids):,} job{'s' if len(ids) != 1 else ''} ({', '.join(map(str, ids))})"
