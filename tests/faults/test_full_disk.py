"""A full disk never loses a user's file, and every message about it is true.

Found by the adversarial pass: ``converge fmt`` wrote in place, so with the disk full
the ``.cvg`` was cut mid-agent, and the command then said "it was left as it was" and
"1 file reformatted"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Badly laid out on purpose, so fmt rewrites it; about 6 KB.
UGLY = "ruleset shop\nfact Cost {key sku:str,amount:float}\n" + "".join(
    f"fact Price{i} {{key sku:str,amount:float}}\n"
    f"agent a{i} {{ when Cost(sku,amount:c)   emit Price{i}(sku:sku,amount:c*{i}.0) }}\n"
    for i in range(40))
FACTS = "".join(f'{{"Cost": {{"sku": "S{i}", "amount": {i}.5}}}}\n' for i in range(50))


def test_fmt_on_a_full_disk_leaves_the_file_whole_and_says_so(
    small_disk: Callable[..., Any],
) -> None:
    disk = small_disk({"shop.cvg": UGLY}, free=1024)
    result = disk.run("fmt", "shop.cvg")
    assert (disk.root / "shop.cvg").read_text(encoding="utf-8") == UGLY
    assert result.code == 2, result.text
    assert "cannot write shop.cvg" in result.err and "left as it was" in result.err
    assert "0 files reformatted" in result.err and "1 could not be written" in result.err
    assert "Traceback" not in result.text
    assert [p.name for p in disk.root.iterdir() if p.name != ".filler"] == ["shop.cvg"]


def test_a_trace_that_does_not_fit_keeps_the_previous_trace(
    small_disk: Callable[..., Any],
) -> None:
    previous = '{"event": "a previous good trace"}\n'
    disk = small_disk({"shop.cvg": UGLY, "in.jsonl": FACTS, "trace.jsonl": previous},
                      free=2048)
    result = disk.run("run", "shop.cvg", "-f", "in.jsonl", "--trace", "trace.jsonl")
    assert result.code == 2, result.text
    assert "cannot write the trace to trace.jsonl" in result.err
    assert "Traceback" not in result.text
    assert (disk.root / "trace.jsonl").read_text(encoding="utf-8") == previous
    leftovers = {p.name for p in disk.root.iterdir()} - {"shop.cvg", "in.jsonl",
                                                        "trace.jsonl", ".filler"}
    assert leftovers == set()


def test_a_report_that_does_not_fit_is_not_left_half_written(
    small_disk: Callable[..., Any],
) -> None:
    previous = "<previous report/>\n"
    disk = small_disk({"shop.cvg": UGLY, "report.sarif": previous}, free=200)
    result = disk.run("check", "shop.cvg", "--format", "sarif", "-o", "report.sarif")
    assert result.code == 2, result.text
    assert "cannot write report.sarif" in result.err and "nothing was written" in result.err
    assert (disk.root / "report.sarif").read_text(encoding="utf-8") == previous


def test_a_completely_full_disk_leaves_no_temporary_file(
    small_disk: Callable[..., Any],
) -> None:
    # Found: with no byte free, the failed flush failed again when the file was closed,
    # and the empty temporary file was left beside the target.
    disk = small_disk({"shop.cvg": UGLY}, free=0)
    result = disk.run("fmt", "shop.cvg")
    assert result.code == 2, result.text
    assert (disk.root / "shop.cvg").read_text(encoding="utf-8") == UGLY
    assert sorted(p.name for p in disk.root.iterdir() if p.name != ".filler") == ["shop.cvg"]
