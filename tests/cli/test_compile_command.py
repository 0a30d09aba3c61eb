"""``converge compile``: summary, --show AGENT / all, unknown agents and bad rulesets."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main

RULESET = """\
ruleset shop
fact Cost  { key sku: str, amount: float }
fact Price { key sku: str, amount: float }
agent markup { when Cost(sku, amount) emit Price(sku: sku, amount: amount * 1.2) }
agent markdown tier 2 { when Price(sku, amount) where amount > 100.0
  emit Price(sku: sku, amount: amount * 0.9) }
prune Cost when age > 3
"""


@pytest.fixture()
def ruleset(tmp_path: Path) -> Path:
    path = tmp_path / "shop.cvg"
    path.write_text(RULESET, encoding="utf-8")
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["compile", *args])
    return result.exit_code, result.stdout, result.stderr


def test_summary(ruleset: Path) -> None:
    code, out, _ = invoke(str(ruleset))
    assert code == 0
    assert "2 agents" in out and "agent markup (tier 1) reads Cost; emits Price" in out


def test_show_one_agent_prints_compilable_source(ruleset: Path) -> None:
    code, out, _ = invoke(str(ruleset), "--show", "markup")
    assert code == 0
    assert out.startswith("# agent 'markup'")
    assert "def agent(view, since, runtime):" in out
    assert "markdown" not in out
    compile(out, "<shown>", "exec")


def test_show_all_includes_every_agent_and_prune(ruleset: Path) -> None:
    code, out, _ = invoke(str(ruleset), "--show", "all")
    assert code == 0
    assert "# agent 'markup'" in out and "# agent 'markdown'" in out
    assert "def prune(values, age):" in out


def test_unknown_agent_suggests_and_exits_2(ruleset: Path) -> None:
    code, _, err = invoke(str(ruleset), "--show", "markp")
    assert code == 2
    assert "no agent named 'markp'" in err and "`markup`" in err


def test_ruleset_errors_are_diagnostics_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cvg"
    bad.write_text("ruleset b\nfact A { a: int }\nagent q { when A(a) emit A(a: c) }\n",
                   encoding="utf-8")
    code, out, err = invoke(str(bad), "--show", "q")
    assert code == 2
    assert "CVG106" in err and "bad.cvg:3:" in err
    assert "Traceback" not in out + err


def test_missing_file_is_usage_error(tmp_path: Path) -> None:
    code, _, err = invoke(str(tmp_path / "nope.cvg"))
    assert code == 2
    assert "does not exist" in err


def test_show_agent_colon_name_shows_an_agent_named_all_alone(tmp_path: Path) -> None:
    # found (r27): `--show all` always meant everything, so an agent named `all` could
    # not be shown alone
    path = tmp_path / "shop.cvg"
    path.write_text(RULESET.replace("agent markdown", "agent all"), encoding="utf-8")
    code, out, err = invoke(str(path), "--show", "agent:all")
    assert (code, err) == (0, "")
    assert "# agent 'all'" in out and "markup" not in out
    code, out, err = invoke(str(path), "--show", "all")  # as before: everything
    assert code == 0 and "# agent 'all'" in out and "# agent 'markup'" in out
    assert "--show agent:all prints it alone" in err
    code, out, _ = invoke(str(path), "--show", "agent:markup")
    assert code == 0 and "# agent 'markup'" in out and "# agent 'all'" not in out
