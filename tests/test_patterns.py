"""converge_rules.patterns: regular expressions compiled when first used."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from converge_rules.patterns import pattern

REPO = Path(__file__).resolve().parents[1]

CASES = [
    (r"\d{4}-\d{2}-\d{2}\Z", re.ASCII, ["2026-12-07", "2026-12-07\n", "٢٠٢٦-12-07", "x"]),
    ("[\ud800-\udfff]", 0, ["plain", "a\ud800b"]),
    (r"^[A-Za-z_][A-Za-z0-9_]*$", 0, ["name", "name\n", "9x", ""]),
]


@pytest.mark.parametrize(("source", "flags", "texts"), CASES)
def test_a_deferred_pattern_does_what_the_compiled_one_does(
        source: str, flags: int, texts: list[str]) -> None:
    deferred, compiled = pattern(source, flags), re.compile(source, flags)
    for text in texts:
        for method in ("match", "fullmatch", "search"):
            got, want = getattr(deferred, method)(text), getattr(compiled, method)(text)
            assert (got and got.span()) == (want and want.span())
        assert deferred.sub("-", text) == compiled.sub("-", text)
        assert deferred.findall(text) == compiled.findall(text)
    assert (deferred.pattern, deferred.flags) == (compiled.pattern, compiled.flags)


def test_it_compiles_on_first_use_and_keeps_the_methods_it_handed_out() -> None:
    deferred = pattern(r"a+")
    assert deferred._compiled is None  # type: ignore[attr-defined]
    assert repr(deferred) == "pattern('a+', 0)"
    match = deferred.match
    assert deferred._compiled is re.compile(r"a+")  # type: ignore[attr-defined]
    assert deferred.match is match  # found on the instance from now on
    copied = copy.copy(deferred)  # (copy probes dunders: not forwarded)
    assert copied.match("aa") is not None


PROBE = """
import sys
import converge_rules
from converge_rules import blobs, errors, jsontext
from converge_rules.engine import inputs
from converge_rules.language import access, builtins
ruleset = converge_rules.load(sys.argv[1], plugins=False)
facts = converge_rules.read_facts(ruleset, sys.argv[2])
result = converge_rules.run(ruleset, facts)
assert result.status == "converged", result.status
for name, found in [("blobs._HANDLE", blobs._HANDLE), ("errors._ADDRESS", errors._ADDRESS),
                    ("jsontext._UNSAFE", jsontext._UNSAFE),
                    ("jsontext.LONE_SURROGATE", jsontext.LONE_SURROGATE),
                    ("inputs._CSV_FLOAT", inputs._CSV_FLOAT),
                    ("builtins._DURATION_TEXT", builtins._DURATION_TEXT)]:
    if found._compiled is not None:
        print(name)
"""


def test_a_cached_load_and_run_compile_none_of_the_patterns_they_do_not_use(
        tmp_path: Path) -> None:
    # Waltz: an enum field (string values are checked for lone surrogates, which only
    # a text that is not ASCII can hold)
    rules = REPO / "rulesets" / "waltz" / "waltz.cvg"
    facts = tmp_path / "waltz.jsonl"
    facts.write_text('{"Stage": {"value": "duplicate"}}\n'
                     '{"Line": {"p1": 50003, "p2": 60003}}\n', encoding="utf-8")
    env = {**os.environ, "CONVERGE_CACHE_DIR": str(tmp_path / "cache")}
    for _ in ("a miss", "a hit"):
        done = subprocess.run([sys.executable, "-c", PROBE, str(rules), str(facts)],
                              cwd=REPO, env=env, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr
    assert done.stdout == ""
