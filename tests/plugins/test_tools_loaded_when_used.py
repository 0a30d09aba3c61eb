"""A tool may name its function and models by reference (``"package.module:name"``)
with its types declared beside them: ``converge check`` then type-checks calls without
importing the tool's module (pydantic, client libraries), and a job imports it when it
starts, holding the models to the declared types."""

from __future__ import annotations

import pickle
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from converge_rules.errors import PluginError
from converge_rules.language.checks.checker import check
from converge_rules.language.loader import load_file
from converge_rules.plugins import collect, get_plugin_manager
from converge_rules.plugins.api import Tool
from converge_rules.plugins.registries import Registries, tools_for_engine

PLUGINS_MD = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"

MODELS = """
from pydantic import BaseModel


class ForecastArgs(BaseModel):
    city: str
    days: int = 1


class Forecast(BaseModel):
    rain: float


def forecast(args: ForecastArgs) -> dict:
    return {"rain": 0.25 * args.days}
"""

RULESET = """\
ruleset picnic
uses tool forecast

fact Plan { key city: str }
fact Rain { key city: str, chance: float }

agent ask {
  when Plan(city)
  call forecast(city: city, days: 2) as weather
  emit Rain(city: city, chance: weather.rain)
}
"""


def write_package(plugin_dir: Path, name: str, init: str, tool: str = MODELS) -> None:
    """``name/__init__.py`` and ``name/tool.py`` on ``sys.path``."""
    package = plugin_dir / name
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(init), encoding="utf-8")
    (package / "tool.py").write_text(textwrap.dedent(tool), encoding="utf-8")


def lazy_tool(package: str, **changes: object) -> Tool:
    fields: dict[str, object] = {
        "fn": f"{package}.tool:forecast", "args": f"{package}.tool:ForecastArgs",
        "result": f"{package}.tool:Forecast", "description": "rain probability",
        "arg_types": {"city": "str", "days": "int?"}, "result_types": {"rain": "float"},
        "plugin": "weather",
    }
    fields.update(changes)
    return Tool("forecast", **fields)  # type: ignore[arg-type]


def registries_of(tool: Tool) -> Registries:
    return Registries(tools={tool.name: tool})


def test_checking_a_call_does_not_import_the_tools_module(plugin_dir: Path) -> None:
    write_package(plugin_dir, "weather_a", "")
    tool = lazy_tool("weather_a")
    checked = check(load_file("picnic.cvg", source=RULESET),
                    tools=registries_of(tool).tool_signatures())
    assert [d.message for d in checked.diagnostics] == []
    assert "weather_a.tool" not in sys.modules
    bad = check(load_file("picnic.cvg", source=RULESET.replace("days: 2", 'days: "2"')),
                tools=registries_of(tool).tool_signatures())
    assert any("days" in d.message for d in bad.diagnostics)  # still type-checked


def test_a_job_imports_the_tool_and_calls_it(plugin_dir: Path) -> None:
    write_package(plugin_dir, "weather_b", "")
    tool = lazy_tool("weather_b")
    tools = tools_for_engine(registries_of(tool), allowed=["forecast"])
    assert "weather_b.tool" in sys.modules  # loaded when the job starts
    assert tools["forecast"]({"city": "Oslo", "days": 2}) == {"rain": 0.5}
    assert tool.args_model.__name__ == "ForecastArgs"
    assert tool.result_model.__name__ == "Forecast"
    assert not tool.is_async


def test_a_model_that_contradicts_the_declared_types_fails_the_job_before_it_runs(
        plugin_dir: Path) -> None:
    write_package(plugin_dir, "weather_c", "")
    tool = lazy_tool("weather_c", arg_types={"city": "str", "days": "int", "hours": "int?"})
    tool.signature()  # the declaration alone is well-formed
    with pytest.raises(PluginError) as caught:
        tools_for_engine(registries_of(tool), allowed=["forecast"])
    message = str(caught.value)
    assert message.startswith("plugin 'weather': tool 'forecast' args")
    assert "'days' is declared 'int' but the model says 'int?'" in message
    assert "'hours' is declared but not in the model" in message


def test_a_model_field_left_out_of_the_declaration_is_a_difference(plugin_dir: Path) -> None:
    write_package(plugin_dir, "weather_d", "")
    tool = lazy_tool("weather_d", result_types={})
    with pytest.raises(PluginError, match=r"'rain' \(float\) is in the model but not "
                                          r"declared"):
        tool.load()


