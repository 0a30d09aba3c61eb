"""The CLI hands plugins what they registered for: extra checks run in ``converge
check``, observers see every ``converge run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main

PLUGIN = '''
import json
from pathlib import Path

from converge_rules.plugins.api import hookimpl
from converge_rules.language.diagnostics.core import Diagnostic, Severity

SEEN = Path({seen!r})


def no_tier_three(checked):
    for agent in checked.agents:
        if agent.tier == 3:
            yield Diagnostic("CVG899", Severity.WARNING, "tier 3 is reserved here",
                             agent.name.span, "use tier 1 or 2")


@hookimpl
def converge_register_checks(register):
    register("no_tier_three", no_tier_three, "house rule: no tier 3")


@hookimpl
def converge_on_result(result):
    SEEN.write_text(json.dumps({{"status": result.status, "cycles": result.cycles}}))
'''

RULESET = '''ruleset r "r"

fact A { x: int }
fact B { x: int }

agent copy tier 3 {
  when A(x)
  emit B(x: x)
}
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    seen = tmp_path / "seen.json"
    (tmp_path / "house_rules.py").write_text(PLUGIN.format(seen=str(seen)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "house_rules", raising=False)  # each test its own copy
    (tmp_path / "r.cvg").write_text(RULESET)
    (tmp_path / "in.jsonl").write_text('{"A": {"x": 1}}\n')
    return tmp_path


def test_plugin_checks_report_in_converge_check(plugin: Path) -> None:
    result = CliRunner().invoke(main, ["--plugin", "house_rules", "check", "--format", "json",
                                       str(plugin / "r.cvg")])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)["diagnostics"]
    assert [(d["code"], d["line"]) for d in found] == [("CVG899", 6)]
    strict = CliRunner().invoke(main, ["--plugin", "house_rules", "check", "--strict",
                                       str(plugin / "r.cvg")])
    assert strict.exit_code == 1
    assert "tier 3 is reserved here" in strict.output


def test_no_plugins_skips_plugin_checks(plugin: Path) -> None:
    result = CliRunner().invoke(main, ["--plugin", "house_rules", "check", "--no-plugins",
                                       "--format", "json", str(plugin / "r.cvg")])
    assert json.loads(result.output)["diagnostics"] == []


def test_observers_see_every_run(plugin: Path) -> None:
    result = CliRunner().invoke(main, ["--plugin", "house_rules", "run", str(plugin / "r.cvg"),
                                       "--facts", str(plugin / "in.jsonl"), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads((plugin / "seen.json").read_text()) == {"status": "converged",
                                                               "cycles": 1}


def test_check_warns_about_tools_no_installed_plugin_provides(tmp_path: Path) -> None:
    ruleset = tmp_path / "uses.cvg"
    ruleset.write_text('ruleset uses "u"\nuses tool no_such_tool_anywhere\n')
    found = CliRunner().invoke(main, ["check", "--format", "json", str(ruleset)])
    assert found.exit_code == 0, found.output  # a warning, not an error
    diagnostics = json.loads(found.output)["diagnostics"]
    assert [(d["code"], d["line"], d["column"]) for d in diagnostics] == [("CVG804", 2, 11)]
    offline = CliRunner().invoke(main, ["check", "--no-plugins", "--format", "json",
                                        str(ruleset)])
    assert json.loads(offline.output)["diagnostics"] == []
