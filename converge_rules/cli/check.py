"""``converge check``: every diagnostic of one or more rulesets, in the format a person
or a CI system wants."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from converge_rules.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    allow_path_option,
    color_option,
    diagnostic_sources,
    expand_paths,
    load_plugins,
    refuse_to_overwrite,
    report_internal_errors,
    use_color,
    write_output,
)
from converge_rules.language.diagnostics.core import Diagnostic, Severity
from converge_rules.language.diagnostics.render import FORMATS, render

if TYPE_CHECKING:
    from converge_rules.plugins.registries import Registries


@click.command("check")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="human", show_default=True,
    help="human (coloured on a terminal), text (human, never coloured), json, sarif "
         "(GitHub code scanning), junit (test-report dashboards), github (Actions "
         "annotations).",
)
@click.option("--strict", is_flag=True, help="Warnings fail the check too (exit code 1).")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Write the report to this file instead of stdout.",
)
@click.option(
    "--no-plugins", is_flag=True,
    help="Check without the installed plugins: calls of their tools and functions and "
         "`using` resolvers are then not checked against what the plugins provide.",
)
@allow_path_option
@color_option
@report_internal_errors
def command(
    paths: tuple[str, ...], fmt: str, strict: bool, output: Path | None, no_plugins: bool,
    allow_paths: tuple[Path, ...], color: str,
) -> None:
    """Check rulesets and report every diagnostic: syntax, names, types, tiers,
    policies, budgets, imports, tests and tools.

    Each PATH is a .cvg file or a directory searched recursively for .cvg files.
    Every file is checked as an entry point together with the files it imports, which
    must lie below its folder (or a folder given with --allow-path).

    \b
    Examples:
      converge check pricing.cvg
      converge check rulesets/ --strict
      converge check rulesets/ --format sarif -o converge.sarif
      converge check rulesets/ --format github        # annotations in GitHub Actions
      converge check rulesets/ --format junit -o converge-junit.xml

    \b
    Exit codes:
      0  no errors (and no warnings with --strict)
      1  errors found, or warnings with --strict
      2  bad usage (e.g. a path that does not exist) or an internal error

    Each diagnostic code (CVG101 …) is explained, with a wrong and a right example,
    in docs/diagnostics.md.
    """
    files = expand_paths(paths)
    refuse_to_overwrite(output, files, "--output")
    from converge_rules.language.checks.checker import check, checked_sources
    from converge_rules.language.loader import load_file

    registries = None if no_plugins else installed_registries()
    known = {} if registries is None else registries.checker_kwargs()
    found: dict[Diagnostic, None] = {}  # a file imported by another is reported once
    sources: dict[str, str] = {}  # the texts as checked, for the snippets
    read: list[Path] = []  # every file the rulesets name: the report must not replace one
    for path in files:
        loaded = load_file(path, allow_paths=allow_paths)
        read.extend(loaded.files)
        checked = check(loaded, **known)
        found.update(dict.fromkeys(checked.diagnostics))
        if registries is not None and checked.ok:  # plugin lint rules see sound rulesets
            found.update(dict.fromkeys(registries.run_checks(checked)))
        sources.update(checked_sources(checked))
    diagnostics = list(found)
    sources.update(diagnostic_sources(diagnostics, skip=sources))
    colour = fmt == "human" and output is None and use_color(color)
    text = render(fmt, diagnostics, sources, files=[_display_name(p) for p in files],
                  color=colour, strict=strict)
    refuse_to_overwrite(output, read, "--output")
    write_output(text, output)
    if output is not None and fmt in ("human", "text"):
        summary = text.rstrip("\n").rsplit("\n", 1)[-1]
        click.echo(f"{summary} (report written to {output})", err=True)
    sys.exit(exit_code(diagnostics, strict=strict))


def installed_registries() -> Registries:
    """What the built-ins, the installed plugins and the ``--plugin`` modules register.
    Raises ``PluginError`` (a clear error, exit code 2) when a plugin fails to load."""
    return load_plugins()


def exit_code(diagnostics: Iterable[Diagnostic], *, strict: bool) -> int:
    """1 when there is an error, or a warning under ``strict``; otherwise 0. Notes never
    fail a check."""
    failing = {Severity.ERROR, Severity.WARNING} if strict else {Severity.ERROR}
    return EXIT_FINDINGS if any(d.severity in failing for d in diagnostics) else EXIT_OK


def _display_name(path: Path) -> str:
    """A file as the loader names it in spans (:func:`~converge_rules.language.loader.
    display_path`): relative to the working directory when it lies below it, otherwise
    absolute."""
    from converge_rules.language.loader import display_path

    return display_path(path)
