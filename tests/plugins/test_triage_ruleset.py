"""The triage example ruleset checks clean against the installed plugins' signatures and
its `test` blocks pass with mocked tools."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from converge_rules.cli import main
from converge_rules.language.checks.checker import check_file
from converge_rules.plugins import load_registries

TRIAGE = Path(__file__).resolve().parents[2] / "rulesets" / "triage" / "triage.cvg"


def test_triage_checks_clean_with_the_plugins() -> None:
    registries = load_registries()
    checked = check_file(TRIAGE, tools=registries.tool_signatures(),
                         functions=registries.function_signatures(),
                         resolvers=sorted(registries.resolvers))
    assert [f"{d.code} {d.message}" for d in checked.diagnostics] == []
    assert set(checked.tools) == {"llm", "http_json"}


def test_triage_tests_pass_with_mocked_tools() -> None:
    result = CliRunner().invoke(main, ["test", str(TRIAGE)])
    assert result.exit_code == 0, result.output
    assert "6 passed, 0 failed" in result.output
