"""Slotted dataclasses whose methods are compiled with the package, not at import.

``@record`` is ``@dataclass(frozen=True, slots=True)`` (``@record(order=True)`` adds
``order=True``; ``@record(frozen=False)`` is not frozen): the same fields, methods,
pickling, ``fields``/``replace``/``asdict`` and the same code in every method.
``dataclass`` writes each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__`` and ``__delattr__`` as text and ``exec``s it when the module is
imported: about 0.45 ms of CPython's parser and compiler a class, 18 ms of every run's
start-up for the 40 classes a run builds. Here that text is generated once into
:mod:`converge_rules._record_methods` (``python -m converge_rules.records`` writes it;
a test regenerates it and compares), where it is compiled into the package's bytecode
like any module. The slotted class is made at once from the class as defined (fields
as dataclass makes them, those methods, dataclass's slots), not first made a dataclass
and then copied into a slotted one as ``dataclass`` does (~30 µs a class).

A class whose definition differs from what the generated text was made from (a field
added, a default changed, a method of its own), or on another Python (major, minor),
is not served stale code: its *shape* (the annotations, what each field's default is,
the options) is compared with the one recorded, and on any difference the class is
made by ``dataclass`` as before. The invariant: a ``@record`` class is exactly what
``dataclass(frozen=..., slots=True, order=...)`` makes of it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import MemberDescriptorType as _MEMBER
from typing import Any, TypeVar, cast, dataclass_transform, overload

from converge_rules.deferred_imports import import_deferring

# dataclasses imports inspect (~5 ms) for one call, which no record needs (see
# converge_rules.deferred_imports)
import_deferring("dataclasses", "inspect")
# (the modules of records take field from here, so that this one imports dataclasses first)
import dataclasses  # noqa: E402
from dataclasses import field as field  # noqa: E402

T = TypeVar("T", bound=type)

# Methods a class may define itself, which dataclass would keep or refuse to overwrite:
# such a class is made by dataclass.
_OWN = ("__init__", "__repr__", "__eq__", "__hash__", "__lt__", "__le__", "__gt__",
        "__ge__", "__setattr__", "__delattr__", "__getstate__", "__setstate__",
        "__match_args__", "__slots__")


@overload
def record(cls: T, /) -> T: ...
@overload
def record(*, order: bool = False, frozen: bool = True) -> Callable[[T], T]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,
                                                          dataclasses.Field))
def record(cls: T | None = None, /, *, order: bool = False, frozen: bool = True) -> Any:
    """``@dataclass(frozen=frozen, slots=True, order=order)``, its methods compiled with the
    package when :mod:`converge_rules._record_methods` holds them for this class as it
    is defined (else made by ``dataclass``)."""
    def wrap(cls: T) -> T:
        made = _from_generated(cls, order, frozen)
        if made is None:
            made = dataclasses.dataclass(frozen=frozen, slots=True, order=order)(cls)
        return cast(T, made)

    return wrap if cls is None else wrap(cls)


def shape(cls: type, order: bool, frozen: bool) -> str | None:
    """What ``dataclass`` makes of the (undecorated) class ``cls`` depends on, as text;
    None for a class it is not offered for (one with a dataclass base, no docstring, a
    method of its own that dataclass makes, a ``ClassVar``, ``InitVar`` or ``KW_ONLY``
    annotation: ``dataclass`` makes those)."""
    own = cls.__dict__
    if (not own.get("__doc__") or any(name in own for name in _OWN)
            or any(hasattr(base, "__dataclass_fields__") for base in cls.__mro__[1:])):
        return None
    lines = [_head(cls, order, frozen)]
    missing = dataclasses.MISSING
    for name, annotation in own.get("__annotations__", {}).items():
        if not isinstance(annotation, str) or _pseudo(annotation):
            return None
        value = getattr(cls, name, missing)  # as dataclass reads it: a base's too
        if isinstance(value, dataclasses.Field):
            lines.append(_field_line(name, annotation, value))
        else:  # what dataclass makes of a plain default, or of none
            lines.append(f"{name}: {annotation!r} default={value is not missing} "
                         "factory=False init=True repr=True hash=None compare=True")
    return "\n".join(lines)


def fields_shape(cls: type, order: bool, frozen: bool) -> str | None:
    """:func:`shape` of the class ``cls`` made by ``dataclass`` or ``record``."""
    lines = [_head(cls, order, frozen)]
    for f in cls.__dataclass_fields__.values():  # type: ignore[attr-defined]
        if (f._field_type is not dataclasses._FIELD  # type: ignore[attr-defined]
                or not isinstance(f.type, str) or _pseudo(f.type)):
            return None
        lines.append(_field_line(f.name, f.type, f))
    return "\n".join(lines)


def _pseudo(annotation: str) -> bool:
    # what dataclass may read as no field, or as a marker (not offered: too rare here;
    # no regular expression: compiling one costs more than these tests of 38 classes)
    return "ClassVar" in annotation or "InitVar" in annotation or "KW_ONLY" in annotation


def _head(cls: type, order: bool, frozen: bool) -> str:
    return (f"{cls.__module__}.{cls.__qualname__} order={order} frozen={frozen} "
            f"post_init={hasattr(cls, '__post_init__')}")


def _field_line(name: str, annotation: str, f: dataclasses.Field[Any]) -> str:
    # (a field's kw_only is MISSING before dataclass made it, False after)
    kw_only = " kw_only" if f.kw_only not in (False, dataclasses.MISSING) else ""
    return (f"{name}: {annotation!r} default={f.default is not dataclasses.MISSING} "
            f"factory={f.default_factory is not dataclasses.MISSING} init={f.init} "
            f"repr={f.repr} hash={f.hash} compare={f.compare}{kw_only}")


def _from_generated(cls: type, order: bool, frozen: bool) -> Any:
    from converge_rules import _record_methods

    # another Python's dataclass writes other text (and a module being written, none)
    if getattr(_record_methods, "PYTHON", None) != sys.version_info[:2]:
        return None
    generated = _record_methods.METHODS.get(f"{cls.__module__}.{cls.__qualname__}")
    if generated is None or generated[0] != (shape(cls, order, frozen) or None):
        return None
    made = _slotted(cls, order, frozen, generated[1])
    if made is None:  # what dataclass refuses (it says why) or arranges otherwise
        made = dataclasses.dataclass(frozen=frozen, slots=True, order=order)(cls)
    return made


def _slotted(cls: type, order: bool, frozen: bool,
             methods: tuple[tuple[str, Any, tuple[str, ...]], ...]) -> Any:
    """The slotted class ``dataclass(frozen=frozen, slots=True, order=order)`` makes of
    ``cls`` (of a shape :func:`shape` offers), made at once: the fields as dataclass's
    ``_process_class`` makes them, the methods from their compiled factories, and the
    class dataclass's ``_add_slots`` makes, without making, then copying, a first
    dataclass (about half of a record's cost at import). None when dataclass would
    refuse the class or a base's slots are not plain."""
    own = cls.__dict__
    missing, field_type = dataclasses.MISSING, dataclasses._FIELD  # type: ignore[attr-defined]
    annotations = own.get("__annotations__", {})
    fields: dict[str, dataclasses.Field[Any]] = {}
    for name, annotation in annotations.items():  # as dataclass's _get_field
        default: Any = getattr(cls, name, missing)
        if isinstance(default, dataclasses.Field):
            f = default
        else:
            if isinstance(default, _MEMBER):  # a base's slot: no default
                default = missing
            f = dataclasses.field(default=default)
        f.name, f.type, f._field_type = name, annotation, field_type  # type: ignore[attr-defined]
        if f.kw_only is missing:
            f.kw_only = False
        if f.default.__class__.__hash__ is None:  # a mutable default
            return None
        fields[name] = f
    for name, value in own.items():
        if isinstance(value, dataclasses.Field) and name not in annotations:
            return None
    inherited: set[str] = set()
    for base in cls.__mro__[1:-1]:
        slots = base.__dict__.get("__slots__")
        if isinstance(slots, str):
            inherited.add(slots)
        elif slots is not None:
            if hasattr(slots, "__next__"):
                return None
            inherited.update(slots)
    namespace = {name: value for name, value in own.items()
                 if name not in fields and name != "__dict__" and name != "__weakref__"}
    namespace["__dataclass_params__"] = dataclasses._DataclassParams(  # type: ignore[attr-defined]
        True, True, True, order, False, frozen)
    namespace["__dataclass_fields__"] = fields
    qualname = cls.__qualname__
    for name, factory, names in methods:
        # (``cls`` of __setattr__ and __delattr__ is the class as defined, not the slotted
        # one made from it, as dataclass has it: setting another attribute is a TypeError)
        fn = factory(**{local: _local(local, cls, fields) for local in names})
        fn.__module__ = cls.__module__
        if name == "__repr__":
            fn = dataclasses._recursive_repr(fn)  # type: ignore[attr-defined]
        fn.__qualname__ = f"{qualname}.{fn.__name__}"
        namespace[name] = fn
    if not frozen:  # eq without frozen: unhashable, as dataclass makes it
        namespace["__hash__"] = None
    namespace["__match_args__"] = tuple(name for name, f in fields.items()
                                        if f.init and not f.kw_only)
    namespace["__slots__"] = tuple(name for name in fields if name not in inherited)
    made: Any = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = qualname
    if frozen:  # as dataclass's slots do for a frozen class, which pickles by setattr
        made.__getstate__ = dataclasses._dataclass_getstate  # type: ignore[attr-defined]
        made.__setstate__ = dataclasses._dataclass_setstate  # type: ignore[attr-defined]
    return made


def _local(name: str, cls: type, fields: dict[str, dataclasses.Field[Any]]) -> Any:
    """The value dataclass gives the generated function's local ``name``."""
    if name.startswith("_type_"):
        return fields[name[6:]].type
    if name.startswith("_dflt_"):
        f = fields[name[6:]]
        return f.default if f.default_factory is dataclasses.MISSING else f.default_factory
    return {"cls": cls, "MISSING": dataclasses.MISSING, "_return_type": None,
            "_HAS_DEFAULT_FACTORY": dataclasses._HAS_DEFAULT_FACTORY,  # type: ignore[attr-defined]
            "__dataclass_builtins_object__": object,
            "FrozenInstanceError": dataclasses.FrozenInstanceError}[name]


_HEADER = '''"""The methods ``dataclass`` writes for the package's ``@record`` classes
(:mod:`converge_rules.records`), compiled with the package instead of at import.

Generated by ``python -m converge_rules.records``: do not edit; a test regenerates it
and compares.
"""
# ruff: noqa
# mypy: ignore-errors

PYTHON = {python!r}
"""The Python (major, minor) whose dataclasses wrote these methods: another is not served."""

_methods = {{}}
_shapes = {{}}


def _add(key, name, factory, names):
    _methods.setdefault(key, []).append((name, factory, names))
'''

_FOOTER = '''
METHODS = {key: (_shapes[key], tuple(methods)) for key, methods in _methods.items()}
"""``module.qualname`` of a class: (its shape, ((method name, the factory dataclass
would exec, the names of the factory's arguments), ...))."""
del _methods, _shapes, _add
'''


def generate() -> str:
    """The text of :mod:`converge_rules._record_methods`: for every class of the package
    decorated ``@record`` (at the top of its module), what ``dataclass(frozen=True,
    slots=True, order=...)`` would ``exec`` for it."""
    import importlib
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent
    found = re.compile(r"^@record(\([^)]*\))?\nclass (\w+)", re.MULTILINE)
    parts = [_HEADER.format(python=sys.version_info[:2])]
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for match in found.finditer(path.read_text(encoding="utf-8")):
            cls = getattr(importlib.import_module(module), match.group(2))
            options = match.group(1) or ""
            parts.append(_class_text(cls, "order=True" in options,
                                     "frozen=False" not in options))
    parts.append(_FOOTER)
    return "\n".join(parts)


def _class_text(cls: type, order: bool, frozen: bool) -> str:
    key = f"{cls.__module__}.{cls.__qualname__}"
    found = fields_shape(cls, order, frozen)
    if found is None:
        return ""
    texts = [f"\n_shapes[{key!r}] = {found!r}\n"]
    for name, text, names in twin(cls, order, frozen)[1]:
        texts.append(f"{text}\n\n_add({key!r}, {name!r}, __create_fn__, {names!r})\n")
    return "\n".join(texts)


def twin(cls: type, order: bool, frozen: bool = True
         ) -> tuple[type, list[tuple[str, str, tuple[str, ...]]]]:
    """A class of ``cls``'s definition made by ``dataclass(frozen=frozen, slots=True,
    order=order)``, and the text of each function it ``exec``ed for it: (method name,
    ``def __create_fn__(...)`` giving the method, the factory's argument names)."""
    namespace: dict[str, Any] = {
        "__doc__": cls.__doc__, "__module__": cls.__module__,
        "__qualname__": cls.__qualname__, "__annotations__": {}}
    for f in cls.__dataclass_fields__.values():  # type: ignore[attr-defined]
        namespace["__annotations__"][f.name] = f.type
        namespace[f.name] = dataclasses.field(
            default=f.default, default_factory=f.default_factory, init=f.init,
            repr=f.repr, hash=f.hash, compare=f.compare, metadata=f.metadata or None,
            kw_only=f.kw_only)
    if hasattr(cls, "__post_init__"):
        namespace["__post_init__"] = cls.__post_init__
    texts = []
    create = dataclasses._create_fn  # type: ignore[attr-defined]

    def take_down(name: str, args: Any, body: Any, *, globals: Any = None,
                  locals: Any = None, return_type: Any = dataclasses.MISSING) -> Any:
        names = dict(locals or {})
        annotation = ""
        if return_type is not dataclasses.MISSING:  # as dataclasses._create_fn writes it
            names["_return_type"] = return_type
            annotation = "->_return_type"
        lines = "\n".join(f"  {b}" for b in body)
        text = f" def {name}({','.join(args)}){annotation}:\n{lines}"
        texts.append((name, f"def __create_fn__({', '.join(names)}):\n{text}\n return {name}",
                      tuple(names)))
        return create(name, args, body, globals=globals, locals=locals,
                      return_type=return_type)

    dataclasses._create_fn = take_down  # type: ignore[attr-defined]
    try:
        made: type = dataclasses.dataclass(frozen=frozen, slots=True, order=order)(
            type(cls.__name__, (), namespace))
    finally:
        dataclasses._create_fn = create  # type: ignore[attr-defined]
    return made, texts


if __name__ == "__main__":
    import os
    from pathlib import Path

    target = Path(__file__).resolve().parent / "_record_methods.py"
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(generate(), encoding="utf-8")
    os.replace(temporary, target)
