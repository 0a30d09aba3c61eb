"""Fuzzing every command with mutated rulesets, fact files (every format), traces,
fixtures and option combinations. The property is always the same (see conftest):
no internal error, no hang, exit code 0/1/2, written files valid or untouched."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from converge_rules.language.syntax.parser import parse

REPO = Path(__file__).resolve().parents[2]
Converge = Callable[..., Any]

PRICING = (REPO / "rulesets" / "pricing" / "pricing.cvg").read_text(encoding="utf-8")
SEEDS = [PRICING] + [p.read_text(encoding="utf-8") for p in sorted(
    [*(REPO / "rulesets").rglob("*.cvg"), *(REPO / "grammar" / "examples" / "valid").glob(
        "*.cvg")]) if p.name != "pricing.cvg"]
FACTS = (REPO / "rulesets" / "pricing" / "input.jsonl").read_text(encoding="utf-8")

# Pieces of text hostile input is made of: language words, punctuation, numbers at the
# edges of what the engine holds, and text that breaks terminals, JSON and encoders.
NASTY = ["{", "}", "(", ")", "[", "]", ":", ",", "\"", "'", "\\", "\n", "\r", "\t",
         "\x00", "\x1b[2J", "\u2028", "\u0085", "\ud800", "\ufeff", "é", "𝔘",
         "agent", "fact", "policy", "when", "where", "emit", "not", "count(", "sum(",
         "import \"/dev/zero\"", "import \"../../etc/passwd\"", "cases \"/dev/zero\"",
         "1e400", "-0", "9" * 5000, "NaN", "Infinity", "0x10", "1_000", "none", "true",
         "tier 99999999999999999999", "confidence 5.0", "max_facts = 0",
         "{\"a\": " * 200]


def mutate(text: str, data: st.DataObject) -> str:
    """``text`` with a few random edits: cut, duplicate, insert a hostile piece, swap."""
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        if not text:
            text = data.draw(st.sampled_from(NASTY))
            continue
        i = data.draw(st.integers(0, len(text)), label="at")
        j = data.draw(st.integers(i, min(len(text), i + 80)), label="to")
        kind = data.draw(st.sampled_from(["cut", "dup", "insert", "swap", "replace"]))
        if kind == "cut":
            text = text[:i] + text[j:]
        elif kind == "dup":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "insert":
            text = text[:i] + data.draw(st.sampled_from(NASTY) | st.text(max_size=8)) + text[i:]
        elif kind == "swap":
            lines = text.split("\n")
            a = data.draw(st.integers(0, len(lines) - 1))
            b = data.draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
        else:
            text = text[:i] + data.draw(st.text(min_size=1, max_size=12)) + text[j:]
    return text


def write(path: Path, text: str) -> None:
    # Lone surrogates cannot be encoded as UTF-8: write them as the bytes a broken
    # editor would (surrogatepass), which is what a hostile file holds.
    path.write_bytes(text.encode("utf-8", "surrogatepass"))


def test_check_fmt_and_test_survive_mutated_rulesets(
    converge: Converge, fuzz_settings: object, tmp_path: Path,
) -> None:
    @fuzz_settings  # type: ignore[operator]
    @given(st.sampled_from(SEEDS), st.data())
    def check(seed: str, data: st.DataObject) -> None:
        text = mutate(seed, data)
        write(tmp_path / "r.cvg", text)
        fmt = data.draw(st.sampled_from(["human", "json", "sarif", "junit", "github"]))
        converge("check", "r.cvg", "--format", fmt)
        converge(data.draw(st.sampled_from(["test", "compile", "graph"])), "r.cvg")
        before = (tmp_path / "r.cvg").read_bytes()
        done = converge("fmt", "r.cvg")
        after = (tmp_path / "r.cvg").read_bytes()
        if after != before:  # written: the result must be valid, canonical rule text
            assert done.code == 0, done.output
            assert not [d for d in parse(after.decode("utf-8"), "r.cvg").diagnostics
                        if d.is_error]

    check()


def test_run_survives_mutated_fact_files_in_every_format(
    converge: Converge, fuzz_settings: object, tmp_path: Path,
) -> None:
    write(tmp_path / "pricing.cvg", PRICING)
    rows = [json.loads(line) for line in FACTS.splitlines() if line.strip()]
    as_array = json.dumps(rows, indent=1)
    costs = [r["Cost"] for r in rows if "Cost" in r]
    as_csv = "sku,amount\n" + "".join(f"{c['sku']},{c['amount']}\n" for c in costs)

    @fuzz_settings  # type: ignore[operator]
    @given(st.sampled_from(["jsonl", "array", "csv"]), st.data())
    def run(form: str, data: st.DataObject) -> None:
        seed = {"jsonl": FACTS, "array": as_array, "csv": as_csv}[form]
        write(tmp_path / "in.txt", mutate(seed, data))
        source = "Cost=in.txt" if form == "csv" else "in.txt"
        trace = tmp_path / "t.jsonl"
        trace.unlink(missing_ok=True)
        fmt = data.draw(st.sampled_from(["table", "json"]))
        converge("run", "pricing.cvg", "-f", source, "--format", fmt, "--trace", "t.jsonl")
        if trace.exists():  # written: every line is a JSON document
            for line in trace.read_text(encoding="utf-8").split("\n")[:-1]:
                json.loads(line)

    run()


def test_replay_and_explain_survive_damaged_traces(
    converge: Converge, fuzz_settings: object, tmp_path: Path,
) -> None:
    write(tmp_path / "pricing.cvg", PRICING)
    write(tmp_path / "in.jsonl", FACTS)
    assert converge("run", "pricing.cvg", "-f", "in.jsonl", "--trace", "good.jsonl").code == 0
    good = (tmp_path / "good.jsonl").read_text(encoding="utf-8")

    @fuzz_settings  # type: ignore[operator]
    @given(st.data())
    def damaged(data: st.DataObject) -> None:
        write(tmp_path / "bad.jsonl", mutate(good, data))
        converge(*data.draw(st.sampled_from([
            ["replay", "pricing.cvg", "bad.jsonl"],
            ["explain", "--trace", "bad.jsonl"],
            ["explain", "Price(sku: \"A1\")", "--trace", "bad.jsonl", "-r", "pricing.cvg"],
            ["explain", "--why-not", "Price(sku: \"Z\")", "--trace", "bad.jsonl",
             "-r", "pricing.cvg"]])))

    damaged()


def test_table_test_fixtures_survive_mutation(
    converge: Converge, fuzz_settings: object, tmp_path: Path,
) -> None:
    ruleset = (PRICING.split("\ntest ", 1)[0] + '\ntest "table" {\n'
               '  cases "cases.csv"\n'
               '  given Cost(sku: "A1", amount: cost)\n'
               '  expect Price(sku: "A1", channel: web, amount: price)\n}\n')
    write(tmp_path / "t.cvg", ruleset)
    seed = "cost,price\n10.0,12.0\n20.0,24.0\n"

    @fuzz_settings  # type: ignore[operator]
    @given(st.data())
    def fixture(data: st.DataObject) -> None:
        write(tmp_path / "cases.csv", mutate(seed, data))
        converge("test", "t.cvg")
        converge("check", "t.cvg")

    fixture()


OPTIONS: dict[str, list[list[str]]] = {
    "run": [["--format", "json"], ["--format", "table"], ["--executor", "threads"],
            ["--executor", "serial"], ["--workers", "1"], ["--workers", "0"],
            ["--workers", "-3"], ["--max-rows", "0"], ["--no-plugins"], ["--trace", "t.jsonl"],
            ["--trace", "pricing.cvg"], ["--trace", "/"], ["--trace-store", "nope"],
            ["--pruner", "nope"], ["--color", "always"], ["-f", "in.jsonl"],
            ["-f", "missing.jsonl"], ["-f", "Cost=in.jsonl"], ["-f", "="]],
    "check": [["--format", "json"], ["--format", "nope"], ["--strict"], ["-o", "out.txt"],
              ["-o", "pricing.cvg"], ["--no-plugins"], ["--color", "never"]],
    "test": [["--format", "junit"], ["--format", "github"], ["-k", "undercut"],
             ["-k", "(("], ["--coverage"], ["--fail-under", "101"], ["-o", "pricing.cvg"],
             ["--verbose"]],
    "fmt": [["--check"], ["--diff"], ["-"], ["--color", "always"]],
    "graph": [["--format", "dot"], ["--format", "mermaid"], ["--format", "svg"],
              ["-o", "g.dot"], ["-o", "pricing.cvg"]],
    "compile": [["--show", "undercut"], ["--show", "nope"], ["--no-plugins"]],
}


def test_option_combinations_never_crash(
    converge: Converge, fuzz_settings: object, tmp_path: Path,
) -> None:
    write(tmp_path / "pricing.cvg", PRICING)
    write(tmp_path / "in.jsonl", FACTS)

    @fuzz_settings  # type: ignore[operator]
    @given(st.sampled_from(sorted(OPTIONS)), st.data())
    def combination(command: str, data: st.DataObject) -> None:
        chosen = data.draw(st.lists(st.sampled_from(OPTIONS[command]), max_size=4))
        args = [command, "pricing.cvg", *[a for option in chosen for a in option]]
        before = (tmp_path / "pricing.cvg").read_bytes()
        converge(*args, input="")
        if command != "fmt":  # only fmt may rewrite the ruleset
            assert (tmp_path / "pricing.cvg").read_bytes() == before, args

    combination()
