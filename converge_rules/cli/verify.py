"""``converge verify``: check the integrity proof of a trace or a stored job."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from converge_rules.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    is_store,
    missing_path,
    refuse_a_device,
    report_input_error,
    report_internal_errors,
)
from converge_rules.errors import InputError

EXIT_UNHASHED = 3
"""The trace carries no hashes (written before the chain existed): nothing to verify."""

def _event_of(line: str) -> str:
    """``a "fact_added" event of cycle 3``, or ``a line`` when it is no event."""
    try:
        event = json.loads(line)
    except ValueError:
        return "a line that is not JSON"
    if not isinstance(event, dict):
        return "a line that is not an event"
    kind = str(event.get("event"))[:40]
    cycle = event.get("cycle")
    return f'a "{kind}" event' + (f" of cycle {cycle}" if isinstance(cycle, int) else "")


def _check_result(path: Path, head: str | None) -> list[str]:
    """What is wrong with the result at ``path`` against the trace's ``head``."""
    from converge_rules.integrity import facts_root

    refuse_a_device(path, "--result")
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.UsageError(f"cannot read --result {path}: {exc.strerror or exc}"
                               ) from None
    except ValueError as exc:
        raise click.UsageError(f"--result {path} is not JSON ({exc}): give the JSON "
                               "result `converge run --format json` printed") from None
    proof = data.get("integrity") if isinstance(data, dict) else None
    if not isinstance(proof, dict) or not isinstance(data.get("facts"), dict):
        raise click.UsageError(f"--result {path} holds no integrity proof: give the JSON "
                               "result of a run that wrote its trace (`converge run "
                               "--format json --trace FILE` or `--store`)")
    problems = []
    facts = data["facts"]
    if not all(isinstance(group, list) and all(isinstance(f, dict) for f in group)
               for group in facts.values()):
        problems.append(f"the facts of {path} are not a result's facts (each type a list "
                        "of objects): the result was edited")
    elif proof.get("facts_root") != facts_root(facts):
        problems.append(f"the facts of {path} are not those its facts_root was made from "
                        "(a fact was edited, added or removed)")
    if proof.get("trace_head") != head:
        problems.append(f"the trace's last hash is not the trace_head of {path} (the "
                        "trace was cut or extended, or belongs to another run)")
    return problems


def _refuse_a_file_that_is_no_trace(lines: list[str], target: str) -> None:
    """Exit 2 naming the line when ``target``'s first event is no trace event (a
    ruleset, input facts, a cut line): an old trace without hashes is one, anything
    else is not a trace at all."""
    from converge_rules.analysis.runview import trace_event

    number, first = next(((n, line) for n, line in enumerate(lines, 1) if line.strip()),
                         (1, ""))
    try:
        trace_event(first, target, number)
    except InputError as exc:
        report_input_error(exc)
        sys.exit(EXIT_USAGE)


@click.command("verify")
@click.argument("target", metavar="TRACE|STORE")
@click.option("--job", "job", type=click.IntRange(min=1), default=None, metavar="ID",
              help="With a STORE: the job to verify (default: the newest).")
@click.option("--result", "result", type=click.Path(path_type=Path, dir_okay=False),
              default=None, metavar="FILE",
              help="Also check this JSON result (`converge run --format json`): its facts "
                   "against its facts_root, its trace_head against the trace.")
@report_internal_errors
def command(target: str, job: int | None, result: Path | None) -> None:
    """Verify the integrity chain of TRACE (a JSON Lines trace) or of a job kept in
    STORE: every line's hash must follow from the line and the hash before it, and a
    finished job's trace must end with its status event. The first bad line is named.

    \b
    Examples:
      converge verify trace.jsonl
      converge verify run.db --job 3
      converge run r.cvg -f in.jsonl --trace t.jsonl --format json > out.json
      converge verify t.jsonl --result out.json

    \b
    Exit codes:
      0  intact (and the result matches, with --result)
      1  tampered: a line edited, deleted, moved or inserted, the trace cut, or the
         result not the trace's
      2  bad usage, an unreadable trace, no such store or job
      3  the trace carries no hashes (written before converge had the chain)
    """
    from converge_rules.integrity import verify_lines
    from converge_rules.jsontext import jsonl_lines

    finished = True
    where = target
    if is_store(target):
        from converge_rules.cli.store import open_existing

        with open_existing(target) as opened:
            info = opened.job(job)
            finished = info.status not in ("running", "aborted")
            lines = list(opened.trace_lines(info.id))
            where = f"job {info.id} of {target}"
            if not finished and not lines and not opened.cycle_sizes(info.id):
                # died before its first commit (resume runs it from its inputs):
                # nothing was written, so nothing can have been tampered with
                click.echo(f"intact: {where}: no cycle committed (the job did not "
                           "finish: `converge run --resume` runs it from its inputs)")
                sys.exit(EXIT_OK)
    else:
        if job is not None:
            raise click.UsageError("--job is for a STORE; TRACE is a JSON Lines file")
        path = Path(target)
        if not path.exists() or path.is_dir():  # a pipe (/dev/stdin) is read as a file
            raise missing_path(target)
        from converge_rules.analysis.runview import decode_trace, read_trace_bytes

        try:
            text = decode_trace(read_trace_bytes(path), target)
        except InputError as exc:
            report_input_error(exc)
            sys.exit(EXIT_USAGE)
        lines = jsonl_lines(text)
    verdict = verify_lines(lines, finished=finished)
    if verdict.unhashed and where == target:
        _refuse_a_file_that_is_no_trace(lines, target)
    if verdict.unhashed:
        click.echo(f"cannot verify {where}: {verdict.problem}; record it again with "
                   "`converge run --trace FILE` (or `--store`)", err=True)
        sys.exit(EXIT_UNHASHED)
    problems: list[str] = []
    if not verdict.ok:
        assert verdict.line is not None
        what = (_event_of(lines[verdict.line - 1]) if verdict.line <= len(lines)
                else "the end")
        problems.append(f"line {verdict.line} ({what}): {verdict.problem}")
    if result is not None and verdict.ok:
        problems += _check_result(result, verdict.head)
    if problems:
        click.echo(f"TAMPERED: {where}")
        for problem in problems:
            click.echo(f"  {problem}")
        sys.exit(EXIT_FINDINGS)
    ended = "" if finished else " (the job did not finish: checked up to its last commit)"
    click.echo(f"intact: {where}: {verdict.lines:,} lines, chain head {verdict.head}{ended}")
    if result is not None:
        click.echo(f"  {result}: facts_root and trace_head match")
    sys.exit(EXIT_OK)
