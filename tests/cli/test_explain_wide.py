"""``converge explain`` on a wide derivation: a fact derived over many matches (a
transitive closure) is explained in a tree of bounded size, the rest counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main

CLOSURE = """ruleset wide

fact Edge { a: int, b: int }
fact Reach { a: int, b: int }

agent base {
  when Edge(a, b)
  emit Reach(a: a, b: b)
}

agent step {
  when Reach(a, b) and Edge(a: b, b: c)
  emit Reach(a: a, b: c)
}
"""


@pytest.fixture(autouse=True)
def _complete_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("wide.cvg").write_text(CLOSURE, encoding="utf-8")
    n = 6
    Path("in.jsonl").write_text(
        "".join(json.dumps({"Edge": {"a": i, "b": j}}) + "\n"
                for i in range(n) for j in range(n) if i != j), encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "wide.cvg", "-f", "in.jsonl",
                                       "--trace", "run.jsonl"])
    assert result.exit_code == 0, result.output


def test_a_wide_derivation_is_cut_and_counted() -> None:
    # Every Reach of a complete graph of 6 nodes has 6 derivations, each resting on
    # another Reach: the tree multiplied by 6 at every level, 10,500 lines here and
    # 600,000 (minutes) for 8 nodes.
    result = CliRunner().invoke(main, ["explain", "--trace", "run.jsonl", "-r", "wide.cvg",
                                       "Reach(a: 0, b: 1)"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) < 1_000
    assert lines[0] == "Reach(a: 0, b: 1)"
    assert "  by agent base at wide.cvg:6:1 in cycle 1" in lines
    assert "  … 2 more derivations not shown" in lines


def test_json_counts_the_derivations_left_out() -> None:
    result = CliRunner().invoke(main, ["explain", "--trace", "run.jsonl", "--format", "json",
                                       "Reach(a: 0, b: 1)"])
    assert result.exit_code == 0, result.output
    (tree,) = json.loads(result.output)["facts"]
    assert len(tree["derivations"]) + tree["more_derivations"] == 6
    assert tree["more_derivations"] >= 1
