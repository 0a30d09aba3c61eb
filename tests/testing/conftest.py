"""Shared rulesets for the tests of the test runner, coverage, explain and the pytest
plugin. The shop ruleset lives in ``data/shop.cvg`` so the CLI tests can read it too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SHOP = (DATA / "shop.cvg").read_text(encoding="utf-8")

PASSING = """
test "undercut wins when the margin allows" {
  given Cost(sku: "A1", amount: 10.0)
  given Quote(sku: "A1", vendor: "acme", amount: 12.0)
  expect Price(sku: "A1", channel: web, amount: 11.88)
  expect conflict Price(sku: "A1")
  expect no Alert()
  expect status converged
}
"""

FAILING = """
test "wrong price" {
  given Cost(sku: "A1", amount: 10.0)
  given Quote(sku: "A1", vendor: "acme", amount: 12.0)
  expect Price(sku: "A1", channel: web, amount: 12.5)
}
"""

Writer = Callable[..., Path]


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Writer:
    """A writer of ``shop.cvg`` (the shop ruleset plus test text) in a fresh working
    directory; returns the path relative to it, as test ids show it."""
    monkeypatch.chdir(tmp_path)

    def write(tests: str, name: str = "shop.cvg", head: str = SHOP) -> Path:
        (tmp_path / name).write_text(head + tests, encoding="utf-8")
        return Path(name)

    return write
