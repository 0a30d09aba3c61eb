"""Fixtures for plugin tests: write a plugin module, or a whole installed distribution
with an entry point, into a temporary directory on ``sys.path``."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on ``sys.path``; modules written there are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    # Forget only the modules written here: dropping everything first imported during
    # the test (lark, say) would give later tests a second copy of its classes, and an
    # exception of the first copy would no longer match `except` of the second.
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def write_module(plugin_dir: Path) -> Callable[[str, str], str]:
    """``write_module(name, source)`` writes ``name.py`` and returns the module name."""

    def write(name: str, source: str) -> str:
        (plugin_dir / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


@pytest.fixture
def install_plugin(
    plugin_dir: Path, write_module: Callable[[str, str], str]
) -> Callable[..., str]:
    """``install_plugin(name, source, version="1.0")`` writes a module and a
    ``.dist-info`` declaring it in the ``converge_rules`` entry-point group, so
    ``importlib.metadata`` finds it as an installed plugin named ``name``."""

    def install(name: str, source: str, version: str = "1.0", module: str | None = None) -> str:
        module = module or f"{name.replace('-', '_')}_plugin"
        write_module(module, source)
        dist = plugin_dir / f"{name.replace('-', '_')}-{version}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        (dist / "entry_points.txt").write_text(f"[converge_rules]\n{name} = {module}\n")
        return name

    return install
