"""``converge compile``: compile a ruleset and show the Python generated for its agents,
prune conditions and ``require`` goals."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from converge_rules.cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    allow_path_option,
    color_option,
    load_plugins,
    missing_path,
    report_internal_errors,
    use_color,
)
from converge_rules.language.diagnostics.suggest import did_you_mean


@click.command("compile")
@click.argument("ruleset", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--show", "show", default=None, metavar="AGENT",
    help="Print the generated Python of this agent; `all` prints every agent, prune "
         "condition and require goal; `agent:NAME` the agent NAME alone, whatever its name "
         "(`agent:all` for an agent named `all`).",
)
@click.option("--no-plugins", is_flag=True,
              help="Compile without the installed plugins (their functions are unknown).")
@allow_path_option
@color_option
@report_internal_errors
def command(ruleset: Path, show: str | None, no_plugins: bool,
            allow_paths: tuple[Path, ...], color: str) -> None:
    """Compile RULESET and report what it compiles to; with --show, print the generated
    Python source (what the engine runs for each agent).

    \b
    Examples:
      converge compile pricing.cvg                 # a summary: types, agents, indexes
      converge compile pricing.cvg --show undercut # one agent's generated code
      converge compile pricing.cvg --show all
      converge compile pricing.cvg --show agent:all  # the agent named `all` alone

    \b
    Exit codes:
      0  compiled
      2  the ruleset has errors (they are printed), an unknown agent, or bad usage
    """
    if not ruleset.exists():
        raise missing_path(ruleset)
    from converge_rules.compiler.compile import compile_ruleset
    from converge_rules.errors import CompileError
    from converge_rules.language.checks.checker import check, checked_sources
    from converge_rules.language.diagnostics.render import render
    from converge_rules.language.loader import load_file

    signatures, impls = _plugins(no_plugins)
    checked = check(load_file(ruleset, allow_paths=allow_paths), **signatures)
    if not checked.ok:
        colour = use_color(color, sys.stderr)
        text = render("human", list(checked.diagnostics), checked_sources(checked),
                      color=colour)
        click.echo(text, err=True, nl=False)
        sys.exit(EXIT_USAGE)
    try:
        program = compile_ruleset(checked, **impls)
    except CompileError as exc:
        click.echo(f"converge: cannot compile {ruleset}: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if show is None:
        click.echo(_summary(program))
        sys.exit(EXIT_OK)
    if show == "all":
        if any(a.name == "all" for a in program.agents):
            click.echo("converge: note: an agent is named `all`; --show agent:all prints "
                       "it alone", err=True)
        parts = [a.source for a in program.agents]
        parts += [p.source for p in program.prunes]
        parts += [r.source for r in program.requires]
        click.echo("\n".join(parts), nl=False)
        sys.exit(EXIT_OK)
    show = show.removeprefix("agent:")  # `agent:all`: the agent named `all`
    agent = next((a for a in program.agents if a.name == show), None)
    if agent is None:
        names = [a.name for a in program.agents]
        hint = did_you_mean(show, names, otherwise="agents: " + ", ".join(names)
                            if names else "the ruleset declares no agent")
        click.echo(f"converge: no agent named {show!r} in {ruleset}", err=True)
        click.echo(f"  help: {hint} (or --show all)", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(agent.source, nl=False)
    sys.exit(EXIT_OK)


def _plugins(disabled: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword arguments for the checker and for the compiler, from the built-ins and
    (unless ``disabled``) the installed plugins."""
    registries = load_plugins(no_plugins=disabled)
    return registries.checker_kwargs(), registries.compiler_kwargs()


def _summary(program: Any) -> str:
    lines = [f"ruleset {program.name}: {len(program.types)} types, "
             f"{len(program.agents)} agents, {len(program.indexes)} indexes"]
    for a in program.agents:
        # `negates` holds the aggregated types too (a removal re-runs the agent for both)
        negated = tuple(t for t in a.negates if t not in a.aggregates)
        lines.append(f"  agent {a.name} (tier {a.tier}) reads "
                     f"{_names(program, a.reads) or '-'}; emits {_names(program, a.emits) or '-'}"
                     + (f"; negates {_names(program, negated)}" if negated else "")
                     + (f"; aggregates {_names(program, a.aggregates)}" if a.aggregates
                        else ""))
    for ix in program.indexes:
        spec = program.types[ix.type_id]
        fields = ", ".join(spec.fields[p].name for p in ix.positions)
        lines.append(f"  index {ix.id}: {spec.name}({fields})")
    lines.append("use --show AGENT (or --show all) to print the generated code")
    return "\n".join(lines)


def _names(program: Any, ids: tuple[int, ...]) -> str:
    return ", ".join(program.types[i].name for i in ids)
