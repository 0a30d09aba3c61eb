"""The ``converge`` command.

Each sub-command lives in its own module under ``converge_rules/cli/`` and exposes a
click command named ``command``. Exit codes everywhere: 0 clean, 1 findings or failures,
2 usage or internal error, 141 stdout closed by its reader (``| head``).

A sub-command's module is imported only when that command runs (or its own help is
asked for): editors and pre-commit hooks start ``converge`` on every save, so
``converge --version`` must not pay for the engine, and ``converge check`` not for the
compiler. ``converge --help`` lists the commands from the one-line summaries in
:data:`COMMANDS`, without importing them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from gettext import gettext as _
from typing import Any

import click

from converge_rules import __version__

COMMANDS: dict[str, str] = {
    "run": "Run RULESET on input facts until every tier converges, and print the result.",
    "check": "Check rulesets and report every diagnostic: syntax, names, types, tiers, "
             "policies, budgets, imports, tests and tools.",
    "test": "Run every `test` block in PATH...",
    "fmt": "Rewrite .cvg files in the one canonical layout.",
    "compile": "Compile RULESET and report what it compiles to; with --show, print the "
               "generated Python source (what the engine runs for each agent).",
    "explain": "Explain the facts matching PATTERN: the derivation tree of each (the agent "
               "that produced it, its rule's location, the cycle, the bindings of the "
               "match, the support facts recursively down to input facts, and the "
               "conflicts it won).",
    "graph": "Draw RULESET's dependency graph: fact and intent types (boxes; input-only "
             "types shaded; policy and prune noted), agents (ellipses, one box per tier), "
             "tools (hexagons).",
    "plugins": "List the installed plugins, their versions, and what each registered: "
               "tools with their signatures, functions, resolvers, pruners, executors, "
               "stores and checks.",
    "replay": "Replay a recorded job against RULESET: TRACE_OR_STORE is a trace (written "
              "by `converge run --trace`) or a store (`converge run --store`: run.db, "
              "sqlite:///PATH, postgresql://HOST/DB; --job ID, else its newest job).",
    "bench": "Measure the engine and the parser on built-in workloads.",
    "trace": "Work with the traces of jobs kept in a store (`converge run --store run.db`).",
    "report": "Write a report of one job as one self-contained HTML page: a summary "
              "(status, cycles, facts, conflicts, budgets against their limits, unmet "
              "goals, failed agents, tool calls), a timeline per cycle and tier, the final "
              "facts as sortable, filterable tables per type, every conflict, a derivation "
              "explorer, agents and tool calls.",
    "lsp": "Start the language server for .cvg files, speaking LSP over stdin and stdout.",
    "store": "Inspect a job store (`converge run --store run.db`) and keep it small.",
    "verify": "Verify the integrity chain of TRACE (a JSON Lines trace) or of a job kept "
              "in STORE: every line's hash must follow from the line and the hash before "
              "it, and a finished job's trace must end with its status event.",
    "pending": "List the facts a job of STORE waits on: each fact its approval gates "
               "hold, with its id, the gate, the fact, the agent and cycle that derived "
               "it, what it rests on (for a pending total of a `combine` type that "
               "grew: every part held since the key's value), and the decision "
               "recorded on it so far (if any).",
    "approve": "Approve the pending fact ID of a job of STORE: when the job resumes "
               "(`converge run --resume STORE`) the fact enters its context as it was "
               "held, or with the fields --set changes.",
    "reject": "Reject the pending fact ID of a job of STORE: when the job resumes "
              "(`converge run --resume STORE`) the fact is dropped, and the job never "
              "derives it again from the same support.",
}
"""Every sub-command (module ``converge_rules.cli.NAME``, or the module
:data:`MODULES` names) and the first sentence of its help, which ``converge --help``
shortens to fit the terminal as click would."""

MODULES = {"pending": "approvals", "approve": "approvals", "reject": "approvals"}
"""Commands that share a module (``converge_rules.cli.MODULE``), where each is the
click command named as the command itself (a module of one command names it
``command``)."""


class _LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands by name: the module of a command in :data:`COMMANDS` is
    imported on first look-up of that name; commands added later are kept as given.
    Iterating lists the names without importing anything."""

    def __init__(self, modules: dict[str, str]) -> None:
        self._modules = dict(modules)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name in self._loaded:
            return self._loaded[name]
        module_name = self._modules.get(name)
        if module_name is None:
            raise KeyError(name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command not built yet
            if exc.name != module_name:
                raise
            raise KeyError(name) from None
        attribute = "command" if module_name.endswith(f".{name}") else name
        command: click.Command = getattr(module, attribute)
        self._loaded[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self._loaded and name not in self._modules:
            raise KeyError(name)
        self._loaded.pop(name, None)
        self._modules.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._modules
        yield from (name for name in self._loaded if name not in self._modules)

    def __len__(self) -> int:
        return len(self._modules.keys() | self._loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._modules or name in self._loaded

    def is_loaded(self, name: str) -> bool:
        """Whether the command ``name`` is at hand without importing its module."""
        return name in self._loaded


def _closed_pipe() -> click.exceptions.Exit:
    """Stdout's reader went away (``converge --help | head``): point stdout at the
    null device so that nothing fails again at exit, and exit 141 (128 + SIGPIPE)."""
    from converge_rules.cli._common import EXIT_CLOSED_PIPE, silence_stdout

    silence_stdout()
    return click.exceptions.Exit(EXIT_CLOSED_PIPE)


class LazyGroup(click.Group):
    """A click group whose sub-commands in :data:`COMMANDS` are imported only when
    run; its help lists them from their summaries there."""

    commands: _LazyCommands

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        given = dict(self.commands)
        self.commands = _LazyCommands({name: f"{__name__}.{MODULES.get(name, name)}"
                                       for name in COMMANDS})
        self.commands.update(given)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """The group's own options (``--help``, ``--version`` print here), a closed
        stdout ending them as it ends every sub-command."""
        try:
            return super().parse_args(ctx, args)
        except BrokenPipeError as exc:
            raise _closed_pipe() from exc

    def invoke(self, ctx: click.Context) -> Any:
        """The sub-command (its ``--help`` too); a closed stdout ends it with exit code
        141 (click's own handling would exit 1, "findings" or "not converged")."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _closed_pipe() from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section of the help, as click writes it, with each command not
        yet imported summarised by a stand-in carrying its summary from the table."""
        shown: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = (self.commands[name] if self.commands.is_loaded(name)
                       else click.Command(name, help=COMMANDS[name]))
            if not command.hidden:
                shown.append((name, command))
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name, _command in shown)
        rows = [(name, command.get_short_help_str(limit)) for name, command in shown]
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
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

    Exit codes: 0 clean, 1 findings or failures, 2 usage or internal error, 141 stdout
    closed by its reader (`| head`).
    """
    # Read back by converge_rules.cli._common.plugin_modules (PLUGIN_MODULES_META).
    ctx.meta["converge_rules.plugin_modules"] = plugin_modules


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
