"""Deprecated: import from :mod:`converge_rules.plugins.hookspecs` (or
``converge_rules.plugins.api``). This path re-exports it for plugins written against
it and warns once per import."""

import warnings

from converge_rules.plugins.hookspecs import *  # noqa: F403
from converge_rules.plugins.hookspecs import PROJECT, Register, hookimpl, hookspec

warnings.warn(
    "converge_rules.hookspecs is deprecated; import hookimpl from converge_rules.plugins.api",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["PROJECT", "Register", "hookimpl", "hookspec"]
