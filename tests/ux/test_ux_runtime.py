"""Runtime failures inside a job — a division by zero, a bad `matches` pattern, a tool
that raises or answers the wrong shape — never end in a traceback and are never silent:
``converge run`` warns on stderr, naming the agent, where it is declared and why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from converge_rules.compiler.runtime import cvg_matches
from converge_rules.language.builtins import PatternError, pattern_problem

Run = Callable[..., Any]  # the `converge` fixtures of conftest.py

RULESET = """\
ruleset rt
fact A { key s: str, n: int, pat: str = "a" }
fact B { key s: str, q: float }
fact M { key s: str, ok: bool }
agent div tier 1 {
  when A(s, n)
  emit B(s: s, q: 10 / n)
}
agent re tier 1 {
  when A(s, pat)
  emit M(s: s, ok: matches(s, pat))
}
"""

TOOLS_PLUGIN = """\
from pydantic import BaseModel
from converge_rules.plugins.api import hookimpl
from converge_rules.plugins.api import Tool

class Args(BaseModel):
    x: str

class Res(BaseModel):
    y: float

def boom(args):
    raise RuntimeError("service unavailable")

def wrong(args):
    return {"z": "nope"}

@hookimpl
def converge_register_tools(register):
    register(Tool("ux_boom", boom, Args, Res, "raises"))
    register(Tool("ux_wrong", wrong, Args, Res, "answers the wrong shape"))
"""

TOOLS_RULESET = """\
ruleset tl
uses tool ux_boom
uses tool ux_wrong
fact A { key s: str }
fact B { key s: str, y: float }
agent b tier 1 {
  when A(s)
  call ux_boom(x: s) as r
  emit B(s: s, y: r.y)
}
agent w tier 1 {
  when A(s)
  call ux_wrong(x: s) as r
  emit B(s: s, y: r.y)
}
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "rt.cvg").write_text(RULESET, encoding="utf-8")
    return tmp_path


def test_a_division_by_zero_is_a_warning_naming_the_agent(converge_script: Run,
                                                          files: Path) -> None:
    (files / "z.jsonl").write_text('{"A": {"s": "x", "n": 0}}\n', encoding="utf-8")
    done = converge_script("run", "rt.cvg", "-f", "z.jsonl", "--format", "json")
    assert done.code == 0  # the job itself converged
    assert done.out.startswith("{")  # stdout stays one JSON document
    assert ("warning: agent `div` failed in 1 cycle and its effect was discarded "
            "(first in cycle 1): ZeroDivisionError: division by zero") in done.err
    assert "--> rt.cvg:5:1" in done.err
    assert "guard the failing expression with `where`" in done.err


def test_a_bad_regex_is_named_without_noise_from_the_regex_engine(converge_script: Run,
                                                                  files: Path) -> None:
    (files / "re.jsonl").write_text('{"A": {"s": "y", "n": 1, "pat": "(["}}\n',
                                    encoding="utf-8")
    done = converge_script("run", "rt.cvg", "-f", "re.jsonl")
    assert done.code == 0
    assert "warning: agent `re` failed in 1 cycle" in done.err
    assert "PatternError: bad regular expression '([': missing ]" in done.err
    assert "absl" not in done.err and "re2.cc" not in done.err


def test_bad_patterns_raise_a_named_error() -> None:
    with pytest.raises(PatternError, match=r"bad regular expression '\(\[': missing \]"):
        cvg_matches("text", "([")
    assert pattern_problem("a+") is None
    assert pattern_problem("(?<name") is not None
    assert cvg_matches("xaa", "a+")


