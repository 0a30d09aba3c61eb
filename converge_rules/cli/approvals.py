"""``converge pending``, ``converge approve`` and ``converge reject``: the people's side
of approval gates. A job whose gates (``approve TYPE when EXPR``) held facts stops with
status ``awaiting_approval`` (exit code 4); these commands list what it waits on and
record a decision on each (who, when, why, and for an approval changed field values);
``converge run --resume STORE`` then continues it, applying the decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from converge_rules.cli._common import EXIT_OK, EXIT_USAGE, key_values, report_internal_errors

if TYPE_CHECKING:
    from converge_rules.store.approvals import PendingFact, StoredDecision

_JOB = click.option("--job", "job", type=click.IntRange(min=1), default=None, metavar="ID",
                    help="The job (`converge store info` lists them); by default the "
                         "store's newest job awaiting approval.")
_BY = click.option("--by", "by", default=None, metavar="NAME",
                   help="Who decides, kept in the job's trace (default: the OS user).")
_NOTE = click.option("--note", "note", default="", metavar="TEXT",
                     help="Why, kept in the job's trace with the decision.")


def _open(store: str) -> Any:
    from converge_rules.cli.store import open_existing

    return open_existing(store)  # a mistyped name must not become a new empty store


@click.command("pending")
@click.argument("store", metavar="STORE")
@_JOB
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for scripts.")
@report_internal_errors
def pending(store: str, job: int | None, fmt: str) -> None:
    """List the facts a job of STORE waits on: each fact its approval gates hold, with
    its id, the gate, the fact, the agent and cycle that derived it, what it rests on
    (for a pending total of a `combine` type that grew: every part held since the
    key's value), and the decision recorded on it so far (if any).

    A job stops with status awaiting_approval (`converge run` exits 4) when a gate
    held a fact and nothing else can change. Decide each fact with `converge approve`
    or `converge reject`, then continue the job with `converge run --resume STORE`.

    \b
    Examples:
      converge pending run.db
      converge pending run.db --job 3 --format json | jq '.pending[].id'
      converge approve run.db p-3f9a1c2b7d4e --note "checked"
      converge run --resume run.db

    \b
    Exit codes:
      0  listed (also when nothing is pending)
      2  no such store or job, or bad usage
    """
    from converge_rules import api

    with _open(store) as opened:
        info = api._awaiting_job(opened, job)
        held = api.pending(opened, info.id)
        decided = {d.id: d for d in api.decisions(opened, info.id)}
    if fmt == "json":
        doc = {"store": store, "job": info.id, "status": info.status,
               "pending": [{**p.to_json(), "decision": decided[p.id].to_json()
                            if p.id in decided else None} for p in held]}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        raise click.exceptions.Exit(EXIT_OK)
    left = [p for p in held if p.id not in decided]
    click.echo(f"job {info.id} of {store} ({info.ruleset}): {info.status}; {len(held)} "
               f"fact{'s' if len(held) != 1 else ''} pending approval, {len(left)} "
               "without a decision")
    for p in held:
        click.echo(_shown(p, decided.get(p.id)))
    if not held:
        raise click.exceptions.Exit(EXIT_OK)
    where = f"{store}" + (f" --job {info.id}" if job is not None else "")
    if left:
        click.echo(f"\ndecide each: converge approve {where} ID [--note TEXT] [--set "
                   f"FIELD=VALUE]  |  converge reject {where} ID [--note TEXT]")
        if len(left) < len(held):
            click.echo(f"or resume with the decisions recorded (the job pauses again on "
                       f"those left): converge run --resume {store} --job {info.id}")
    else:
        click.echo(f"\nevery pending fact has a decision: converge run --resume {store}"
                   f" --job {info.id}")
    raise click.exceptions.Exit(EXIT_OK)


def _shown(p: PendingFact, decision: StoredDecision | None) -> str:
    from converge_rules.text import printable

    lines = [f"  {p.id}  gate {p.gate}, cycle {p.cycle}, agent {p.agent or '(input)'}",
             f"    {p.fact_text()}"]
    if p.parts:
        # a pending total that grew: every part held since the key's value, which a
        # decision takes in (or leaves out) with it
        lines.append(f"    the key's value with {len(p.parts)} parts held since:")
        for n, part in enumerate(p.parts, start=1):
            lines.append(f"    part {n}: agent {part.agent or '(input)'}, cycle {part.cycle}")
            for i, text in enumerate(part.derivation):
                lines.append(f"      {'from' if i == 0 else '    '} {text}")
    else:
        for i, text in enumerate(p.derivation):
            lines.append(f"    {'from' if i == 0 else '    '} {text}")
    if decision is not None:
        what = decision.decision + ("d" if decision.decision == "approve" else "ed")
        edits = (" with " + ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}"
                                      for k, v in decision.edits.items())
                 if decision.edits else "")
        note = f": {decision.note}" if decision.note else ""
        lines.append(f"    {what}{edits} by {decision.by} at {decision.at}{note}")
    return printable("\n".join(lines), keep="\n")


@click.command("approve")
@click.argument("store", metavar="STORE")
@click.argument("ident", metavar="ID")
@_JOB
@_BY
@_NOTE
@click.option("--set", "edits", multiple=True, metavar="FIELD=VALUE",
              help="Approve the fact with this field changed (not a key field): VALUE "
                   "is read per the field's type in the job's ruleset (a number, true or "
                   "false, an enum member, an ISO date, a JSON array for a list; empty "
                   "for no value, '\"\"' for the empty text). Repeatable.")
@click.option("--ruleset", "ruleset", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="PATH",
              help="With --set: the job's ruleset, when it is no longer where the job "
                   "ran it (its types read the values).")
@report_internal_errors
def approve(store: str, ident: str, job: int | None, by: str | None, note: str,
            edits: tuple[str, ...], ruleset: Path | None) -> None:
    """Approve the pending fact ID of a job of STORE: when the job resumes (`converge
    run --resume STORE`) the fact enters its context as it was held, or with the
    fields --set changes. Who (--by), when (now, UTC) and why (--note) are kept in the
    store and then in the job's trace. A decision is final.

    \b
    Examples:
      converge pending run.db
      converge approve run.db p-3f9a1c2b7d4e --note "checked with the adjuster"
      converge approve run.db p-3f9a1c2b7d4e --set amount=9500.0 --note "capped"
      converge run --resume run.db

    \b
    Exit codes:
      0  recorded
      2  the job is not awaiting approval, ID is not pending in it or has a decision
         already, a --set names no field, a key field, or a value of the wrong type;
         or bad usage
    """
    # (the value unstripped: a text field's spaces are the person's)
    values = key_values(edits, "--set", example="amount=9500.0", name="FIELD", strip=False)
    if ruleset is not None and not values:
        raise click.UsageError("--ruleset reads the types of --set values; give --set too")
    _record(store, ident, "approve", job, by, note, values, ruleset)


@click.command("reject")
@click.argument("store", metavar="STORE")
@click.argument("ident", metavar="ID")
@_JOB
@_BY
@_NOTE
@report_internal_errors
def reject(store: str, ident: str, job: int | None, by: str | None, note: str) -> None:
    """Reject the pending fact ID of a job of STORE: when the job resumes (`converge
    run --resume STORE`) the fact is dropped, and the job never derives it again from
    the same support. Who (--by), when (now, UTC) and why (--note) are kept in the
    store and then in the job's trace. A decision is final.

    \b
    Examples:
      converge reject run.db p-3f9a1c2b7d4e --note "duplicate of claim C7"
      converge run --resume run.db

    \b
    Exit codes:
      0  recorded
      2  the job is not awaiting approval, ID is not pending in it or has a decision
         already; or bad usage
    """
    _record(store, ident, "reject", job, by, note, {}, None)


def _record(store: str, ident: str, kind: str, job: int | None, by: str | None,
            note: str, edits: dict[str, str], ruleset_path: Path | None) -> None:
    from converge_rules import api
    from converge_rules.errors import InputError

    if by is not None and not by.strip():
        # (`--by "$APPROVER"` with the variable unset): the trace must say who decided
        raise click.UsageError("--by is empty: name who decides (or leave --by out for "
                               "the OS user)")
    with _open(store) as opened:
        ruleset = None
        if ruleset_path is not None:
            if not ruleset_path.exists():
                from converge_rules.cli._common import missing_path

                raise missing_path(ruleset_path)
            from converge_rules.cli._common import load_plugins

            ruleset = api.load(ruleset_path, plugins=load_plugins())
        try:
            decision = api._decide(opened, ident, kind, job=job, by=by, at=None, note=note,
                                   edits=edits, ruleset=ruleset, plugins=True,
                                   edits_as_text=True)
        except InputError as exc:
            from converge_rules.text import printable

            click.echo(f"converge: error: {printable(exc.message)}", err=True)
            if exc.help:
                click.echo(f"  help: {printable(exc.help)}", err=True)
            click.echo("  nothing was recorded: fix the --set value and run again",
                       err=True)
            raise click.exceptions.Exit(EXIT_USAGE) from None
        info = api._awaiting_job(opened, job)
        held = api.pending(opened, info.id)
        decided = {d.id for d in api.decisions(opened, info.id)}
    fact = next((p.fact_text() for p in held if p.id == ident), "")
    what = "approved" if kind == "approve" else "rejected"
    edited = (" with " + ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}"
                                   for k, v in decision.edits.items())
              if decision.edits else "")
    click.echo(f"{what} {ident} {fact}{edited} of job {info.id} by {decision.by} at "
               f"{decision.at}")
    left = [p.id for p in held if p.id not in decided]
    if left:
        click.echo(f"{len(left)} fact{'s' if len(left) != 1 else ''} of the job still "
                   f"without a decision: {', '.join(left[:10])}{' …' if len(left) > 10 else ''}"
                   f"; decide {'them' if len(left) != 1 else 'it'} too (`converge pending "
                   f"{store}`), or resume now (`converge run --resume {store} --job "
                   f"{info.id}`): the job applies the decisions and pauses again on what "
                   "is left")
    else:
        click.echo(f"every pending fact has a decision: converge run --resume {store} "
                   f"--job {info.id}")
    raise click.exceptions.Exit(EXIT_OK)
