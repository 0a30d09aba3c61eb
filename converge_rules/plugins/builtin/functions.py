"""The built-in expression functions (``round abs min max len lower upper contains
startswith endswith matches date datetime str fixed``), registered from the one table
that defines them, :data:`converge_rules.language.builtins.BUILTINS`: its signatures and
implementations. ``now`` and ``today`` are not functions of their arguments (they read
the job's time), so they are the language's alone and not registered here."""

from __future__ import annotations

from collections.abc import Callable

from converge_rules.language.builtins import BUILTINS
from converge_rules.plugins.api import Function
from converge_rules.plugins.builtin import hook


@hook
def converge_register_functions(register: Callable[[Function], None]) -> None:
    for builtin in BUILTINS.values():
        if builtin.clock:
            continue
        signature = builtin.signature
        register(Function(
            name=signature.name,
            fn=builtin.implementation,
            args=signature.args,
            result=signature.result,
            variadic=signature.variadic,
            description="built-in",
        ))
