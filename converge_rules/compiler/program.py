"""Deprecated: the compiled program moved to :mod:`converge_rules.program` (the contract
between compiler and engine, imported by both). This path re-exports it for plugins
written against it and warns once per import."""

import warnings

from converge_rules.program import *  # noqa: F403

warnings.warn(
    "converge_rules.compiler.program is deprecated; import from converge_rules.program",
    DeprecationWarning,
    stacklevel=2,
)
