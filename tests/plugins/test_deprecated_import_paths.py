"""A plugin written against the import paths documented before the plugins package
(``converge_rules.hookspecs``, ``converge_rules.registry``,
``converge_rules.compiler.program``) still installs and works, with a
DeprecationWarning that names the new path."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable

import pytest

import converge_rules
from converge_rules.plugins import load_registries

OLD_STYLE = """
from pydantic import BaseModel

from converge_rules.hookspecs import hookimpl
from converge_rules.registry import Function, Tool
from converge_rules.compiler.program import TypeSpec


class Args(BaseModel):
    word: str


class Answer(BaseModel):
    word: str


def echo(args):
    return {"word": args.word * 2}


def first(type_spec: TypeSpec, contenders):
    return [0]


@hookimpl
def converge_register_tools(register):
    register(Tool("twice", echo, Args, Answer))


@hookimpl
def converge_register_functions(register):
    register(Function("shout", lambda s: s.upper(), ("str",), "str"))


@hookimpl
def converge_register_resolvers(register):
    register("first_one", first)
"""

RULESET = """ruleset r
uses tool twice
fact Word { key w: str }
fact Out { key k: str, w: str }
agent a {
  when Word(w)
  call twice(word: w) as t
  emit Out(k: "x", w: shout(t.word))
}
agent b {
  when Word(w)
  emit Out(k: "x", w: w)
}
policy Out { resolve by using first_one }
"""


def test_a_plugin_written_the_old_way_installs_and_runs(
    install_plugin: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for old in ("converge_rules.hookspecs", "converge_rules.registry",
                "converge_rules.compiler.program"):
        monkeypatch.delitem(sys.modules, old, raising=False)
    install_plugin("old-style", OLD_STYLE)
    monkeypatch.setenv("CONVERGE_PLUGINS", "old-style")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registries = load_registries()
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert any("converge_rules.hookspecs is deprecated" in m for m in messages), messages
    assert any("converge_rules.registry is deprecated" in m for m in messages), messages
    assert any("converge_rules.program" in m for m in messages), messages
    assert registries.tools["twice"].plugin == "old-style"
    ruleset = converge_rules.loads(RULESET, plugins=registries)
    result = converge_rules.run(ruleset, [("Word", {"w": "ab"})])
    assert result.status == "converged", result.detail
    assert result.facts("Out") == [{"k": "x", "w": "ABAB"}]


@pytest.mark.parametrize("old", ["converge_rules.hookspecs", "converge_rules.registry",
                                 "converge_rules.compiler.program"])
def test_every_old_path_warns_on_import(old: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        importlib.import_module(old)
