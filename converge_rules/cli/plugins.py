"""``converge plugins``: the installed plugins, their versions, and what each registered."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import click

from converge_rules.cli._common import EXIT_OK, plugin_modules, report_internal_errors
from converge_rules.plugins import (
    PluginManager,
    collect,
    get_plugin_manager,
)
from converge_rules.plugins.api import Entry, Function, Tool
from converge_rules.plugins.registries import Registries

_ENTRY_KINDS = ("resolvers", "pruners", "executors", "stores", "checks")


@click.command("plugins")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for scripts.")
@click.option("--no-builtins", is_flag=True,
              help="Leave out the built-in plugins (functions, executors…).")
@report_internal_errors
def command(fmt: str, no_builtins: bool) -> None:
    """List the installed plugins, their versions, and what each registered: tools with
    their signatures, functions, resolvers, pruners, executors, stores and checks.

    Plugins are found through the `converge_rules` entry-point group (pip install is
    all it takes) and `--plugin MODULE`; CONVERGE_PLUGINS (allow-list) and
    CONVERGE_DISABLE_PLUGINS (deny-list) choose among them.

    \b
    Examples:
      converge plugins
      converge plugins --format json
      converge --plugin my_tools plugins      # a local module, not installed

    Exit codes: 0 listed; 2 a plugin failed to load (the message names it).
    """
    pm = get_plugin_manager(plugin_modules())
    registries = collect(pm)
    listing = describe(pm, registries, builtins=not no_builtins)
    if fmt == "json":
        click.echo(json.dumps({"plugins": listing}, indent=2, sort_keys=False))
    else:
        click.echo(render_text(listing), nl=False)
    sys.exit(EXIT_OK)


def describe(
    pm: PluginManager, registries: Registries, *, builtins: bool
) -> list[dict[str, Any]]:
    """One JSON-ready record per plugin, in load order (built-ins first)."""
    by_plugin: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def add(plugin: str, kind: str, record: dict[str, Any]) -> None:
        by_plugin.setdefault(plugin, {}).setdefault(kind, []).append(record)

    for tool in registries.tools.values():
        add(tool.plugin, "tools", _tool(tool))
    for function in registries.functions.values():
        add(function.plugin, "functions", _function(function))
    for kind in _ENTRY_KINDS:
        entries: Mapping[str, Entry[Any]] = getattr(registries, kind)
        for entry in entries.values():
            add(entry.plugin, kind, {"name": entry.name, "description": entry.description})

    listing = []
    for name, origin in pm.origins.items():
        if origin.kind == "builtin" and not builtins:
            continue
        plugin = pm.get_plugin(name)
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or ())
        record: dict[str, Any] = {
            "name": name,
            "kind": origin.kind,
            "module": origin.module,
            "distribution": origin.distribution,
            "version": origin.version,
            "hooks": hooks,
        }
        for kind in ("tools", "functions", *_ENTRY_KINDS):
            record[kind] = by_plugin.get(name, {}).get(kind, [])
        listing.append(record)
    return listing


def _tool(tool: Tool) -> dict[str, Any]:
    sig = tool.signature()
    return {"name": tool.name, "args": sig.args, "result": sig.result,
            "async": tool.is_async, "description": tool.description}


def _function(function: Function) -> dict[str, Any]:
    return {"name": function.name, "args": list(function.args), "result": function.result,
            "variadic": function.variadic, "description": function.description}


def render_text(listing: list[dict[str, Any]]) -> str:
    """The listing for people: one block per plugin."""
    if not listing:
        return "no plugins\n"
    lines: list[str] = []
    for record in listing:
        version = f" {record['version']}" if record["version"] else ""
        where = {"builtin": "built-in", "entry-point": f"entry point {record['module']}",
                 "module": f"--plugin {record['module']}"}[record["kind"]]
        lines.append(f"{record['name']}{version} ({where})")
        for tool in record["tools"]:
            args = ", ".join(f"{k}: {v}" for k, v in tool["args"].items())
            result = ", ".join(f"{k}: {v}" for k, v in tool["result"].items())
            lines.append(f"  tool {tool['name']}({args}) -> {{{result}}}")
            if tool["description"]:
                lines.append(f"      {tool['description']}")
        for function in record["functions"]:
            args = ", ".join(function["args"]) + (", …" if function["variadic"] else "")
            lines.append(f"  function {function['name']}({args}) -> {function['result']}")
        for kind in _ENTRY_KINDS:
            for entry in record[kind]:
                text = f"  {kind[:-1]} {entry['name']}"
                lines.append(text + (f" — {entry['description']}" if entry["description"]
                                     else ""))
        if not any(record[k] for k in ("tools", "functions", *_ENTRY_KINDS)):
            lines.append("  (registers nothing; hooks: " + (", ".join(record["hooks"])
                                                            or "none") + ")")
    return "\n".join(lines) + "\n"
