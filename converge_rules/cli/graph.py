"""``converge graph``: draw a ruleset's dependency graph (fact types, agents, tiers) as
Graphviz DOT, Mermaid or SVG."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click

from converge_rules.analysis.depgraph import build_graph, to_dot, to_mermaid
from converge_rules.cli._common import (
    EXIT_USAGE,
    allow_path_option,
    missing_path,
    refuse_to_overwrite,
    report_internal_errors,
    write_output,
)
from converge_rules.language.diagnostics.render import render

GRAPH_FORMATS = ("dot", "mermaid", "svg")

GRAPHVIZ_MISSING = (
    "--format svg needs the Graphviz `dot` program, which is not installed (or not on "
    "PATH). Install graphviz (e.g. `apt install graphviz`, `brew install graphviz`, "
    "https://graphviz.org/download/), or use --format dot or --format mermaid (GitHub "
    "renders mermaid in Markdown)."
)


@click.command("graph")
@click.argument("ruleset", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(GRAPH_FORMATS), default="dot",
              show_default=True, help="dot (Graphviz source), mermaid, or svg (runs `dot`).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the graph to this file instead of stdout.")
@allow_path_option
@report_internal_errors
def command(ruleset: Path, fmt: str, output: Path | None,
            allow_paths: tuple[Path, ...]) -> None:
    """Draw RULESET's dependency graph: fact and intent types (boxes; input-only types
    shaded; policy and prune noted), agents (ellipses, one box per tier), tools
    (hexagons). An edge from a type to an agent means the agent reads it; dashed edges
    are negations (`not`) and aggregates, the edges stratification constrains; an edge
    from an agent to a type means it emits or intends it.

    \b
    Examples:
      converge graph pricing.cvg | dot -Tpng > pricing.png
      converge graph pricing.cvg --format mermaid >> README.md
      converge graph pricing.cvg --format svg -o pricing.svg

    \b
    Exit codes: 0 drawn, 2 the ruleset does not load (syntax or import errors, printed
    as diagnostics), bad usage, or Graphviz missing for --format svg.
    """
    from converge_rules.language.loader import load_file

    if not ruleset.exists():
        raise missing_path(ruleset)
    refuse_to_overwrite(output, [ruleset], "--output")
    loaded = load_file(ruleset, allow_paths=allow_paths)
    if not loaded.ok or not loaded.modules:
        click.echo(render("text", loaded.diagnostics, loaded.sources), err=True, nl=False)
        sys.exit(EXIT_USAGE)
    refuse_to_overwrite(output, loaded.files, "--output")
    graph = build_graph(loaded.modules)
    if fmt == "mermaid":
        write_output(to_mermaid(graph), output)
        return
    dot_text = to_dot(graph)
    if fmt == "dot":
        write_output(dot_text, output)
        return
    write_output(to_svg(dot_text), output)


def to_svg(dot_text: str) -> str:
    """Run Graphviz ``dot -Tsvg``; a missing binary or a failing run is a usage error
    (exit 2) that says what to do."""
    binary = shutil.which("dot")
    if binary is None:
        raise click.UsageError(GRAPHVIZ_MISSING)
    done = subprocess.run([binary, "-Tsvg"], input=dot_text, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise click.UsageError(f"Graphviz `dot` failed: {done.stderr.strip()}")
    return done.stdout
