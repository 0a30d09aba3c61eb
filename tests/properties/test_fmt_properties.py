"""Properties of ``converge fmt`` over random valid rulesets: formatting keeps the
meaning and every comment, and formatting twice changes nothing."""

from __future__ import annotations

import dataclasses
import inspect

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from converge_rules.language.format.formatter import format_module, format_source
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.parser import parse
from tests.properties import strategies
from tests.properties.strategies import NoisyText, modules, noisy_texts, roots

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _parse(text: str) -> n.Module:
    result = parse(text, "generated.cvg")
    # (a generated string or comment may hold a bidirectional control: CVG011, a
    # warning about how editors show the line, not about what it holds)
    found = tuple(d for d in result.diagnostics if d.code != "CVG011")
    assert found == (), (text, result.diagnostics)
    assert result.module is not None
    return result.module


@SETTINGS
@given(modules())
def test_formatted_tree_parses_back_to_the_same_tree(module: n.Module) -> None:
    text = format_module(module)
    assert _parse(text) == module


@SETTINGS
@given(modules())
def test_formatting_a_tree_is_idempotent(module: n.Module) -> None:
    text = format_module(module)
    assert format_source(text) == text


@SETTINGS
@given(noisy_texts())
def test_any_layout_formats_to_the_same_meaning(noisy: NoisyText) -> None:
    parsed = _parse(noisy.text)
    assert parsed == noisy.module
    formatted = format_source(noisy.text)
    reparsed = _parse(formatted)
    assert reparsed == parsed
    assert [c.text for c in reparsed.comments] == [c.text for c in parsed.comments]
    assert [c.text for c in parsed.comments] == list(noisy.comments)
    assert format_source(formatted) == formatted


@SETTINGS
@given(noisy_texts(with_comments=False))
def test_layout_without_comments_formats_to_the_canonical_text(noisy: NoisyText) -> None:
    """Spacing and line breaks are normalised away: only the grouping of blank lines
    inside blocks may survive, so strip blank lines before comparing."""
    assert not noisy.comments
    formatted = format_source(noisy.text)
    canonical = format_module(noisy.module)

    def no_blanks(text: str) -> list[str]:
        return [line for line in text.split("\n") if line]

    assert no_blanks(formatted) == no_blanks(canonical)


def _node_types() -> set[type]:
    return {
        obj for obj in vars(n).values()
        if inspect.isclass(obj) and dataclasses.is_dataclass(obj)
        and obj.__module__ == n.__name__
    }


def _walk(node: object, seen: set[type]) -> None:
    if isinstance(node, tuple):
        for child in node:
            _walk(child, seen)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        seen.add(type(node))
        for f in dataclasses.fields(node):
            _walk(getattr(node, f.name), seen)


def test_the_strategies_generate_every_node_type() -> None:
    """A node type added to ``nodes.py`` must be added to the strategies (and so be
    exercised by the properties above) and to the formatter. Deterministic: the
    examples come from a fixed seed."""
    seen: set[type] = set()

    # every kind of item in every example (a draw from their union would leave the
    # node types of a rare kind to chance, more so with each kind added)
    kinds = (strategies.imports, strategies.uses, strategies.enums, strategies.facts,
             strategies.agents, strategies.policies, strategies.prunes,
             strategies.invariants, strategies.gates, strategies.tests)

    @settings(max_examples=100, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.tuples(*(st.lists(k, min_size=1, max_size=2) for k in kinds)), roots(),
           modules(max_items=1))
    def collect(body: tuple[list[n.Item], ...], root: n.Root, module: n.Module) -> None:
        _walk((tuple(item for kind in body for item in kind), root, module), seen)

    collect()
    missing = _node_types() - seen - {n.Comment}  # comments come from noisy_texts
    assert not missing, sorted(t.__name__ for t in missing)
