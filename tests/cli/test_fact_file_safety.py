"""Fact files that are not files, and fact-file errors that carry hostile text (found:
`--facts /dev/zero` was an internal MemoryError; a newline in a fact file's type name
printed `::error::…` on a line of its own, forging a CI annotation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main


@pytest.fixture
def ruleset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "r.cvg"
    path.write_text("ruleset r\nfact A { key k: str, x: float }\n")
    return path


def test_a_device_as_facts_is_refused_not_read(ruleset: Path) -> None:
    result = CliRunner().invoke(main, ["run", "r.cvg", "-f", "/dev/zero"])
    assert result.exit_code == 2
    assert "it is a device, not a file of facts" in result.output
    assert "internal error" not in result.output


@pytest.mark.parametrize("line", [
    '{"A\\n::error::forged": {"k": "x"}}',
    '{"A": {"k": "x", "z\\n::error::forged": 1}}',
])
def test_hostile_names_in_fact_errors_stay_on_one_line(ruleset: Path, line: str) -> None:
    Path("in.jsonl").write_text(line + "\n")
    result = CliRunner().invoke(main, ["run", "r.cvg", "-f", "in.jsonl"])
    assert result.exit_code == 2
    assert not any(out.startswith("::error::") for out in result.output.splitlines())
    assert "\\n::error::forged" in result.output
