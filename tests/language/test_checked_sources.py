"""A checked ruleset keeps the text it was checked from: renderers quote it however
many other rulesets were checked since (in any thread), and never read a changed file
back from disk."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from converge_rules.language.checks.checker import check_file, checked_sources


def test_the_text_given_as_source_stays_with_the_checked_ruleset(tmp_path: Path) -> None:
    path = tmp_path / "r.cvg"
    path.write_text("ruleset on_disk\n", encoding="utf-8")
    first = check_file(path, source="ruleset given\nfact A { x: int }\n")

    def other(i: int) -> None:
        check_file(f"other{i}.cvg", source=f"ruleset r{i}\n")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(other, range(40)))  # a bounded cache of recent rulesets forgot it
    assert checked_sources(first) == {str(path): "ruleset given\nfact A { x: int }\n"}
