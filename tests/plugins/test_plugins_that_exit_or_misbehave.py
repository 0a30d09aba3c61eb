"""Plugin code that calls ``sys.exit``, or hands back the wrong thing, is that plugin's
failure, named as such — never converge exiting with the plugin's code, never "a bug
in converge" (found: a plugin calling ``sys.exit(0)`` at import made ``converge run``
exit 0 with no output; a tool raising ``SystemExit(3)`` ended the run with exit 3; a
resolver returning ``True`` or ``0.0`` was taken as index 1 or 0)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import converge_rules
from converge_rules.plugins import load_registries

CONSOLE = Path(sys.executable).with_name("converge")
INSTALLED = "converge-http,converge-llm,converge-example,converge-ray"

RULESET = """ruleset r
uses tool boom
fact Word { key w: str }
fact Out { key w: str, n: int }
agent call_it {
  when Word(w)
  call boom(w: w) as b
  emit Out(w: w, n: b.n)
}
agent plain {
  when Word(w)
  emit Out(w: w, n: 1)
}
policy Out { resolve by lowest n }
"""

TOOL = """
import sys
from pydantic import BaseModel
from converge_rules.plugins.api import Tool, hookimpl

class A(BaseModel):
    w: str

class N(BaseModel):
    n: int

def boom(args):
    sys.exit(3)

@hookimpl
def converge_register_tools(register):
    register(Tool("boom", boom, A, N))
"""


def converge(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(CONSOLE.parent), "PYTHONPATH": f"{tmp}:{':'.join(sys.path)}",
           "CONVERGE_DISABLE_PLUGINS": INSTALLED}
    return subprocess.run([str(CONSOLE), *args], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_a_plugin_that_exits_at_import_is_a_plugin_error(tmp_path: Path) -> None:
    (tmp_path / "quitter.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "r.cvg").write_text("ruleset r\nfact A { x: int }\n")
    (tmp_path / "in.jsonl").write_text('{"A": {"x": 1}}\n')
    done = converge(tmp_path, "--plugin", "quitter", "run", "r.cvg", "-f", "in.jsonl")
    assert done.returncode == 2, done
    assert "plugin 'quitter'" in done.stderr and "SystemExit" in done.stderr
    assert "internal error" not in done.stderr


def test_a_tool_that_exits_fails_its_agent_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "boom_tool.py").write_text(TOOL)
    (tmp_path / "r.cvg").write_text(RULESET)
    (tmp_path / "in.jsonl").write_text('{"Word": {"w": "a"}}\n')
    done = converge(tmp_path, "--plugin", "boom_tool", "run", "r.cvg", "-f", "in.jsonl",
                    "--format", "json")
    assert done.returncode == 0, done
    assert '"n": 1' in done.stdout
    assert "agent `call_it` failed" in done.stderr and "SystemExit" in done.stderr


@pytest.mark.parametrize("answer", ["[True]", "[0.0]", "['1']"])
def test_a_resolver_answering_other_than_int_indexes_is_refused(
    answer: str, write_module: Callable[[str, str], str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS", INSTALLED)
    write_module("odd_resolver", f"""
from converge_rules.plugins.api import hookimpl

@hookimpl
def converge_register_resolvers(register):
    register("odd", lambda type_spec, contenders: {answer})
""")
    ruleset = converge_rules.loads("""ruleset r
fact Word { key w: str }
fact Out { key k: str, n: int }
agent one { when Word(w) emit Out(k: "k", n: 1) }
agent two { when Word(w) emit Out(k: "k", n: 2) }
policy Out { resolve by using odd }
""", plugins=load_registries(["odd_resolver"]))
    result = converge_rules.run(ruleset, [("Word", {"w": "a"})])
    assert result.status == "conflict"
    assert "resolver 'odd' returned" in result.detail and "int indexes" in result.detail


def test_an_executor_factory_returning_garbage_is_named(
    write_module: Callable[[str, str], str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS", INSTALLED)
    write_module("bad_exec", """
from converge_rules.plugins.api import hookimpl

@hookimpl
def converge_register_executors(register):
    register("junk", lambda workers: 42)
""")
    registries = load_registries(["bad_exec"])
    with pytest.raises(converge_rules.PluginError,
                       match=r"plugin 'bad_exec': executor 'junk': the factory returned int"):
        registries.executor("junk")


@pytest.mark.parametrize("answer", ["None", "[42]", "[]", "[][1]", "exit(7)"])
def test_an_executor_answering_garbage_is_named_as_the_executors_fault(
    answer: str, write_module: Callable[[str, str], str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from converge_rules.cli import main

    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS", INSTALLED)
    write_module("junk_exec", f"""
from converge_rules.engine.executors import SerialExecutor
from converge_rules.plugins.api import hookimpl

class Junk(SerialExecutor):
    def run_cycle(self, cycle, delta, activations):
        return {answer}

@hookimpl
def converge_register_executors(register):
    register("junk", lambda workers: Junk())
""")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.cvg").write_text("ruleset r\nfact A { x: int }\nfact B { x: int }\n"
                                    "agent a { when A(x) emit B(x: x) }\n")
    (tmp_path / "in.jsonl").write_text('{"A": {"x": 1}}\n')
    result = CliRunner().invoke(main, ["--plugin", "junk_exec", "run", "r.cvg", "-f",
                                       "in.jsonl", "--executor", "junk"])
    assert result.exit_code == 2, result.output
    assert "bug in the executor" in result.output
    assert "internal error" not in result.output and "bug in converge" not in result.output
