"""A store on a read-only disk, mount or directory (an archived job, a backup mounted
read-only) can still be read: store info, trace export, verify and replay work, and a
command that would write says the file or its directory is read-only and what to do,
not SQLite's bare 'unable to open database file'."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from converge_rules.cli import main

ROOT = Path(__file__).resolve().parents[2]
PRICING = ROOT / "rulesets" / "pricing"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@contextlib.contextmanager
def _read_only(where: Path) -> Iterator[Path]:
    """``where`` made read-only: a read-only bind mount when running as root (root may
    write a chmod'ed directory), else mode 0555."""
    for extra in where.glob("*.db-*"):  # a closed store leaves no WAL files
        extra.unlink()
    if os.geteuid() == 0:
        if sys.platform != "linux" or not shutil.which("mount"):
            pytest.skip("root, and no bind mount to make a directory read-only")
        for step in (["mount", "--bind", str(where), str(where)],
                     ["mount", "-o", "remount,ro,bind", str(where)]):
            done = subprocess.run(step, capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", str(where)], capture_output=True, check=False)
                pytest.skip(f"cannot make a read-only bind mount: {done.stderr!r}")
        try:
            yield where
        finally:
            subprocess.run(["umount", str(where)], capture_output=True, check=True)
    else:
        where.chmod(0o555)
        try:
            yield where
        finally:
            where.chmod(0o755)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only directory holding a finished job's store (``run.db``); its trace,
    exported before, is ``trace.jsonl`` beside it."""
    where = tmp_path / "archive"
    where.mkdir()
    code, out = _run("run", str(PRICING / "pricing.cvg"), "--facts",
                     str(PRICING / "input.jsonl"), "--store", str(where / "run.db"))
    assert code == 0, out
    code, out = _run("trace", "export", str(where / "run.db"), "-o",
                     str(tmp_path / "trace.jsonl"))
    assert code == 0, out
    with _read_only(where):
        yield where


def test_a_store_in_a_read_only_directory_can_be_read(read_only_dir: Path,
                                                     tmp_path: Path) -> None:
    store = str(read_only_dir / "run.db")
    code, out = _run("store", "info", store)
    assert code == 0, out
    assert "converged" in out
    exported = tmp_path / "exported.jsonl"
    code, out = _run("trace", "export", store, "-o", str(exported))
    assert code == 0, out
    assert exported.read_bytes() == (tmp_path / "trace.jsonl").read_bytes()
    code, out = _run("verify", store)
    assert code == 0, out
    assert out.startswith("intact:")
    code, out = _run("replay", str(PRICING / "pricing.cvg"), store)
    assert code == 0, out
    assert sorted(p.name for p in read_only_dir.iterdir()) == ["run.db"]


@pytest.mark.parametrize("command", ["run", "gc", "new"])
def test_writing_a_store_in_a_read_only_directory_says_so(read_only_dir: Path,
                                                          command: str) -> None:
    store = str(read_only_dir / "run.db")
    if command == "run":
        args = ["run", str(PRICING / "pricing.cvg"), "--facts",
                str(PRICING / "input.jsonl"), "--store", store]
    elif command == "gc":
        args = ["store", "gc", store, "--keep-last", "0"]
    else:
        store = str(read_only_dir / "new.db")
        args = ["run", str(PRICING / "pricing.cvg"), "--facts",
                str(PRICING / "input.jsonl"), "--store", store]
    code, out = _run(*args)
    assert code != 0
    assert f"cannot write the store {store}: the file or its directory is read-only" in out
    assert "Traceback" not in out


def test_a_read_only_store_that_needs_a_migration_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from converge_rules.store import sqlite

    where = tmp_path / "archive"
    where.mkdir()
    with monkeypatch.context() as m:  # written by a converge one schema version older
        m.setattr(sqlite, "MIGRATIONS", sqlite.MIGRATIONS[:-1])
        m.setattr(sqlite, "SCHEMA_VERSION", sqlite.SCHEMA_VERSION - 1)
        sqlite.SqliteStore(where / "old.db").close()
    with _read_only(where):
        code, out = _run("store", "info", str(where / "old.db"))
    assert code != 0
    assert (f"the store {where / 'old.db'} has schema version {sqlite.SCHEMA_VERSION - 1} "
            "and may not be written") in out
    assert "cannot be upgraded" in out
