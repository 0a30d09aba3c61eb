"""Shared rulesets for the tests of the test runner, coverage, explain and the pytest
plugin. The shop ruleset lives in ``data/shop.cvg`` so the CLI tests can read it too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SHOP = (DATA / "shop.cvg").read_text(encoding="utf-8")

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
