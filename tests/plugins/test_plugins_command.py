"""``converge plugins`` and the global ``--plugin MODULE`` option."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main
from converge_rules.plugins import ENV_ALLOW, ENV_DISABLE

LOCAL = """
from pydantic import BaseModel
from converge_rules.plugins.api import hookimpl
from converge_rules.plugins.api import Function, Tool

class Args(BaseModel):
    city: str
    days: int = 1

class Forecast(BaseModel):
    rain: float

async def forecast(args):
    return {"rain": 0.5}

@hookimpl
def converge_register_tools(register):
    register(Tool("forecast", forecast, Args, Forecast, "rain probability"))

@hookimpl
def converge_register_functions(register):
    register(Function("slug", lambda s: s.lower(), ("str",), "str"))

@hookimpl
def converge_register_resolvers(register):
    register("coin", lambda t, c: [0], "always the first")
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the built-ins and the test's --plugin modules, whatever is pip-installed.
    monkeypatch.setenv(ENV_DISABLE, "converge-http,converge-llm,converge-example,converge-ray,"
                                    "converge-postgres")
    monkeypatch.delenv(ENV_ALLOW, raising=False)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_text_lists_each_plugin_and_what_it_registered(
    write_module: Callable[[str, str], str],
) -> None:
    write_module("weather_tools", LOCAL)
    code, out, _ = invoke("--plugin", "weather_tools", "plugins")
    assert code == 0
    block = out[out.index("weather_tools (--plugin weather_tools)"):]
    assert "  tool forecast(city: str, days: int?) -> {rain: float}\n" in block
    assert "      rain probability\n" in block
    assert "  function slug(str) -> str\n" in block
    assert "  resolver coin — always the first\n" in block
    assert "function round(float, int) -> float" in out  # built-ins are listed too
    assert "executor threads" in out


def test_json_format(write_module: Callable[[str, str], str]) -> None:
    write_module("weather_tools", LOCAL)
    code, out, _ = invoke("--plugin", "weather_tools", "plugins", "--format", "json",
                          "--no-builtins")
    assert code == 0
    (plugin,) = json.loads(out)["plugins"]
    assert plugin["name"] == "weather_tools" and plugin["kind"] == "module"
    assert plugin["tools"] == [{"name": "forecast", "args": {"city": "str", "days": "int?"},
                                "result": {"rain": "float"}, "async": True,
                                "description": "rain probability"}]
    assert plugin["hooks"] == ["converge_register_functions", "converge_register_resolvers",
                               "converge_register_tools"]


def test_a_plugin_that_fails_to_load_is_named_without_a_traceback(
    write_module: Callable[[str, str], str],
) -> None:
    write_module("broken_tools", "raise RuntimeError('missing API key')\n")
    code, _, err = invoke("--plugin", "broken_tools", "plugins")
    assert code == 2
    assert "plugin 'broken_tools'" in err and "missing API key" in err
    assert "Traceback" not in err


def test_an_installed_plugin_shows_up_in_a_fresh_process(
    install_plugin: Callable[..., str], plugin_dir: Path,
) -> None:
    install_plugin("converge-size", LOCAL, version="3.1")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), *sys.path]),
           ENV_ALLOW: "converge-size"}
    env.pop(ENV_DISABLE, None)
    completed = subprocess.run(
        [sys.executable, "-c", "from converge_rules.cli import main; main()",
         "plugins", "--format", "json", "--no-builtins"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    (plugin,) = json.loads(completed.stdout)["plugins"]
    assert (plugin["name"], plugin["version"], plugin["distribution"]) == (
        "converge-size", "3.1", "converge-size")
    assert [t["name"] for t in plugin["tools"]] == ["forecast"]


def test_plugin_option_reaches_other_commands(
    write_module: Callable[[str, str], str], plugin_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_module("weather_tools", LOCAL)
    monkeypatch.chdir(plugin_dir)
    (plugin_dir / "picnic.cvg").write_text(
        "ruleset picnic\n"
        "uses tool forecast\n"
        "fact Plan { key city: str }\n"
        "fact Rain { key city: str, chance: float }\n"
        "agent ask {\n"
        "  when Plan(city)\n"
        "  call forecast(city: 42) as weather\n"
        "  emit Rain(city: city, chance: weather.rain)\n"
        "}\n"
    )
    code, out, _ = invoke("--plugin", "weather_tools", "check", "picnic.cvg",
                          "--format", "text")
    assert code == 1
    assert "argument `city` of tool `forecast` expects str" in out
    code, out, _ = invoke("check", "picnic.cvg", "--format", "text")  # the tool is unknown
    assert code == 0, out
