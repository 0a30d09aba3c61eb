"""``converge fmt``: rewrite ``.cvg`` files in the one canonical layout."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from converge_rules.cli._common import (
    EXIT_FINDINGS,
    EXIT_USAGE,
    color_option,
    expand_paths,
    report_internal_errors,
    use_color,
)
from converge_rules.errors import RulesSyntaxError
from converge_rules.files import write_text_atomic
from converge_rules.language.diagnostics.core import Diagnostic

STDIN = "-"


class _InputFailure(click.ClickException):
    """A file that cannot be read: a usage error, so exit 2."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What formatting one file found: its new text, or the diagnostics that stopped it."""

    path: str
    original: str
    formatted: str | None
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original


def _format(path: str, text: str) -> _Outcome:
    from converge_rules.language.format.formatter import format_source

    try:
        return _Outcome(path, text, format_source(text, path))
    except RulesSyntaxError as exc:
        return _Outcome(path, text, None, exc.diagnostics)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _InputFailure(f"{path}: cannot read ({exc.strerror})") from exc


def _format_bytes(path: str, data: bytes) -> _Outcome:
    """Format a file's bytes; bytes that are not UTF-8 text are a diagnostic at the
    first bad byte, as ``converge check`` reports them."""
    from converge_rules.language.loader import decode_source

    text, problem = decode_source(data, path)
    if text is None:
        assert problem is not None
        shown = data.decode("utf-8", errors="replace")
        return _Outcome(path, shown, None, (problem,))
    return _format(path, text)


def _report(outcomes: Sequence[_Outcome], color: bool) -> None:
    """Print the diagnostics of the files that did not parse."""
    failed = [o for o in outcomes if o.formatted is None]
    if not failed:
        return
    diagnostics = [d for o in failed for d in o.diagnostics]
    sources = {o.path: o.original for o in failed}
    try:
        from converge_rules.language.diagnostics.render_human import render_human

        text = render_human(diagnostics, sources, files=[o.path for o in failed],
                            color=color)
    except ImportError:  # pragma: no cover - the renderer is a sibling stage
        text = "".join(
            f"{d.span or o.path}: {d.code} {d.message}\n"
            + (f"  help: {d.help}\n" if d.help else "")
            for o in failed for d in o.diagnostics
        )
    click.echo(text.rstrip("\n"), err=True)


def _lines(text: str) -> list[str]:
    # Split on "\n" only, as the parser does (str.splitlines also splits on U+2028...).
    return [line + "\n" for line in text.split("\n")[:-1]] + (
        [text.rsplit("\n", 1)[-1]] if not text.endswith("\n") and text else []
    )


def _diff(outcome: _Outcome) -> str:
    assert outcome.formatted is not None
    lines = difflib.unified_diff(
        _lines(outcome.original),
        _lines(outcome.formatted),
        fromfile=f"{outcome.path} (original)",
        tofile=f"{outcome.path} (formatted)",
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


@click.command(name="fmt")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--check", is_flag=True,
              help="Write nothing; list the files that would change and exit 1 if any.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Write nothing; print a unified diff of the changes.")
@color_option
@report_internal_errors
def command(paths: tuple[str, ...], check: bool, show_diff: bool, color: str) -> None:
    """Rewrite .cvg files in the one canonical layout.

    PATH is a file, a directory (every *.cvg below it) or - to read standard input and
    write the formatted text to standard output. Comments are kept; the meaning of the
    ruleset never changes, and formatting twice changes nothing.

    \b
    Examples:
      converge fmt rulesets/                 # rewrite every .cvg file in place
      converge fmt --check rulesets/         # CI: exit 1 and list files that would change
      converge fmt --diff pricing.cvg        # show what would change, write nothing
      cat pricing.cvg | converge fmt -       # filter: stdin to stdout

    \b
    The layout: two-space indent, one blank line between items, `=` aligned in root
    budgets, trailing comments aligned from column 42, the fewest parentheses that keep
    an expression's meaning, numbers and durations as written.

    Exit codes: 0 clean (or rewritten), 1 files would change (--check),
    2 usage error or a file with syntax errors (diagnostics are printed).
    """
    outcomes: list[_Outcome] = []
    unwritable = 0
    if STDIN in paths:
        if len(paths) > 1:
            raise click.UsageError("'-' (standard input) cannot be combined with other paths")
        data = sys.stdin.buffer.read()
        outcome = _format_bytes("<stdin>", data)
        outcomes.append(outcome)
        if outcome.formatted is not None:
            if show_diff:
                click.echo(_diff(outcome), nl=False)
            if check and outcome.changed:
                click.echo("would reformat -")
            elif not check and not show_diff:
                click.echo(outcome.formatted, nl=False)
    else:
        for path in expand_paths(paths):
            outcome = _format_bytes(str(path), _read(path))
            outcomes.append(outcome)
            if not outcome.changed:
                continue
            if show_diff:
                click.echo(_diff(outcome), nl=False)
            if check:
                click.echo(f"would reformat {path}")
            elif not show_diff:
                try:
                    write_text_atomic(path, outcome.formatted or "")
                except OSError as exc:
                    click.echo(f"converge: error: cannot write {path}: "
                               f"{exc.strerror or exc}; it was left as it was", err=True)
                    unwritable += 1
                    continue
                click.echo(f"reformatted {path}", err=True)
    _report(outcomes, use_color(color, sys.stderr))
    changed = sum(o.changed for o in outcomes)
    failed = sum(o.formatted is None for o in outcomes)
    if STDIN not in paths:
        verb = "would be reformatted" if (check or show_diff) else "reformatted"
        done = changed if (check or show_diff) else changed - unwritable
        click.echo(
            f"{done} file{'s' if done != 1 else ''} {verb}, "
            f"{len(outcomes) - changed - failed} unchanged"
            + (f", {unwritable} could not be written (left as they were)"
               if unwritable else "")
            + (f", {failed} with syntax errors" if failed else ""),
            err=True,
        )
    if failed or unwritable:
        sys.exit(EXIT_USAGE)
    if check and changed:
        sys.exit(EXIT_FINDINGS)
