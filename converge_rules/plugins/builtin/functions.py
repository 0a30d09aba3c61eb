"""The built-in expression functions (``round abs min max len lower upper contains
startswith endswith matches``), registered from the one table that defines them,
:data:`converge_rules.language.builtins.BUILTINS`: its signatures and implementations."""

from __future__ import annotations

from collections.abc import Callable

from converge_rules.language.builtins import BUILTINS
from converge_rules.plugins.api import Function
from converge_rules.plugins.hookspecs import hookimpl


@hookimpl
def converge_register_functions(register: Callable[[Function], None]) -> None:
    for builtin in BUILTINS.values():
        signature = builtin.signature
        register(Function(
            name=signature.name,
            fn=builtin.implementation,
            args=signature.args,
            result=signature.result,
            variadic=signature.variadic,
            description="built-in",
        ))
