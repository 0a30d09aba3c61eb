"""A store location's options (``?timeout=``, ``?group=``, ``?snapshot_every=``),
parsed once into one value the store and its jobs use: on a ``sqlite:///`` URL and on
a plain path alike (``run.db?group=8`` is the file ``run.db``), and on PostgreSQL's
URL (with its own ``schema`` and libpq's options handed on). Bad options are named,
with the fix; nothing is created."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from converge_rules.errors import StoreError
from converge_rules.store.options import DEFAULT_TIMEOUT, GROUP_CYCLES, StoreOptions
from converge_rules.store.sqlite import SqliteStore, sqlite_location

REPO = Path(__file__).resolve().parents[2]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"
PRICING_INPUT = REPO / "rulesets" / "pricing" / "input.jsonl"


def cli(tmp: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "converge_rules.cli", *map(str, args)],
                          cwd=tmp, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("location", ["k.db?group=7&snapshot_every=3&timeout=2.5",
                                      "sqlite:///k.db?group=7&snapshot_every=3&timeout=2.5"])
def test_a_plain_path_takes_the_options_a_sqlite_url_takes(location: str) -> None:
    assert sqlite_location(location) == (Path("k.db"), StoreOptions(2.5, 7, 3))


def test_a_location_without_options_has_the_defaults() -> None:
    assert sqlite_location("dir/k.db") == (
        Path("dir/k.db"), StoreOptions(DEFAULT_TIMEOUT, GROUP_CYCLES, None))


def test_the_store_keeps_the_options_it_parsed(tmp_path: Path) -> None:
    with SqliteStore(f"{tmp_path / 'k.db'}?group=5&snapshot_every=9&timeout=1") as store:
        assert store.options == StoreOptions(1.0, 5, 9)
        assert (store.group_cycles, store.snapshot_every, store.timeout) == (5, 9, 1.0)
        assert store.path == tmp_path / "k.db"
    assert [p.name for p in tmp_path.iterdir()] == ["k.db"]


@pytest.mark.parametrize(("location", "message"), [
    ("k.db?group=0", "k.db?group=0: group must be a whole number of cycles >= 1"),
    ("k.db?snapshot_every=x", "snapshot_every must be a whole number of cycles >= 1"),
    # found by hand: `str.isdigit` is true of superscripts, which `int` refuses (an
    # internal error, ValueError)
    ("k.db?snapshot_every=\u00b2", "snapshot_every must be a whole number of cycles"),
    ("k.db?group=\u00b2", "group must be a whole number of cycles >= 1"),
    ("k.db?timeout=-1", "timeout must be a number of seconds >= 0"),
    ("k.db?grup=7", "unknown option 'grup'; the options are ?timeout=SECONDS, "
                    "?group=CYCLES and ?snapshot_every=CYCLES; a file whose name holds "
                    "`?` is given as sqlite:///k.db%3Fgrup=7"),
    ("?group=7", "no file name before the options"),
])
def test_a_bad_option_on_a_plain_path_is_named(location: str, message: str) -> None:
    with pytest.raises(StoreError) as caught:
        sqlite_location(location)
    assert message in str(caught.value)


def test_run_with_a_plain_path_and_options_stores_into_that_file(tmp_path: Path) -> None:
    # found by review: `--store 'k.db?group=7'` created a file literally named so
    out = cli(tmp_path, "run", PRICING, "-f", PRICING_INPUT, "--store", "k.db?group=1",
              "--format", "json")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.db"]
    with SqliteStore(tmp_path / "k.db") as store:
        (job,) = store.jobs()
        assert job.status == json.loads(out.stdout)["status"]
    exported = cli(tmp_path, "trace", "export", "k.db?timeout=3", "-o", "t.jsonl")
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "t.jsonl").read_text()


def test_run_with_an_unknown_option_on_a_plain_path_creates_nothing(tmp_path: Path) -> None:
    out = cli(tmp_path, "run", PRICING, "-f", PRICING_INPUT, "--store", "k.db?grup=1")
    assert out.returncode == 2
    assert "unknown option 'grup'" in out.stderr and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_postgresql_urls_parse_the_same_options_once() -> None:
    store = pytest.importorskip("converge_postgres.store")
    conninfo, shown, options, schema = store.parse_location(
        "postgresql://u:pw@h:5/db?group=3&snapshot_every=4&timeout=2&schema=s1"
        "&sslmode=disable")
    assert options == StoreOptions(2.0, 3, 4, (("schema", "s1"), ("sslmode", "disable")))
    assert schema == "s1" and conninfo == "postgresql://u:pw@h:5/db?sslmode=disable"
    assert shown == ("postgresql://u:***@h:5/db?group=3&snapshot_every=4&timeout=2"
                     "&schema=s1&sslmode=disable")
    with pytest.raises(StoreError, match=r"u:\*\*\*@h:5/db\?group=0: group must be"):
        store.parse_location("postgresql://u:pw@h:5/db?group=0")