def test_a_reference_that_does_not_import_names_the_plugin_and_the_reference(
        plugin_dir: Path) -> None:
    tool = lazy_tool("weather_missing")
    with pytest.raises(PluginError) as caught:
        tools_for_engine(registries_of(tool), allowed=["forecast"])
    assert str(caught.value).startswith(
        "plugin 'weather': tool 'forecast' fn: cannot import "
        "'weather_missing.tool:forecast': ModuleNotFoundError")


def test_a_reference_to_something_that_is_not_a_model_is_refused(plugin_dir: Path) -> None:
    write_package(plugin_dir, "weather_e", "")
    tool = lazy_tool("weather_e", args="weather_e.tool:forecast")
    with pytest.raises(PluginError, match=r"'weather_e\.tool:forecast' is not a pydantic "
                                          "model class"):
        tool.load()


@pytest.mark.parametrize("changes, expected", [
    ({"fn": "weather_f.forecast"}, "tool 'forecast' fn: 'weather_f.forecast' is not a "
                                   "reference; write 'package.module:name'"),
    ({"fn": "weather_f.tool:forecast\n"}, "tool 'forecast' fn: 'weather_f.tool:forecast\\n' "
                                          "is not a reference"),
    ({"arg_types": {"city": "text"}}, "'text' is not a type"),
    ({"arg_types": {"the city": "str"}}, "declared field name 'the city' is not an "
                                         "identifier"),
    ({"result_types": ["rain"]}, "declared types must be a mapping"),
    # neither a reference nor a class: was "converge_register_tools raised AttributeError"
    ({"args": 42}, "tool 'forecast' args: 42 is not a pydantic model class"),
])
def test_a_bad_reference_or_declaration_is_refused_when_the_plugin_registers(
        write_module: Callable[[str, str], str], changes: dict[str, object],
        expected: str) -> None:
    tool = lazy_tool("weather_f", **changes)
    write_module("weather_f_plugin", f"""
        from converge_rules.plugins.api import Tool, hookimpl

        @hookimpl
        def converge_register_tools(register):
            register(Tool(**{_fields(tool)!r}))
        """)
    with pytest.raises(PluginError) as caught:
        collect(get_plugin_manager(["weather_f_plugin"], entry_points=False))
    assert expected in str(caught.value)
    assert "weather_f_plugin" in str(caught.value)


def _fields(tool: Tool) -> dict[str, object]:
    return {"name": tool.name, "fn": tool.fn, "args": tool.args, "result": tool.result,
            "arg_types": tool.arg_types, "result_types": tool.result_types}


def test_a_model_class_passed_with_declared_types_is_held_to_them(
        write_module: Callable[[str, str], str]) -> None:
    write_module("weather_g_plugin", MODELS + """
from converge_rules.plugins.api import Tool, hookimpl


@hookimpl
def converge_register_tools(register):
    register(Tool("forecast", forecast, ForecastArgs, Forecast,
                  arg_types={"city": "str"}, result_types={"rain": "float"}))
""")
    with pytest.raises(PluginError, match=r"'days' \(int\?\) is in the model but not "
                                          "declared"):
        collect(get_plugin_manager(["weather_g_plugin"], entry_points=False))


def test_a_tool_without_declared_types_derives_them_from_its_referenced_models(
        plugin_dir: Path) -> None:
    write_package(plugin_dir, "weather_h", "")
    tool = lazy_tool("weather_h", arg_types=None, result_types=None)
    sig = tool.signature()
    assert (sig.args, sig.result) == ({"city": "str", "days": "int?"}, {"rain": "float"})


def test_a_loaded_lazy_tool_survives_pickling(plugin_dir: Path) -> None:
    """The process and Ray executors send tools to their workers."""
    write_package(plugin_dir, "weather_i", "")
    tool = lazy_tool("weather_i")
    tool.load()
    copy = pickle.loads(pickle.dumps(tool))
    assert copy == tool
    assert copy.validate_result({"rain": 0.5}) == {"rain": 0.5}


