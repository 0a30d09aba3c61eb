"""The built-in resolvers, registered through ``converge_register_resolvers`` like any
plugin's: the ``resolve by`` criteria that take no argument (``latest``, ``earliest``,
``majority``, ``highest_confidence`` …), as the very functions the policy code uses,
so ``resolve by using majority`` means ``resolve by majority``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from converge_rules.engine.policies import BUILTIN_RESOLVERS
from converge_rules.plugins.builtin import hook

if TYPE_CHECKING:
    from converge_rules.plugins.hookspecs import Register


@hook
def converge_register_resolvers(register: Register) -> None:
    for name, (resolver, description) in BUILTIN_RESOLVERS.items():
        register(name, resolver, description)
