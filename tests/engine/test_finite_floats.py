"""An input float that is not finite is refused at input, in every format and from
Python, like NaN (found: `1e400` was accepted; the JSON output then said `Infinity`,
which is not JSON, and the trace said `null`)."""

from __future__ import annotations

from pathlib import Path

import pytest

import converge_rules
from converge_rules.errors import InputError

RULESET = "ruleset r\nfact A { key k: str, x: float }\n"


@pytest.mark.parametrize(("name", "text"), [
    ("a.jsonl", '{"A": {"k": "a", "x": 1e400}}\n'),
    ("a.json", '[\n  {"A": {"k": "a", "x": -1e400}}\n]\n'),
    ("A=a.csv", "k,x\na,1e400\n"),
])
def test_an_infinite_input_float_is_refused_with_its_line(
    tmp_path: Path, name: str, text: str,
) -> None:
    ruleset = converge_rules.loads(RULESET, plugins=False)
    file = tmp_path / name.split("=")[-1]
    file.write_text(text)
    spec = f"A={file}" if "=" in name else str(file)
    with pytest.raises(InputError) as caught:
        converge_rules.read_facts(ruleset, spec)
    assert caught.value.line == (2 if name != "a.jsonl" else 1)
    assert "finite" in str(caught.value) or "largest float" in str(caught.value)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_float_from_python_is_refused(value: float) -> None:
    ruleset = converge_rules.loads(RULESET, plugins=False)
    with pytest.raises(InputError, match="finite"):
        converge_rules.run(ruleset, [("A", {"k": "a", "x": value})])
