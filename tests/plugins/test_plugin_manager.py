"""The plugin manager: built-ins, entry points, allow/deny lists, --plugin modules, and
plugins that fail to load."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from converge_rules.engine.executors import fork_available
from converge_rules.errors import PluginError
from converge_rules.plugins import (
    DEFAULT_PLUGINS,
    ENV_ALLOW,
    ENV_DISABLE,
    collect,
    get_plugin_manager,
    plugin_names,
)

TOOL_PLUGIN = """
from pydantic import BaseModel
from converge_rules.plugins.api import hookimpl
from converge_rules.plugins.api import Tool

class Args(BaseModel):
    text: str

class Result(BaseModel):
    size: int

def size(args):
    return {"size": len(args.text)}

@hookimpl
def converge_register_tools(register):
    register(Tool("{name}", size, Args, Result, "length of a text"))
"""


def test_builtins_are_plugins() -> None:
    pm = get_plugin_manager(entry_points=False)
    builtins = [o for o in pm.origins.values() if o.kind == "builtin"]
    assert [o.module for o in builtins] == list(DEFAULT_PLUGINS)
    registries = collect(pm)
    assert registries.functions["round"].plugin == "builtin.functions"
    assert registries.executors["threads"].plugin == "builtin.executors"


def test_entry_point_plugin_is_loaded_with_its_version(
    install_plugin: Callable[..., str],
) -> None:
    install_plugin("converge-size", TOOL_PLUGIN.replace("{name}", "size"), version="2.3")
    pm = get_plugin_manager(environ={ENV_ALLOW: "converge-size"})
    origin = pm.origins["converge-size"]
    assert (origin.kind, origin.distribution, origin.version) == (
        "entry-point", "converge-size", "2.3")
    tool = collect(pm).tools["size"]
    assert tool.plugin == "converge-size"


def test_naming_an_installed_plugins_module_again_loads_it_once(
    install_plugin: Callable[..., str],
) -> None:
    # `converge --plugin converge_ray` where converge-ray is installed: it used to fail
    # with "already registered under a different name"
    install_plugin("converge-size", TOOL_PLUGIN.replace("{name}", "size"))
    pm = get_plugin_manager(["converge_size_plugin"], environ={ENV_ALLOW: "converge-size"})
    assert plugin_names(pm) == ["converge-size"]
    assert collect(pm).tools["size"].plugin == "converge-size"


def test_allow_list_loads_only_the_named_plugins(install_plugin: Callable[..., str]) -> None:
    install_plugin("converge-a", TOOL_PLUGIN.replace("{name}", "tool_a"))
    install_plugin("converge-b", TOOL_PLUGIN.replace("{name}", "tool_b"))
    pm = get_plugin_manager(environ={ENV_ALLOW: "converge-b"})
    assert plugin_names(pm) == ["converge-b"]
    assert "tool_a" not in collect(pm).tools


def test_allow_list_naming_a_missing_plugin_is_an_error() -> None:
    with pytest.raises(PluginError) as info:
        get_plugin_manager(environ={ENV_ALLOW: "converge-nope"})
    assert info.value.plugin == "converge-nope"
    assert "not installed" in info.value.message


def test_disable_list_skips_a_plugin(install_plugin: Callable[..., str]) -> None:
    install_plugin("converge-a", TOOL_PLUGIN.replace("{name}", "tool_a"))
    install_plugin("converge-b", TOOL_PLUGIN.replace("{name}", "tool_b"))
    pm = get_plugin_manager(environ={ENV_ALLOW: "converge-a,converge-b",
                                     ENV_DISABLE: " converge-a "})
    assert plugin_names(pm) == ["converge-b"]


def test_plugin_that_fails_to_import_is_named(install_plugin: Callable[..., str]) -> None:
    install_plugin("converge-broken", "import no_such_module_anywhere\n")
    with pytest.raises(PluginError) as info:
        get_plugin_manager(environ={ENV_ALLOW: "converge-broken"})
    assert info.value.plugin == "converge-broken"
    assert "no_such_module_anywhere" in info.value.message
    assert ENV_DISABLE in info.value.message


def test_misspelled_hook_fails_loudly(write_module: Callable[[str, str], str]) -> None:
    write_module("typo_plugin", """
        from converge_rules.plugins.api import hookimpl

        @hookimpl
        def converge_register_tool(register):
            pass
    """)
    with pytest.raises(PluginError) as info:
        get_plugin_manager(["typo_plugin"], entry_points=False)
    assert info.value.plugin == "typo_plugin"
    assert "converge_register_tool" in info.value.message


def test_hook_with_a_wrong_argument_is_rejected(write_module: Callable[[str, str], str]) -> None:
    write_module("badarg_plugin", """
        from converge_rules.plugins.api import hookimpl

        @hookimpl
        def converge_register_tools(registry):
            pass
    """)
    with pytest.raises(PluginError, match="badarg_plugin") as info:
        get_plugin_manager(["badarg_plugin"], entry_points=False)
    # found: the message stopped at pluggy's first line, "Plugin 'badarg_plugin' for hook
    # 'converge_register_tools'", which says neither what is wrong nor what to write
    assert info.value.message == (
        "cannot be registered: converge_register_tools(registry): Argument(s) "
        "{'registry'} are declared in the hookimpl but can not be found in the hookspec; "
        "the hook takes (register), or fewer of them (docs/plugins.md)")


def test_a_hooks_wrong_arguments_are_named_in_the_same_order_in_every_process(
        tmp_path: Path) -> None:
    # found (review, session 27): pluggy prints them as a set, whose order follows the
    # process's string hashes: "{'extra', 'registry'}" in one run, "{'registry',
    # 'extra'}" in the next
    (tmp_path / "twoargs_plugin.py").write_text(
        "from converge_rules.plugins.api import hookimpl\n\n"
        "@hookimpl\ndef converge_register_tools(registry, extra):\n    pass\n")
    code = ("from converge_rules.plugins.manager import get_plugin_manager\n"
            "try:\n    get_plugin_manager(['twoargs_plugin'], entry_points=False)\n"
            "except Exception as e:\n    print(e.message)\n")
    seen = set()
    for seed in ("1", "2", "3", "4"):
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout
        seen.add(out)
    assert len(seen) == 1, seen
    assert "Argument(s) {'extra', 'registry'} are declared" in seen.pop()


@pytest.mark.parametrize(("hook", "call", "takes"), [
    ("converge_register_tools", 'register("fx_rate", lambda args: {"usd": 1.0})',
     r"register\(\) for tools takes one converge_rules.plugins.api.Tool: "
     r"register\(Tool\(name, fn, args, result, description\)\), not \('fx_rate', <function"),
    ("converge_register_functions", "register()",
     r"register\(\) for functions takes one converge_rules.plugins.api.Function"),
    ("converge_register_resolvers", 'register(name="r")',
     r"register\(\) for resolvers takes \(name, object, description=''\), not \(name='r'\)"),
])
def test_register_called_wrongly_says_what_it_takes(
    write_module: Callable[[str, str], str], hook: str, call: str, takes: str,
) -> None:
    # found: "converge_register_tools raised TypeError: _register_callback.<locals>.
    # register_tool() takes 1 positional argument but 2 were given"
    write_module("wrongcall_plugin", f"""
        from converge_rules.plugins.api import hookimpl

        @hookimpl
        def {hook}(register):
            {call}
    """)
    from converge_rules.plugins import load_registries

    with pytest.raises(PluginError, match=takes) as info:
        load_registries(["wrongcall_plugin"])
    assert info.value.plugin == "wrongcall_plugin"


def test_one_module_name_as_a_string_is_a_type_error_naming_the_list() -> None:
    # found: load_registries("claims_demo") imported module 'c' ("plugin 'c': failed to
    # import module c"), a character at a time
    from converge_rules.plugins import load_registries

    with pytest.raises(TypeError, match=r"got the str 'claims_demo'; write \['claims_demo'\]"):
        load_registries("claims_demo")
    with pytest.raises(TypeError, match="a list of names"):
        get_plugin_manager("claims_demo", entry_points=False)


def test_extra_module_is_loaded(write_module: Callable[[str, str], str]) -> None:
    write_module("local_tools", TOOL_PLUGIN.replace("{name}", "local"))
    pm = get_plugin_manager(["local_tools"], entry_points=False)
    assert pm.origins["local_tools"].kind == "module"
    assert collect(pm).tools["local"].plugin == "local_tools"


def test_extra_module_that_does_not_import_is_named() -> None:
    with pytest.raises(PluginError) as info:
        get_plugin_manager(["no_such_plugin_module"], entry_points=False)
    assert info.value.plugin == "no_such_plugin_module"
    assert "ModuleNotFoundError" in info.value.message


def test_extra_module_whose_hooks_lack_the_marker_is_named(
        write_module: Callable[[str, str], str]) -> None:
    # pluggy ignores a function that is not marked @hookimpl: the plugin loaded, added
    # nothing, and the ruleset's run then said its function was not available.
    write_module("unmarked_plugin", """
        from converge_rules.plugins.api import Function

        def converge_register_functions(register):
            register(Function("double", lambda x: 2 * x, params=("int",), result="int"))
    """)
    with pytest.raises(PluginError) as info:
        get_plugin_manager(["unmarked_plugin"], entry_points=False)
    assert info.value.plugin == "unmarked_plugin"
    assert info.value.message.startswith(
        "implements no hook: converge_register_functions is not marked @hookimpl; "
        "decorate each hook function with @hookimpl")


def test_extra_module_that_is_no_plugin_is_named() -> None:
    with pytest.raises(PluginError) as info:
        get_plugin_manager(["json"], entry_points=False)  # `--plugin json`
    assert info.value.plugin == "json"
    assert info.value.message.startswith("implements no hook; decorate each hook")
    assert "check the module's name" in info.value.message


def test_plugin_error_pickles() -> None:
    import pickle

    error = PluginError("converge-x", "boom")
    again = pickle.loads(pickle.dumps(error))
    assert (again.plugin, again.message, str(again)) == ("converge-x", "boom", str(error))


def test_registries_carry_what_plugins_register_and_no_engine_table_changes(
    write_module: Callable[[str, str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from converge_rules.plugins import load_registries

    write_module("engine_parts", """
        from converge_rules.plugins.api import hookimpl

        def coin(type_spec, contenders):
            return [0]

        class Cluster:
            def __init__(self, workers):
                self.workers = workers

            def start(self, *a, **k): ...
            def run_cycle(self, *a, **k): ...
            def close(self): ...

        class Memory:
            def __init__(self, location):
                self.location = location

            def write_lines(self, lines): ...

        @hookimpl
        def converge_register_resolvers(register):
            register("coin", coin)

        @hookimpl
        def converge_register_executors(register):
            register("cluster", Cluster)

        @hookimpl
        def converge_register_stores(register):
            register("memory", Memory)
    """)
    monkeypatch.setenv(ENV_ALLOW, "")
    monkeypatch.setenv(ENV_DISABLE, "converge-http,converge-llm,converge-example,converge-ray")
    registries = load_registries(["engine_parts"])
    assert registries.resolvers["coin"].plugin == "engine_parts"
    assert registries.executor("cluster", 3).workers == 3  # type: ignore[attr-defined]
    assert registries.trace_sink("memory", "x").location == "x"  # type: ignore[attr-defined]
    # Another plugin set in the same process does not see them: nothing was installed
    # into a table the engine reads.
    builtins = load_registries()
    assert "coin" not in builtins.resolvers and "cluster" not in builtins.executors
    assert sorted(builtins.executors) == sorted(["serial", "threads", "asyncio",
                                                 *(["processes"] if fork_available() else [])])