def test_the_guide_example_of_a_tool_loaded_when_used_works(plugin_dir: Path) -> None:
    text = PLUGINS_MD.read_text(encoding="utf-8")
    match = re.search(r"```python\n# converge_weather/__init__.py: no pydantic.*?\n(.*?)```",
                      text, re.S)
    assert match is not None
    write_package(plugin_dir, "converge_weather", match.group(1))
    registries = collect(get_plugin_manager(["converge_weather"], entry_points=False))
    assert "converge_weather.tool" not in sys.modules
    checked = check(load_file("picnic.cvg", source=RULESET),
                    tools=registries.tool_signatures())
    assert [d.message for d in checked.diagnostics] == []
    assert "converge_weather.tool" not in sys.modules
    tools = tools_for_engine(registries, allowed=["forecast"])
    assert tools["forecast"]({"city": "Oslo"}) == {"rain": 0.25}


def test_converge_run_names_a_declaration_the_model_contradicts_without_a_traceback(
        plugin_dir: Path) -> None:
    from click.testing import CliRunner

    from converge_rules.cli import main

    write_package(plugin_dir, "weather_cli", """
        from converge_rules.plugins.api import Tool, hookimpl

        @hookimpl
        def converge_register_tools(register):
            register(Tool("forecast", "weather_cli.tool:forecast",
                          "weather_cli.tool:ForecastArgs", "weather_cli.tool:Forecast",
                          arg_types={"city": "str", "days": "int?"},
                          result_types={"rain": "int"}))
        """)
    (plugin_dir / "picnic.cvg").write_text(RULESET, encoding="utf-8")
    (plugin_dir / "plans.jsonl").write_text('{"Plan": {"city": "Oslo"}}\n', encoding="utf-8")
    runner = CliRunner()
    checked = runner.invoke(main, ["--plugin", "weather_cli", "check",
                                   str(plugin_dir / "picnic.cvg")])
    # the check trusts the declaration (an int where a float is declared is fine)
    assert checked.exit_code == 0, checked.output
    ran = runner.invoke(main, ["--plugin", "weather_cli", "run", str(plugin_dir / "picnic.cvg"),
                               "-f", str(plugin_dir / "plans.jsonl")])
    assert ran.exit_code != 0
    assert "plugin 'weather_cli': tool 'forecast' result" in ran.output
    assert "'rain' is declared 'int' but the model says 'float'" in ran.output
    assert "Traceback" not in ran.output


def test_a_referenced_module_that_exits_on_import_is_a_clear_error_not_an_exit(
        plugin_dir: Path) -> None:
    """``converge run`` used to end with the module's exit code and no word at all."""
    from click.testing import CliRunner

    from converge_rules.cli import main

    write_package(plugin_dir, "weather_exit", """
        from converge_rules.plugins.api import Tool, hookimpl

        @hookimpl
        def converge_register_tools(register):
            register(Tool("forecast", "weather_exit.tool:forecast",
                          "weather_exit.tool:ForecastArgs", "weather_exit.tool:Forecast",
                          arg_types={"city": "str", "days": "int?"},
                          result_types={"rain": "float"}))
        """, tool="import sys\nsys.exit(3)\n")
    (plugin_dir / "picnic.cvg").write_text(RULESET, encoding="utf-8")
    (plugin_dir / "plans.jsonl").write_text('{"Plan": {"city": "Oslo"}}\n', encoding="utf-8")
    ran = CliRunner().invoke(main, ["--plugin", "weather_exit", "run",
                                    str(plugin_dir / "picnic.cvg"),
                                    "-f", str(plugin_dir / "plans.jsonl")])
    assert ran.exit_code == 2, ran.output
    assert ("plugin 'weather_exit': tool 'forecast' fn: cannot import "
            "'weather_exit.tool:forecast': SystemExit: 3") in ran.output
    assert "Traceback" not in ran.output


def test_declared_types_are_keyword_only_so_they_cannot_land_in_the_wrong_field() -> None:
    """Written as the guide's signature reads, positionally after ``description``, the
    declarations went into ``plugin`` (overwritten at registration) and ``arg_types``:
    ``converge check`` then type-checked calls against the result's types."""
    as_the_guide_read: tuple[object, ...] = (
        "forecast", "weather_k.tool:forecast", "weather_k.tool:ForecastArgs",
        "weather_k.tool:Forecast", "rain probability", {"city": "str"}, {"rain": "float"})
    with pytest.raises(TypeError):
        Tool(*as_the_guide_read)  # type: ignore[arg-type]
    tool = Tool("forecast", "weather_k.tool:forecast", "weather_k.tool:ForecastArgs",
                "weather_k.tool:Forecast", "rain probability",
                arg_types={"city": "str"}, result_types={"rain": "float"})
    sig = tool.signature()
    assert (sig.args, sig.result) == ({"city": "str"}, {"rain": "float"})
