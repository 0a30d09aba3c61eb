"""Syntax nodes compare, hash and print exactly as ``@dataclass(frozen=True,
slots=True)`` classes with the same fields would: ``nodes.node`` shares those three
methods between the classes instead of generating them per class (which made importing
the module slow), and that must change nothing anyone can observe."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from converge_rules.language.syntax import nodes
from converge_rules.language.syntax.parser import parse
from converge_rules.language.syntax.span import Span

REPO = Path(__file__).resolve().parents[2]
RULESETS = sorted(REPO.glob("rulesets/**/*.cvg"))
NODE_CLASSES = [c for c in vars(nodes).values()
                if isinstance(c, type) and dataclasses.is_dataclass(c)
                and c.__module__ == nodes.__name__]


def walk(value: Any) -> Iterator[Any]:
    """Every node in a tree, parents first."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type | Span):
        yield value
        for f in dataclasses.fields(value):
            yield from walk(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from walk(item)


def reference(cls: type) -> type:
    """The class ``@dataclass(frozen=True, slots=True)`` would make of ``cls``'s fields."""
    spec = [(f.name, f.type, dataclasses.field(compare=f.compare, repr=f.repr, hash=f.hash))
            for f in dataclasses.fields(cls)]
    made: type = dataclasses.make_dataclass(cls.__name__, spec, frozen=True, slots=True)
    made.__qualname__ = cls.__qualname__
    return made


def as_reference(node: Any, classes: dict[type, type]) -> Any:
    ref = classes.setdefault(type(node), reference(type(node)))
    return ref(**{f.name: getattr(node, f.name) for f in dataclasses.fields(node)})


def moved(node: Any) -> Any:
    """``node`` with another span: equal, by the rule that spans take no part."""
    return dataclasses.replace(node, span=Span("elsewhere.cvg", 99, 1, 99, 2))


@pytest.fixture(scope="module")
def parsed_nodes() -> list[Any]:
    found = []
    for path in RULESETS:
        result = parse(path.read_text(encoding="utf-8"), str(path))
        assert result.module is not None
        found.extend(walk(result.module))
    return found


def test_the_shipped_rulesets_reach_most_node_classes(parsed_nodes: list[Any]) -> None:
    """Otherwise the comparison below would prove little."""
    reached = {type(n) for n in parsed_nodes}
    assert len(reached) >= len(NODE_CLASSES) * 3 // 4, sorted(
        c.__name__ for c in set(NODE_CLASSES) - reached)


def test_equality_hash_and_repr_are_the_dataclass_ones(parsed_nodes: list[Any]) -> None:
    classes: dict[type, type] = {}
    by_class: dict[type, list[Any]] = {}
    for node in parsed_nodes:
        by_class.setdefault(type(node), []).append(node)
    for cls, group in by_class.items():
        sample = group[:40]
        refs = [as_reference(n, classes) for n in sample]
        for node, ref in zip(sample, refs, strict=True):
            assert repr(node) == repr(ref)
            assert hash(node) == hash(ref)
            assert node == moved(node) and hash(node) == hash(moved(node))
            assert node != object() and (node == ref) is False  # another class
        for i, (a, ra) in enumerate(zip(sample, refs, strict=True)):
            for b, rb in zip(sample[i:], refs[i:], strict=True):
                assert (a == b) == (ra == rb), (cls.__name__, a, b)
                assert (a != b) == (ra != rb)


def test_nodes_stay_frozen_slotted_and_picklable(parsed_nodes: list[Any]) -> None:
    for cls in NODE_CLASSES:
        assert "__dict__" not in dir(cls), cls.__name__
        assert cls.__match_args__ == tuple(
            f.name for f in dataclasses.fields(cls) if f.init and not f.kw_only)
    some = parsed_nodes[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        some.span = None
    assert pickle.loads(pickle.dumps(parsed_nodes)) == parsed_nodes
