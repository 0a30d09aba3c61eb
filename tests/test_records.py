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
from typing import Any, Generic, TypeVar

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


_V = TypeVar("_V")


def _shapes() -> dict[str, type]:
    """Fresh, undecorated classes of the shapes a record may have (each call makes new
    ones: dataclass changes a class it is given)."""
    class Slotted:
        __slots__ = ("extra",)

        def hello(self) -> int:
            return 1

    class Plain:
        """Defaults, field options, a property, a class constant and a post-init."""

        a: int
        b: str = "x"
        c: tuple[int, ...] = dataclasses.field(default=(), repr=False, compare=False)
        d: list[int] = dataclasses.field(default_factory=list, hash=False)
        e: int = dataclasses.field(default=0, init=False)
        f: int = dataclasses.field(default=1, kw_only=True, metadata={"m": 1})
        LIMIT = 3

        @property
        def twice(self) -> int:
            return self.a * 2

        def __post_init__(self) -> None:
            pass

    class Derived(Slotted):
        """A base with slots of its own."""

        x: int = 0
        extra: int = 5

    class Held(Generic[_V]):
        """A generic class."""

        value: _V

    class Empty:
        """No field at all."""

    return {"Plain": Plain, "Derived": Derived, "Held": Held, "Empty": Empty}


def _factories(made: type, order: bool, frozen: bool) -> tuple[Any, ...]:
    methods = []
    for name, text, names in records.twin(made, order, frozen)[1]:
        namespace: dict[str, Any] = {}
        # dataclass's own text, as the generator writes it (compiled without this
        # module's postponed annotations, as the generated module is)
        exec(compile(text, "<record>", "exec", dont_inherit=True), namespace)
        methods.append((name, namespace["__create_fn__"], names))
    return tuple(methods)


@pytest.mark.parametrize("name", list(_shapes()))
@pytest.mark.parametrize("order,frozen", [(False, True), (True, True), (False, False)])
def test_a_record_made_at_once_is_the_slotted_class_dataclass_makes(
        name: str, order: bool, frozen: bool) -> None:
    theirs = dataclasses.dataclass(frozen=frozen, slots=True, order=order)(_shapes()[name])
    mine = records._slotted(_shapes()[name], order, frozen,
                            _factories(theirs, order, frozen))
    assert mine is not None
    assert list(mine.__dict__) == list(theirs.__dict__)
    for key, value in theirs.__dict__.items():
        other = mine.__dict__[key]
        if hasattr(value, "__code__") or hasattr(getattr(value, "__wrapped__", None),
                                                 "__code__"):
            assert _code(other)[:-1] == _code(value)[:-1], key
            assert (other.__qualname__, other.__module__) == \
                (value.__qualname__, value.__module__), key
        elif type(value).__name__ == "member_descriptor":
            assert type(other) is type(value) and other.__name__ == value.__name__, key
        elif key == "__dataclass_fields__":
            assert [repr(f) for f in other.values()] == [repr(f) for f in value.values()]
        elif isinstance(value, property):
            assert _code(other.fget)[:3] == _code(value.fget)[:3], key
        elif key == "__dataclass_params__":
            assert repr(other) == repr(value)
        else:
            assert other == value, key
    for attribute in ("__name__", "__qualname__", "__module__", "__slots__",
                      "__match_args__", "__doc__", "__parameters__"):
        assert getattr(mine, attribute, None) == getattr(theirs, attribute, None), attribute
    assert [c.__name__ for c in mine.__mro__] == [c.__name__ for c in theirs.__mro__]
    assert str(inspect.signature(mine)) == str(inspect.signature(theirs))
    if name in ("Plain", "Derived"):
        args, field = ((1,), "a") if name == "Plain" else ((), "x")
        a, b = mine(*args), theirs(*args)
        assert repr(a) == repr(b) and dataclasses.asdict(a) == dataclasses.asdict(b)
        assert a == mine(*args) and a != dataclasses.replace(a, **{field: 7})
        assert not hasattr(a, "__dict__") and not hasattr(b, "__dict__")
        if frozen:
            assert hash(a) == hash(b)
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(a, field, 2)
        else:
            assert mine.__hash__ is None and theirs.__hash__ is None
        if order:
            assert (a < a) == (b < b)


def test_a_record_dataclass_would_refuse_is_left_to_dataclass() -> None:
    class Mutable:
        """A mutable default."""

        a: list[int] = []  # noqa: RUF012 - what dataclass refuses

    class Loose:
        """A field without its annotation."""

        a: int
        b = dataclasses.field(default=1)

    for cls in (Mutable, Loose):
        assert records._slotted(cls, False, True, ()) is None
        with pytest.raises((TypeError, ValueError)):
            dataclasses.dataclass(frozen=True, slots=True)(cls)


def test_a_default_a_base_class_gives_is_one_as_dataclass_reads_it() -> None:
    # found (wz4a's review, session 27): shape() read a field's default from the class's
    # own dict, dataclass with getattr: a record whose plain base holds an attribute of
    # a field's name was served the generated methods of a field without a default
    class Base:
        end_column = 9

    @records.record(order=True)
    class Span(Base):
        """A span whose base gives end_column a default."""

        __module__ = "converge_rules.language.syntax.span"
        __qualname__ = "Span"
        file: str
        line: int
        column: int
        end_line: int
        end_column: int

    @dataclasses.dataclass(frozen=True, order=True)
    class Twin(Base):
        """The same, made by dataclass."""

        file: str
        line: int
        column: int
        end_line: int
        end_column: int

    assert Twin("f", 1, 2, 3).end_column == 9
    assert Span("f", 1, 2, 3).end_column == 9  # type: ignore[call-arg]
