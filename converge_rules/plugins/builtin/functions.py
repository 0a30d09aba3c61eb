"""The built-in expression functions (``round abs min max len lower upper contains
startswith endswith matches``), with the signatures the checker knows from
:mod:`converge_rules.language.builtins` and the implementations compiled rules call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from converge_rules.compiler.runtime import cvg_matches, cvg_round
from converge_rules.language.builtins import BUILTIN_FUNCTIONS
from converge_rules.plugins.api import Function
from converge_rules.plugins.hookspecs import hookimpl


def _contains(text: str, part: str) -> bool:
    return part in text


def _startswith(text: str, prefix: str) -> bool:
    return text.startswith(prefix)


def _endswith(text: str, suffix: str) -> bool:
    return text.endswith(suffix)


def _lower(text: str) -> str:
    return text.lower()


def _upper(text: str) -> str:
    return text.upper()


IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "round": cvg_round,
    "abs": abs,
    "min": min,
    "max": max,
    "len": len,
    "lower": _lower,
    "upper": _upper,
    "contains": _contains,
    "startswith": _startswith,
    "endswith": _endswith,
    "matches": cvg_matches,
}


@hookimpl
def converge_register_functions(register: Callable[[Function], None]) -> None:
    for name, signature in BUILTIN_FUNCTIONS.items():
        if name not in IMPLEMENTATIONS:
            # The compiler inlines built-ins, so a run does not need this entry; a test
            # (tests/plugins/test_builtin_plugins.py) asks for it to be added here.
            continue
        register(Function(
            name=name,
            fn=IMPLEMENTATIONS[name],
            args=signature.args,
            result=signature.result,
            variadic=signature.variadic,
            description="built-in",
        ))
