"""The VS Code extension's TextMate grammar (editors/vscode/syntaxes/) scopes every
token of every shipped ruleset.

The grammar is run by a small TextMate engine written here: first-match-wins over the
patterns (leftmost match, then the earlier rule), ``match`` rules with ``captures``,
``begin``/``end`` rules whose ``end`` wins a tie with their inner patterns, ``include``
of repository entries, and nested ``patterns``; the grammar uses nothing else (a test
below says so), and its regular expressions are in the part of Oniguruma's syntax
Python's ``re`` reads the same way. It runs without node, so it runs in every CI.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
GRAMMAR = REPO / "editors" / "vscode" / "syntaxes" / "converge.tmLanguage.json"
RULESETS = sorted((REPO / "rulesets").rglob("*.cvg"))
ROOT = "source.cvg"
ALLOWED_KEYS = {"name", "match", "captures", "begin", "end", "beginCaptures", "endCaptures",
                "patterns", "include", "comment"}


@dataclass
class Rule:
    name: str | None = None
    match: re.Pattern[str] | None = None
    captures: dict[int, str] = field(default_factory=dict)
    begin: re.Pattern[str] | None = None
    end: re.Pattern[str] | None = None
    begin_captures: dict[int, str] = field(default_factory=dict)
    end_captures: dict[int, str] = field(default_factory=dict)
    patterns: list[Rule] = field(default_factory=list)


def _captures(spec: dict[str, Any] | None) -> dict[int, str]:
    return {int(k): v["name"] for k, v in (spec or {}).items()}


def load(path: Path) -> tuple[list[Rule], dict[str, Any]]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    repository: dict[str, Any] = raw["repository"]

    def rules(specs: list[dict[str, Any]]) -> list[Rule]:
        out: list[Rule] = []
        for spec in specs:
            if "include" in spec:
                out.extend(rules([repository[spec["include"].lstrip("#")]]))
            elif "match" in spec:
                out.append(Rule(spec.get("name"), re.compile(spec["match"]),
                                _captures(spec.get("captures"))))
            elif "begin" in spec:
                out.append(Rule(spec.get("name"), None, {}, re.compile(spec["begin"]),
                                re.compile(spec["end"]), _captures(spec.get("beginCaptures")),
                                _captures(spec.get("endCaptures")),
                                rules(spec.get("patterns", []))))
            else:
                out.extend(rules(spec["patterns"]))
        return out

    return rules(raw["patterns"]), raw


def _paint(scopes: list[list[str]], m: re.Match[str], name: str | None,
           captures: dict[int, str], base: list[str]) -> None:
    for i in range(m.start(), m.end()):
        scopes[i] = base + ([name] if name else [])
    for group, cap in captures.items():
        if m.start(group) >= 0:
            for i in range(m.start(group), m.end(group)):
                scopes[i] = scopes[i] + [cap]


def tokenize(line: str, top: list[Rule]) -> list[list[str]]:
    """The scopes of each character of one line (strings end at the line's end)."""
    scopes: list[list[str]] = [[ROOT] for _ in line]
    pos = 0
    stack: list[Rule] = []  # open begin/end rules
    while pos < len(line):
        inside = stack[-1] if stack else None
        candidates = inside.patterns if inside else top
        base = [ROOT] + [r.name for r in stack if r.name]
        best: tuple[int, int, Rule | None, re.Match[str]] | None = None
        if inside is not None and inside.end is not None:
            m = inside.end.search(line, pos)
            if m is not None:
                best = (m.start(), -1, None, m)
        for order, rule in enumerate(candidates):
            pattern = rule.match or rule.begin
            assert pattern is not None
            m = pattern.search(line, pos)
            if m is not None and (best is None or (m.start(), order) < best[:2]):
                best = (m.start(), order, rule, m)
        gap_end = len(line) if best is None else best[0]
        for i in range(pos, gap_end):  # text no pattern matched: the open rules' scopes
            scopes[i] = list(base)
        if best is None:
            break
        _, _, rule, m = best
        if rule is None:  # the end of the open rule
            assert inside is not None
            _paint(scopes, m, None, inside.end_captures, base)
            stack.pop()
        elif rule.match is not None:
            _paint(scopes, m, rule.name, rule.captures, base)
        else:
            _paint(scopes, m, rule.name, rule.begin_captures, base)
            stack.append(rule)
        pos = m.end() if m.end() > pos else pos + 1
    return scopes


def unscoped(text: str, top: list[Rule]) -> list[str]:
    """Each non-blank character left with the root scope only, or scoped invalid."""
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        for column, (ch, scopes) in enumerate(zip(line, tokenize(line, top), strict=True),
                                              start=1):
            if ch.isspace():
                continue
            if scopes == [ROOT] or any(s.startswith("invalid") for s in scopes):
                found.append(f"{number}:{column} {ch!r} {scopes} in {line.strip()!r}")
    return found


@pytest.fixture(scope="module")
def grammar() -> list[Rule]:
    return load(GRAMMAR)[0]


def test_the_grammar_uses_only_what_the_engine_here_implements() -> None:
    _, raw = load(GRAMMAR)
    assert raw["scopeName"] == ROOT

    def keys(spec: Any) -> set[str]:
        if not isinstance(spec, dict):
            return set()
        found = set(spec) & (ALLOWED_KEYS | {"0", "1", "2", "3"}) ^ set(spec)
        for value in spec.get("patterns", []):
            found |= keys(value)
        return found

    for name, spec in raw["repository"].items():
        assert keys(spec) == set(), name


@pytest.mark.parametrize("path", RULESETS, ids=lambda p: p.parent.name)
def test_every_token_of_a_shipped_ruleset_is_scoped(path: Path, grammar: list[Rule]) -> None:
    assert unscoped(path.read_text(encoding="utf-8"), grammar) == []


def test_there_are_shipped_rulesets() -> None:
    assert len(RULESETS) >= 5


def scope_of(text: str, needle: str, grammar: list[Rule], offset: int = 0) -> list[str]:
    return tokenize(text, grammar)[text.index(needle) + offset]


@pytest.mark.parametrize(("text", "needle", "scope"), [
    ("fact Cost { key sku: str }", "Cost", "entity.name.type.cvg"),
    ("fact Cost { key sku: str }", "key", "storage.modifier.key.cvg"),
    ("fact Cost { key sku: str }", "sku", "variable.other.property.cvg"),
    ("fact Cost { key sku: str }", "str", "entity.name.type.cvg"),
    ("agent undercut tier 1 {", "undercut", "entity.name.function.agent.cvg"),
    ("agent undercut tier 1 {", "tier", "keyword.control.cvg"),
    ("  job_timeout = 60s", "60s", "constant.numeric.cvg"),
    ("  max_facts = 50_000", "50_000", "constant.numeric.cvg"),
    ('  emit Alert(message: "a \\" b") # note', "b", "string.quoted.double.cvg"),
    ('  emit Alert(message: "a \\" b") # note', "# note", "comment.line.number-sign.cvg"),
    ("  where round(x, 2) > 1 and true", "round", "support.function.cvg"),
    ("  where round(x, 2) > 1 and true", "and", "keyword.operator.word.cvg"),
    ("  where round(x, 2) > 1 and true", "true", "constant.language.boolean.cvg"),
    ("  when Quote(reason: r)", "reason", "variable.other.property.cvg"),
])
def test_tokens_get_the_scope_an_editor_theme_expects(
        text: str, needle: str, scope: str, grammar: list[Rule]) -> None:
    assert scope in scope_of(text, needle, grammar)


def test_every_keyword_of_the_language_is_a_keyword(grammar: list[Rule]) -> None:
    lark = re.sub(r"//[^\n]*", "", (REPO / "grammar" / "converge.lark").read_text(
        encoding="utf-8"))
    words = set(re.findall(r'"([a-z][a-z_]*)"', lark))
    assert len(words) > 20
    for word in sorted(words):
        scopes = tokenize(f"{word} x", grammar)[0]
        assert any(s.startswith(("keyword", "storage", "constant.language")) for s in scopes), \
            word
