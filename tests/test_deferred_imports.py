"""``import_deferring`` imports a module with one of its imports put off until first
used, and leaves ``sys.modules`` as a plain import would once that one is used."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from converge_rules.deferred_imports import import_deferring


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh modules ``wz_outer`` (imports ``wz_inner``, uses it in a function),
    ``wz_eager`` (uses ``wz_inner`` while imported) and ``wz_inner``."""
    (tmp_path / "wz_inner.py").write_text("VALUE = 42\n", encoding="utf-8")
    (tmp_path / "wz_outer.py").write_text(
        "import wz_inner\n\ndef value():\n    return wz_inner.VALUE\n", encoding="utf-8")
    (tmp_path / "wz_eager.py").write_text(
        "import wz_inner\n\nAT_IMPORT = wz_inner.VALUE\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("wz_inner", "wz_outer", "wz_eager"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def test_the_deferred_module_is_imported_at_its_first_use(modules: Path) -> None:
    outer = import_deferring("wz_outer", "wz_inner")
    assert sys.modules["wz_outer"] is outer
    assert "wz_inner" not in sys.modules  # put off
    assert outer.value() == 42  # first use: imported now
    inner = sys.modules["wz_inner"]
    assert type(inner) is types.ModuleType and inner.VALUE == 42
    import wz_inner  # type: ignore[import-not-found]

    assert wz_inner is inner  # whoever imports it gets the module itself


def test_a_module_that_uses_it_while_imported_gets_it(modules: Path) -> None:
    eager = import_deferring("wz_eager", "wz_inner")
    assert eager.AT_IMPORT == 42
    assert type(sys.modules["wz_inner"]) is types.ModuleType


def test_nothing_is_deferred_when_either_is_imported_already(modules: Path) -> None:
    import wz_inner

    outer = import_deferring("wz_outer", "wz_inner")
    assert outer.wz_inner is wz_inner
    assert import_deferring("wz_outer", "wz_other") is outer  # imported: as it is


def test_a_failed_import_leaves_no_stand_in(modules: Path) -> None:
    (modules / "wz_broken.py").write_text("import wz_inner\nraise ValueError('no')\n",
                                          encoding="utf-8")
    with pytest.raises(ValueError, match="no"):
        import_deferring("wz_broken", "wz_inner")
    assert "wz_inner" not in sys.modules and "wz_broken" not in sys.modules
