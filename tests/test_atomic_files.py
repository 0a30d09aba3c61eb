"""Every file converge writes is written atomically: the target changes only when the
whole new text is on disk; a failure leaves it exactly as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from converge_rules.files import AtomicTextFile, write_text_atomic


def test_a_failure_mid_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), AtomicTextFile(target) as out:
        out.write("new, half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "rules.cvg"
    target.write_text("ruleset a\n")
    os.chmod(target, 0o640)
    write_text_atomic(target, "ruleset b\n")
    assert target.read_text() == "ruleset b\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_new_file_gets_the_usual_permissions_not_the_temporarys(tmp_path: Path) -> None:
    target = tmp_path / "new.txt"
    old = os.umask(0o022)
    try:
        write_text_atomic(target, "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.cvg"
    real.write_text("ruleset a\n")
    link = tmp_path / "link.cvg"
    link.symlink_to(real)
    write_text_atomic(link, "ruleset b\n")
    assert link.is_symlink() and real.read_text() == "ruleset b\n"


def test_a_device_is_written_in_place_never_replaced() -> None:
    write_text_atomic("/dev/null", "discarded")
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
