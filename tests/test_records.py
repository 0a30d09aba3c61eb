"""``@record`` classes are what ``dataclass(frozen=True, slots=True)`` makes of them, with
the methods compiled from ``converge_rules/_record_methods.py``, which is what the
generator writes today."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest

from converge_rules import records
from converge_rules._record_methods import METHODS, PYTHON

GENERATED = Path(records.__file__).with_name("_record_methods.py")
# the methods were written by this Python's dataclasses (another's are not served)
this_python = pytest.mark.skipif(sys.version_info[:2] != PYTHON,
                                 reason=f"the generated methods are Python {PYTHON}'s")


def _classes() -> list[tuple[type, bool, bool]]:
    out = []
    for key, (shape, _) in METHODS.items():
        module, name = key.rsplit(".", 1)
        out.append((getattr(importlib.import_module(module), name), " order=True " in shape,
                    " frozen=True " in shape))
    return out


@this_python
def test_the_generated_methods_are_what_the_generator_writes() -> None:
    # Edited a @record class? Run `python -m converge_rules.records` and commit the file.
    assert GENERATED.read_text(encoding="utf-8") == records.generate()


def test_a_run_builds_its_records_from_the_generated_methods() -> None:
    # the classes of a cached load and run (bench/README: "Which dataclasses a cached
    # run builds") are all recorded, and each is served by the compiled methods (on
    # the Python that wrote them; on another, each is made by dataclass)
    assert len(METHODS) >= 38
    for cls, _, _ in _classes():
        served = cls.__init__.__code__.co_filename == str(GENERATED)
        assert served == (sys.version_info[:2] == PYTHON), cls


def _code(fn: Any) -> tuple[Any, ...]:
    fn = inspect.unwrap(fn)
    code = fn.__code__
    return (code.co_code, code.co_consts, code.co_names, code.co_varnames,
            code.co_freevars, fn.__defaults__, fn.__kwdefaults__, fn.__annotations__,
            [c.cell_contents for c in fn.__closure__ or ()])


@pytest.mark.parametrize("cls,order,frozen", _classes(),
                         ids=lambda c: getattr(c, "__name__", ""))
def test_a_record_is_what_dataclass_makes_of_it(cls: type, order: bool, frozen: bool) -> None:
    twin, _ = records.twin(cls, order, frozen)
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__",
                 "__delattr__", "__lt__", "__le__", "__gt__", "__ge__", "__getstate__",
                 "__setstate__"):
        mine, theirs = cls.__dict__.get(name), twin.__dict__.get(name)
        assert (mine is None) == (theirs is None), name
        if mine is not None and hasattr(mine, "__code__"):
            assert _code(mine)[:-1] == _code(theirs)[:-1], name
            # the cells: equal, but for the class __setattr__ and __delattr__ test (the
            # class as defined, as dataclass has it, which is not the slotted one made)
            for c, t in zip(_code(mine)[-1], _code(theirs)[-1], strict=True):
                if isinstance(c, type):
                    assert c is not cls and t is not twin
                    assert (c.__module__, c.__qualname__) == (t.__module__, t.__qualname__)
                else:
                    assert c == t, name
            assert mine.__qualname__.replace(cls.__qualname__, "") == \
                theirs.__qualname__.replace(twin.__qualname__, ""), name
            assert mine.__module__ == theirs.__module__, name
    for name in ("__slots__", "__match_args__", "__doc__"):
        assert getattr(cls, name) == getattr(twin, name), name
    assert repr(cls.__dataclass_params__) == repr(twin.__dataclass_params__)  # type: ignore[attr-defined]
    assert [repr(f) for f in dataclasses.fields(cls)] == [repr(f) for f in dataclasses.fields(twin)]
    assert str(inspect.signature(cls)) == str(inspect.signature(twin))


def test_a_record_behaves_as_a_frozen_dataclass() -> None:
    from converge_rules.language.syntax.span import Span

    span = Span("a.cvg", 1, 2, 1, 5)
    assert repr(span) == "Span(file='a.cvg', line=1, column=2, end_line=1, end_column=5)"
    assert span == Span("a.cvg", 1, 2, 1, 5) and span < Span("a.cvg", 1, 3, 1, 5)
    assert hash(span) == hash(("a.cvg", 1, 2, 1, 5))
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'line'"):
        span.line = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'line'"):
        del span.line  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(span)) == span
    assert dataclasses.replace(span, line=4).line == 4
    assert not hasattr(span, "__dict__")
    with pytest.raises(TypeError, match="super"):  # as dataclass's slotted class has it
        span.other = 1  # type: ignore[attr-defined]


def test_a_class_unlike_the_generated_one_is_made_by_dataclass() -> None:
    # a class of a recorded name whose definition changed (a field more) since the
    # methods were generated gets dataclass's, not the stale ones
    @records.record(order=True)
    class Span:
        """Not the recorded span."""

        __module__ = "converge_rules.language.syntax.span"
        __qualname__ = "Span"
        file: str
        line: int
        extra: int = 0

    assert Span.__init__.__code__.co_filename != str(GENERATED)
    assert repr(Span("f", 1)) == "Span(file='f', line=1, extra=0)"
    assert Span("f", 1) < Span("f", 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Span("f", 1).line = 2  # type: ignore[misc]

    @records.record
    class Unrecorded:
        """Not in the generated module."""

        a: int

    assert Unrecorded.__init__.__code__.co_filename != str(GENERATED)
    assert Unrecorded(1) == Unrecorded(1) and hash(Unrecorded(1)) == hash((1,))


def test_a_record_that_is_not_frozen_is_a_slotted_dataclass_that_is_not() -> None:
    from converge_rules.engine.budgets import BudgetMeter

    assert BudgetMeter.__init__.__code__.co_filename == str(GENERATED) or \
        sys.version_info[:2] != PYTHON
    meter = BudgetMeter.__new__(BudgetMeter)
    twin, _ = records.twin(BudgetMeter, False, False)
    assert BudgetMeter.__hash__ is None and twin.__hash__ is None
    assert "__getstate__" not in BudgetMeter.__dict__
    assert not BudgetMeter.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert not hasattr(meter, "__dict__")


def test_a_keyword_only_field_changed_since_generation_is_made_by_dataclass() -> None:
    # Tool's arg_types and result_types are keyword-only: a change to one (here repr,
    # hash and the default) is a class unlike the recorded one, not served stale methods
    from collections.abc import Mapping
    from dataclasses import field

    from pydantic import BaseModel

    from converge_rules.plugins.api import ToolFn

    @records.record
    class Tool:
        """Not the recorded tool."""

        __module__ = "converge_rules.plugins.api"
        __qualname__ = "Tool"
        name: str
        fn: ToolFn | str
        args: type[BaseModel] | str
        result: type[BaseModel] | str
        description: str = ""
        plugin: str = ""
        arg_types: Mapping[str, str] | None = field(repr=False, kw_only=True)
        result_types: Mapping[str, str] | None = field(default=None, hash=False,
                                                       kw_only=True)
        _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False,
                                        compare=False, hash=False)

    assert Tool.__init__.__code__.co_filename != str(GENERATED)
    with pytest.raises(TypeError, match="arg_types"):
        Tool("t", "m:f", "m:A", "m:R")  # type: ignore[call-arg]
    tool = Tool("t", "m:f", "m:A", "m:R", arg_types={"a": "int"})
    assert "arg_types" not in repr(tool)
