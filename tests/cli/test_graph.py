"""``converge graph``: the dependency graph as DOT, Mermaid and SVG."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main

RULESET = """\
ruleset shop "A shop"
uses tool fx_rate
fact Cost { key sku: str, amount: float }
fact Price { key sku: str, amount: float }
fact Alert { sku: str, message: str }
intent NeedRate { currency: str }

agent price tier 1 {
  when Cost(sku, amount)
  emit Price(sku: sku, amount: amount * 1.2)
}

agent ask tier 1 {
  when Cost(sku)
  intend NeedRate(currency: "EUR")
}

agent fetch tier 1 {
  when intent NeedRate(currency)
  call fx_rate(currency: currency) as rate
  emit Cost(sku: currency, amount: rate.usd)
}

agent unpriced tier 2 {
  when Cost(sku) and not Price(sku) where count(Alert()) < 3
  emit Alert(sku: sku, message: "no price")
}

policy Price { resolve by lowest amount }
"""


def _graph(tmp_path: Path, *args: str, text: str = RULESET) -> tuple[int, str]:
    path = tmp_path / "shop.cvg"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["graph", str(path), *args])
    return result.exit_code, result.output


def test_dot_groups_agents_by_tier_and_dashes_negation(tmp_path: Path) -> None:
    code, out = _graph(tmp_path)
    assert code == 0, out
    assert out.startswith('digraph "shop" {')
    tier1 = out.split("subgraph cluster_tier_1 {")[1].split("}")[0]
    tier2 = out.split("subgraph cluster_tier_2 {")[1].split("}")[0]
    assert "a_price" in tier1 and "a_fetch" in tier1 and "a_unpriced" not in tier1
    assert "a_unpriced" in tier2
    assert 't_Price -> a_unpriced [style=dashed, label="not"];' in out
    assert 't_Alert -> a_unpriced [style=dashed, label="aggregate"];' in out
    assert "t_Cost -> a_price;" in out
    assert "a_price -> t_Price;" in out
    assert "a_ask -> t_NeedRate;" in out
    assert "t_NeedRate -> a_fetch;" in out
    assert "policy: lowest amount" in out
    assert 'tool_fx_rate [label="tool fx_rate", shape=hexagon];' in out


def test_dot_output_is_deterministic(tmp_path: Path) -> None:
    assert _graph(tmp_path) == _graph(tmp_path)


def test_mermaid_uses_dashed_arrows_for_negation(tmp_path: Path) -> None:
    code, out = _graph(tmp_path, "--format", "mermaid")
    assert code == 0, out
    assert out.startswith("flowchart LR\n")
    assert '  subgraph tier_2["tier 2"]' in out
    assert "  t_Price -. not .-> a_unpriced" in out
    assert "  t_Cost --> a_price" in out
    assert '  t_NeedRate(["intent NeedRate"])' in out


def test_svg_without_graphviz_says_what_to_do(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    nothing_installed = tmp_path / "empty-bin"
    nothing_installed.mkdir()
    monkeypatch.setenv("PATH", str(nothing_installed))  # a machine without Graphviz
    code, out = _graph(tmp_path, "--format", "svg")
    assert code == 2
    assert "install graphviz" in out.lower()
    assert "--format dot" in out and "Traceback" not in out


# Graphviz is the Debian/Ubuntu package `graphviz` (`brew install graphviz` on macOS);
# CI runs this test only where `dot` is installed.
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_svg_with_graphviz(tmp_path: Path) -> None:
    code, out = _graph(tmp_path, "--format", "svg")
    assert code == 0
    assert "<svg" in out


def test_syntax_error_is_a_diagnostic_and_exit_2(tmp_path: Path) -> None:
    code, out = _graph(tmp_path, text="ruleset r\nagent a {\n  when Cost(\n")
    assert code == 2
    assert "shop.cvg:" in out and "Traceback" not in out


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "g.mmd"
    code, _ = _graph(tmp_path, "--format", "mermaid", "-o", str(target))
    assert code == 0
    assert target.read_text(encoding="utf-8").startswith("flowchart LR")
