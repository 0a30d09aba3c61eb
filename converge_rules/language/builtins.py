"""Signatures of the built-in expression functions.

Aggregates (``count sum min max mean`` over a pattern) are syntax, not functions, and do
not appear here. Type names are as in the language, plus two signature-only names:
``number`` (int or float; a ``number`` result is float when any ``number`` argument is a
float, otherwise int) and ``any``.
"""

from __future__ import annotations

from converge_rules.language.checked import FunctionSignature

BUILTIN_FUNCTIONS: dict[str, FunctionSignature] = {
    f.name: f
    for f in (
        FunctionSignature("round", ("float", "int"), "float"),
        FunctionSignature("abs", ("number",), "number"),
        FunctionSignature("min", ("number", "number"), "number", variadic=True),
        FunctionSignature("max", ("number", "number"), "number", variadic=True),
        FunctionSignature("len", ("any",), "int"),
        FunctionSignature("lower", ("str",), "str"),
        FunctionSignature("upper", ("str",), "str"),
        FunctionSignature("contains", ("str", "str"), "bool"),
        FunctionSignature("startswith", ("str", "str"), "bool"),
        FunctionSignature("endswith", ("str", "str"), "bool"),
        FunctionSignature("matches", ("str", "str"), "bool"),
    )
}
"""The built-ins by name. ``len`` takes a ``str`` or a ``list``; ``matches(text,
pattern)`` uses a linear-time regex engine; ``min``/``max`` take two or more numbers."""

MIN_ARGS: dict[str, int] = {"round": 1}
"""Built-ins whose trailing arguments may be left out: ``round(x)`` rounds to a whole
number, ``round(x, 2)`` to two decimals."""


def builtin_functions() -> dict[str, FunctionSignature]:
    """A fresh copy of :data:`BUILTIN_FUNCTIONS` (callers may add plugin functions)."""
    return dict(BUILTIN_FUNCTIONS)