def test_failing_tools_are_warnings_naming_each_agent(converge_script: Run, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ux_tools_plugin.py").write_text(TOOLS_PLUGIN, encoding="utf-8")
    (tmp_path / "tl.cvg").write_text(TOOLS_RULESET, encoding="utf-8")
    (tmp_path / "a.jsonl").write_text('{"A": {"s": "a"}}\n', encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    done = converge_script("--plugin", "ux_tools_plugin", "run", "tl.cvg", "-f", "a.jsonl")
    assert done.code == 0, done.text
    assert "warning: agent `b` failed in 1 cycle" in done.err
    assert "service unavailable" in done.err
    assert "warning: agent `w` failed in 1 cycle" in done.err
    assert "does not match its model Res" in done.err
    assert "--> tl.cvg:6:1" in done.err and "--> tl.cvg:11:1" in done.err


def test_a_clean_run_prints_no_warning(converge: Run, files: Path) -> None:
    (files / "ok.jsonl").write_text('{"A": {"s": "x", "n": 2}}\n', encoding="utf-8")
    done = converge("run", "rt.cvg", "-f", "ok.jsonl")
    assert done.code == 0
    assert done.err == ""


def test_budgets_end_the_job_with_exit_1_and_the_budget_named(converge: Run,
                                                              tmp_path: Path) -> None:
    (tmp_path / "grow.cvg").write_text(
        'ruleset grow\nroot "g" {\n  max_cycles = 10\n}\nfact N { key n: int }\n'
        "agent inc tier 1 {\n  when N(n)\n  emit N(n: n + 1)\n}\n", encoding="utf-8")
    (tmp_path / "n.jsonl").write_text('{"N": {"n": 0}}\n', encoding="utf-8")
    done = converge("run", "grow.cvg", "-f", "n.jsonl")
    assert done.code == 1
    assert "budget_exceeded (max_cycles) after 10 cycles" in done.out


def test_control_characters_in_values_never_reach_the_terminal(converge: Run,
                                                               tmp_path: Path) -> None:
    (tmp_path / "t.cvg").write_text(
        "ruleset t\nfact A { key s: str, n: int }\n", encoding="utf-8")
    (tmp_path / "esc.jsonl").write_text(
        '{"A": {"s": "x\\u001b[2JRED\\u0007", "n": 1}}\n{"A": {"s": "a\\nb", "n": 2}}\n',
        encoding="utf-8")
    done = converge("run", "t.cvg", "-f", "esc.jsonl", "--color", "never")
    assert done.code == 0
    assert "\x1b" not in done.out and "\x07" not in done.out
    assert "x\\x1b[2JRED\\x07" in done.out
    assert "a\\nb" in done.out


def test_retraction_in_the_same_merge_is_not_reported_as_a_failure(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from converge_rules.cli import main

    # `b2` rests on A(v: 1), which `a1` replaces in the same merge: b2's output is
    # skipped (ordinary retraction, in the trace), and nothing failed.
    (tmp_path / "stale.cvg").write_text('''ruleset stale "stale"

fact S { key k: str }
fact A { key k: str, v: int }
fact B { key k: str, w: int }

agent b0 {
  when S(k)
  emit B(k: k, w: 5)
}

agent a1 {
  when A(k, v) where v == 1
  emit A(k: k, v: 2)
}

agent b2 {
  when A(k, v) where v == 1
  emit B(k: k, w: 9)
}

policy A { resolve by latest }
policy B { resolve by highest w }
''')
    (tmp_path / "in.jsonl").write_text('{"S": {"k": "x"}}\n{"A": {"k": "x", "v": 1}}\n')
    done = CliRunner().invoke(main, ["run", str(tmp_path / "stale.cvg"), "--facts",
                                     str(tmp_path / "in.jsonl"), "--format", "json"])
    assert done.exit_code == 0, done.output
    assert "warning" not in done.output
    assert '"w": 5' in done.output


INVARIANT_RULESET = """\
ruleset inv
fact Claim   { key claim: str, amount: float }
fact Policy  { key claim: str, limit: float }
fact Payment { key claim: str, amount: float }
agent pay {
  when Claim(claim, amount)
  emit Payment(claim: claim, amount: amount)
}
invariant within_limit never Payment(claim, amount) and Policy(claim, limit) where amount > limit
"""


def test_an_effect_an_invariant_discarded_is_not_called_a_failure(converge: Run,
                                                                   tmp_path: Path) -> None:
    # found in review: the warning said the agent "failed" and told the author to guard
    # a failing expression with `where`, though the invariant did its job
    (tmp_path / "inv.cvg").write_text(INVARIANT_RULESET, encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(
        '{"Claim": {"claim": "c1", "amount": 5000.0}}\n'
        '{"Policy": {"claim": "c1", "limit": 100.0}}\n', encoding="utf-8")
    done = converge("run", str(tmp_path / "inv.cvg"), "-f", str(tmp_path / "in.jsonl"))
    assert done.code == 0
    assert ("warning: an invariant discarded the effect of agent `pay` in 1 cycle (first "
            "in cycle 1): invariant within_limit would be broken") in done.err
    assert "failed" not in done.err
    assert "guard the failing expression" not in done.err
    assert "the invariant kept those facts out and the job went on" in done.err


MARKUP = """\
ruleset mk
fact A { key id: str, v: str }
agent a { when A(id) emit A(id: id, v: "[red]b[/red]") }
agent b { when A(id) emit A(id: id, v: "[/]c") }
policy A {
  resolve by latest
  on tie first
}
"""


def test_values_that_look_like_rich_markup_print_as_they_are(converge: Run,
                                                             tmp_path: Path) -> None:
    """Found: the result tables read string values as Rich markup: `[i]k[/i]` printed
    as `k`, `[red]b[/red]` as a red `b`, and `[/]c` ended `converge run` with
    "internal error: MarkupError: closing tag '[/]' … has nothing to close"."""
    (tmp_path / "mk.cvg").write_text(MARKUP, encoding="utf-8")
    (tmp_path / "in.jsonl").write_text('{"A": {"id": "[i]k[/i]", "v": "[blink]x"}}\n',
                                       encoding="utf-8")
    done = converge("run", "mk.cvg", "-f", "in.jsonl")
    assert done.code == 1, done.err  # oscillating: the two agents take turns
    assert "internal error" not in done.err
    assert "│ [i]k[/i] │ [red]b[/red] │" in done.out
    assert "│ (id: [i]k[/i]) │ (v: [/]c)         │" in done.out


@pytest.mark.parametrize("char", ["\u202e", "\u202a", "\u2066", "\u2069"])
def test_bidirectional_controls_in_a_value_are_escaped(converge: Run, tmp_path: Path,
                                                       char: str) -> None:
    # found: U+202E (right-to-left override) reached the terminal raw and showed
    # `evil` reversed; docs/security.md promises no control character does
    (tmp_path / "t.cvg").write_text("ruleset t\nfact A { key id: str }\n", encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(f'{{"A": {{"id": "{char}evil"}}}}\n', encoding="utf-8")
    done = converge("run", "t.cvg", "-f", "in.jsonl")
    assert done.code == 0, done.err
    assert char not in done.out
    assert f"\\u{ord(char):04x}evil" in done.out
