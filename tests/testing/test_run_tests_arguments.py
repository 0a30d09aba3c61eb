"""``run_tests`` given one path instead of a list of them: a TypeError naming the list
to write (found: ``run_tests("shop.cvg")`` read the string a character at a time and
returned a report of no tests, which a CI script took for a pass)."""

from __future__ import annotations

from pathlib import Path

import pytest

from converge_rules.testing.runner import run_tests

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("one", [str(DATA / "shop.cvg"), DATA / "shop.cvg"])
def test_one_path_is_refused_naming_the_list(one: str | Path) -> None:
    with pytest.raises(TypeError, match=r"run_tests takes a list of ruleset paths, got the "
                                        r"(str|PosixPath) .*shop.cvg.*; write \["):
        run_tests(one, plugins=False)  # type: ignore[arg-type]


def test_a_list_of_one_path_runs_its_tests() -> None:
    pricing = Path(__file__).parents[2] / "rulesets" / "pricing" / "pricing.cvg"
    report, _ = run_tests([pricing], plugins=False)
    assert report.outcomes
