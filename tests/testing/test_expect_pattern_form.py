"""An expectation's pattern says what it checks, nothing is dropped from it.

Met as: ``expect not Price(sku: "A1")`` passed while the run held ``Price(sku: "A1")``:
the `not` of the pattern was read and ignored, so the step expected the fact to exist
(``expect no Price(…)`` is how a test expects its absence). A binder
(``expect p: Price(…)``) was ignored as well.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main
from converge_rules.language.checks.checker import check_file

RULES = """\
ruleset shop
fact Cost  { key sku: str, amount: float }
fact Price { key sku: str, amount: float }
agent double {
  when Cost(sku, amount)
  emit Price(sku: sku, amount: amount * 2.0)
}
test "absent" {
  given Cost(sku: "A1", amount: 1.0)
  STEP
}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("step", "fix"), [
    ('expect not Price(sku: "A1")', 'expect no Price(sku: "A1")'),
    ('expect conflict not Price(sku: "A1")', 'expect conflict Price(sku: "A1")')])
def test_not_in_an_expectation_is_an_error_that_says_what_to_write(step: str,
                                                                   fix: str) -> None:
    Path("shop.cvg").write_text(RULES.replace("STEP", step), encoding="utf-8")
    errors = [d for d in check_file(Path("shop.cvg")).diagnostics if d.is_error]
    assert [(d.code, d.span.line if d.span else None) for d in errors] == [("CVG709", 10)]
    assert errors[0].help is not None and f"`{fix}`" in errors[0].help


def test_the_test_with_not_no_longer_passes() -> None:
    Path("shop.cvg").write_text(RULES.replace("STEP", 'expect not Price(sku: "A1")'),
                                encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "shop.cvg"])
    assert result.exit_code == 2, result.output
    assert "1 passed" not in result.output and "CVG709" in result.output


def test_a_binder_in_an_expectation_is_an_error() -> None:
    Path("shop.cvg").write_text(RULES.replace("STEP", 'expect p: Price(sku: "A1")'),
                                encoding="utf-8")
    errors = [d for d in check_file(Path("shop.cvg")).diagnostics if d.is_error]
    assert [d.code for d in errors] == ["CVG709"]
    assert errors[0].help is not None and "remove `p:`" in errors[0].help


def test_expect_no_still_checks_absence() -> None:
    Path("shop.cvg").write_text(RULES.replace("STEP", 'expect no Price(sku: "A1")'),
                                encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "shop.cvg"])
    assert result.exit_code == 1 and "0 passed, 1 failed" in result.output, result.output
