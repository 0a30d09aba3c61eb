"""The checker's value types and the rules for combining them.

A :class:`Ty` is what an expression evaluates to. ``any`` stands for "not known"
(an untyped tool result, or an expression that already has an error): it is compatible
with everything, so one mistake is reported once rather than at every use.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, replace

PRIMITIVES = ("str", "int", "float", "bool", "date", "datetime", "duration", "blob")


@dataclass(frozen=True, slots=True)
class Ty:
    """``kind`` is one of ``str int float bool date datetime duration number enum list
    fact record any``; ``name`` is the enum or fact type name; ``elem`` the list element type;
    ``fields`` the fields of a record (a tool result)."""

    kind: str
    name: str = ""
    elem: Ty | None = None
    optional: bool = False
    fields: tuple[tuple[str, Ty], ...] | None = None

    def __str__(self) -> str:
        if self.kind in ("enum",):
            base = self.name
        elif self.kind == "fact":
            base = f"fact {self.name}"
        elif self.kind == "list":
            base = f"list[{self.elem}]"
        elif self.kind == "record":
            inner = ", ".join(f"{k}: {v}" for k, v in self.fields or ())
            base = "{" + inner + "}"
        else:
            base = self.kind
        return base + ("?" if self.optional else "")

    @property
    def is_any(self) -> bool:
        return self.kind == "any"

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("int", "float", "number", "any")

    def required(self) -> Ty:
        """The same type without the optional mark."""
        return replace(self, optional=False) if self.optional else self

    def field(self, name: str) -> Ty | None:
        """The type of field ``name`` of a record, or None."""
        for key, ty in self.fields or ():
            if key == name:
                return ty
        return None


ANY = Ty("any")
STR = Ty("str")
INT = Ty("int")
FLOAT = Ty("float")
BOOL = Ty("bool")
DURATION = Ty("duration")
DATE = Ty("date")
DATETIME = Ty("datetime")
NUMBER = Ty("number")


def list_of(elem: Ty) -> Ty:
    return Ty("list", elem=elem)


def enum_ty(name: str) -> Ty:
    return Ty("enum", name=name)


def fact_ty(name: str) -> Ty:
    return Ty("fact", name=name)


def assignable(src: Ty, dst: Ty) -> bool:
    """May a value of type ``src`` stand where ``dst`` is declared? int widens to float.

    An optional (``T?``) value is accepted where a ``T`` is required: the language has no
    way to test for a missing value, so refusing it would make optional fields unusable
    in expressions. A missing value at run time fails that agent's match (the trace says
    why), like any other runtime error in an agent.
    """
    if src.is_any or dst.is_any:
        return True
    s, d = src.required(), dst.required()
    if d.kind == "number":
        return s.kind in ("int", "float", "number")
    if s.kind == "number":
        return d.kind in ("int", "float")
    if s.kind == "int" and d.kind == "float":
        return True
    if s.kind != d.kind:
        return False
    if s.kind in ("enum", "fact"):
        return s.name == d.name
    if s.kind == "list":
        assert s.elem is not None and d.elem is not None
        return assignable(s.elem, d.elem)
    return True


def comparable(a: Ty, b: Ty) -> bool:
    """May ``a == b`` be asked (either side widens to the other; optionals allowed)?"""
    a, b = a.required(), b.required()
    return assignable(a, b) or assignable(b, a)


def orderable(a: Ty, b: Ty) -> bool:
    """May ``a < b`` be asked: two numbers, or two strings, durations, dates or
    datetimes."""
    if a.is_any or b.is_any:
        return True
    a, b = a.required(), b.required()
    if a.is_numeric and b.is_numeric:
        return True
    return a.kind == b.kind and a.kind in ("str", "duration", "date", "datetime")


def arithmetic(a: Ty, b: Ty) -> Ty:
    """The type of ``a + b`` (and ``- *``) for two numbers: float if either is."""
    if a.is_any or b.is_any:
        return ANY
    if a.kind == "float" or b.kind == "float":
        return FLOAT
    if a.kind == "number" or b.kind == "number":
        return NUMBER
    return INT


def unify(a: Ty, b: Ty) -> Ty | None:
    """The common type of two branches (``if … then a else b``, list items), or None."""
    if a.is_any:
        return b
    if b.is_any:
        return a
    if a.is_numeric and b.is_numeric and a.kind != b.kind:
        return replace(arithmetic(a, b), optional=a.optional or b.optional)
    if assignable(a.required(), b.required()) and assignable(b.required(), a.required()):
        return replace(a, optional=a.optional or b.optional)
    return None


def from_text(text: str, enums: Container[str]) -> Ty | None:
    """Parse a type written in a plugin signature (``str``, ``list[float]``, ``int?``,
    an enum name, ``number``, ``any``); None if it names nothing known."""
    text = text.strip()
    optional = text.endswith("?")
    if optional:
        text = text[:-1].strip()
    ty: Ty | None
    if text in PRIMITIVES or text in ("number", "any"):
        ty = Ty(text)
    elif text.startswith("list[") and text.endswith("]"):
        inner = from_text(text[5:-1], enums)
        ty = None if inner is None else list_of(inner)
    elif text in enums:
        ty = enum_ty(text)
    else:
        ty = None
    if ty is not None and optional:
        ty = replace(ty, optional=True)
    return ty
