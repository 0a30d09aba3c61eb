"""The parser table is cached on disk between processes, and the cache can only make a
process faster: whatever state the cache file or directory is in, parsing gives exactly
what a parser built from the grammar gives, and nothing fails.

Each case runs a fresh interpreter (the parser is built or loaded once per process),
parsing valid and broken rulesets; the reference is a process with the cache off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from converge_rules.language.syntax.parser_cache import CACHE_DIR_ENV, digest

REPO = Path(__file__).resolve().parents[2]
FILES = [REPO / "rulesets" / "pricing" / "pricing.cvg",
         *sorted((REPO / "grammar" / "examples" / "invalid").glob("syntax_*.cvg"))]

PROBE = """
import json, sys
from converge_rules.language.syntax.parser import parse
out = []
for name in sys.argv[1:]:
    result = parse(open(name, encoding="utf-8").read(), name)
    items = len(result.module.items) if result.module else None
    out.append([items, [[d.code, d.span.line if d.span else 0,
                         d.span.column if d.span else 0, d.message]
                        for d in result.diagnostics]])
print(json.dumps(out))
"""


def parse_in_a_process(env: dict[str, str]) -> list[object]:
    """What a fresh process parses from :data:`FILES` with the environment ``env``
    (over this one's); the process must succeed and write nothing on stderr."""
    full = {k: v for k, v in os.environ.items()
            if k not in (CACHE_DIR_ENV, "XDG_CACHE_HOME")}
    full.update(env)
    done = subprocess.run([sys.executable, "-c", PROBE, *map(str, FILES)], env=full,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result: list[object] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def reference() -> list[object]:
    """What a parser built from the grammar, with no cache at all, gives."""
    result = parse_in_a_process({CACHE_DIR_ENV: ""})
    assert any(diagnostics for _, diagnostics in result)  # the broken files are broken
    return result


def cache_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*") if not p.name.startswith("."))


def loads_without_rewriting(directory: Path, reference: list[object],
                            env: dict[str, str] | None = None) -> bool:
    """Whether a process (with ``env``, by default the override naming ``directory``)
    parses from the one cache file in ``directory`` as it is: the same results, and
    the file left untouched."""
    (path,) = cache_files(directory)
    before = path.stat()
    env = {CACHE_DIR_ENV: str(directory)} if env is None else env
    same = parse_in_a_process(env) == reference
    after = path.stat()
    return same and (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.fixture(scope="module")
def sound_file(tmp_path_factory: pytest.TempPathFactory, reference: list[object]) -> Path:
    """A cache file as a first run leaves it, in a directory it had to create."""
    directory = tmp_path_factory.mktemp("cache") / "not" / "yet"
    assert parse_in_a_process({CACHE_DIR_ENV: str(directory)}) == reference
    (written,) = cache_files(directory)
    assert [p.name for p in directory.iterdir()] == [written.name]  # no temporary left
    return written


def fill(directory: Path, sound_file: Path) -> Path:
    """Put a copy of the sound cache file in ``directory``, and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / sound_file.name
    copy.write_bytes(sound_file.read_bytes())
    return copy


def test_a_first_run_creates_the_directory_and_a_cache_the_next_run_loads(
        sound_file: Path, reference: list[object]) -> None:
    assert sound_file.read_bytes().startswith(b"converge-parser-cache 2 ")
    assert loads_without_rewriting(sound_file.parent, reference)


def _flip_bytes(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + \
        data[middle + 64:]


@pytest.mark.parametrize("damage", [
    pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
    pytest.param(_flip_bytes, id="corrupt"),
])
def test_a_damaged_cache_file_is_rebuilt_and_replaced(
        tmp_path: Path, reference: list[object], sound_file: Path, damage: object) -> None:
    written = fill(tmp_path, sound_file)
    damaged = damage(sound_file.read_bytes())  # type: ignore[operator]
    written.write_bytes(damaged)
    assert parse_in_a_process({CACHE_DIR_ENV: str(tmp_path)}) == reference
    assert written.read_bytes() != damaged
    assert loads_without_rewriting(tmp_path, reference)


def test_a_file_that_passes_its_checksum_but_does_not_load_is_rebuilt(
        tmp_path: Path, reference: list[object], sound_file: Path) -> None:
    written = fill(tmp_path, sound_file)
    payload = b"not a saved parser"
    seal = digest(payload).encode()
    written.write_bytes(b"converge-parser-cache 2 " + seal + b"\n" + payload)
    assert parse_in_a_process({CACHE_DIR_ENV: str(tmp_path)}) == reference
    assert loads_without_rewriting(tmp_path, reference)


def test_an_unwritable_cache_location_only_costs_the_build(
        tmp_path: Path, reference: list[object]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way", encoding="utf-8")
    assert parse_in_a_process({CACHE_DIR_ENV: str(blocker / "cache")}) == reference
    assert blocker.read_text(encoding="utf-8") == "in the way"


def test_a_read_only_directory_only_costs_the_build(
        tmp_path: Path, reference: list[object]) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        assert parse_in_a_process({CACHE_DIR_ENV: str(directory)}) == reference
        if os.name == "posix" and os.geteuid() != 0:  # root writes anyway
            assert list(directory.iterdir()) == []
    finally:
        directory.chmod(0o700)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="giving a file away takes root")
def test_a_cache_file_owned_by_someone_else_is_not_trusted(
        tmp_path: Path, reference: list[object], sound_file: Path) -> None:
    written = fill(tmp_path, sound_file)
    os.chown(written, 4242, -1)
    assert parse_in_a_process({CACHE_DIR_ENV: str(tmp_path)}) == reference
    assert written.stat().st_uid == os.geteuid()  # rebuilt and written as our own
    assert loads_without_rewriting(tmp_path, reference)


def test_without_the_override_the_cache_is_under_xdg_cache_home_else_home(
        tmp_path: Path, reference: list[object]) -> None:
    xdg, home = tmp_path / "xdg", tmp_path / "home"
    home.mkdir()
    assert parse_in_a_process({"XDG_CACHE_HOME": str(xdg), "HOME": str(home)}) == reference
    assert len(cache_files(xdg / "converge_rules")) == 1
    assert list(home.iterdir()) == []
    assert parse_in_a_process({"XDG_CACHE_HOME": "", "HOME": str(home)}) == reference
    assert len(cache_files(home / ".cache" / "converge_rules")) == 1


def test_files_of_other_versions_are_removed_only_when_a_month_old(
        tmp_path: Path, reference: list[object]) -> None:
    old = tmp_path / "parser-0123456789abcdef.lark-cache"
    recent = tmp_path / "parser-fedcba9876543210.lark-cache"
    unrelated = tmp_path / "notes.txt"
    for path in (old, recent, unrelated):
        path.write_bytes(b"x")
    month_ago = time.time() - 31 * 24 * 3600
    os.utime(old, (month_ago, month_ago))
    os.utime(unrelated, (month_ago, month_ago))
    assert parse_in_a_process({CACHE_DIR_ENV: str(tmp_path)}) == reference
    assert not old.exists()
    assert recent.exists() and unrelated.exists()
