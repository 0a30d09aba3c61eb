"""The ``converge`` command.

Each sub-command lives in its own module under ``converge_rules/cli/`` and exposes a
click command named ``command``. Exit codes everywhere: 0 clean, 1 findings or failures,
2 usage or internal error.
"""

from __future__ import annotations

import importlib
import sys

import click

from converge_rules import __version__

# Sub-command modules, in the order ``--help`` lists them.
_COMMANDS = (
    "run", "check", "test", "fmt", "compile", "explain", "graph", "plugins", "replay", "bench",
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="converge")
@click.option("--plugin", "plugin_modules", multiple=True, metavar="MODULE",
              help="Also load this plugin module (importable, need not be installed); "
                   "repeatable.")
@click.pass_context
def main(ctx: click.Context, plugin_modules: tuple[str, ...]) -> None:
    """Write agents and conflict policies in .cvg rulesets; run them to convergence.

    \b
    Typical use:
      converge check rulesets/          # every diagnostic, in any format CI wants
      converge run pricing.cvg --facts input.jsonl
      converge test rulesets/           # the test blocks, with --coverage
      converge fmt --check rulesets/    # one canonical layout

    Exit codes: 0 clean, 1 findings or failures, 2 usage or internal error.
    """
    # Read back by converge_rules.cli._common.plugin_modules (PLUGIN_MODULES_META).
    ctx.meta["converge_rules.plugin_modules"] = plugin_modules


for _name in _COMMANDS:
    try:
        _module = importlib.import_module(f"converge_rules.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command not built yet
        if exc.name != f"converge_rules.cli.{_name}":
            raise
        continue
    main.add_command(_module.command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
