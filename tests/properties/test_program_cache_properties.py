"""The program cache changes nothing (``compiler/program_cache.py``): for any
well-typed ruleset (``strategies.typed_rulesets``: enums, dates, durations, defaults,
aggregates, negation) and any input facts, a run of the program read back from the
cache gives the same result and the same trace bytes as a run of the program just
compiled, and the read skips parsing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import converge_rules
from converge_rules.language import loader
from tests.properties import strategies as S


def _inputs(facts: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(t, {k: list(v) if isinstance(v, tuple) else v for k, v in f.items()})
            for t, f in facts]


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_a_cached_program_runs_as_the_compiled_one(data: st.DataObject) -> None:
    ruleset = data.draw(S.typed_rulesets(), label="ruleset")
    note(ruleset.text)
    facts = _inputs(data.draw(S.typed_facts(ruleset), label="facts"))
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.dict(os.environ, {"CONVERGE_CACHE_DIR": str(Path(tmp) / "cache")}):
        compiled = converge_rules.loads(ruleset.text, path="generated.cvg", plugins=False)
        with mock.patch.object(loader, "load_file", side_effect=AssertionError("parsed")):
            cached = converge_rules.loads(ruleset.text, path="generated.cvg", plugins=False)
        first = converge_rules.run(compiled, facts, trace=Path(tmp) / "compiled.jsonl")
        second = converge_rules.run(cached, facts, trace=Path(tmp) / "cached.jsonl")
        assert second.to_json() == first.to_json()
        assert (Path(tmp) / "cached.jsonl").read_bytes() == \
            (Path(tmp) / "compiled.jsonl").read_bytes()
