"""Deprecated: import from :mod:`converge_rules.plugins.api`. This path re-exports the
authoring API for plugins written against it and warns once per import."""

import warnings

from converge_rules.plugins.api import (
    OPEN,
    Check,
    Entry,
    Function,
    Pruner,
    Tool,
    ToolFn,
    ToolResult,
    check_type_name,
    language_type,
    model_signature,
)
from converge_rules.plugins.registries import (
    Registries,
    ValidatedTool,
    program_with_pruners,
    tools_for_engine,
)

warnings.warn(
    "converge_rules.registry is deprecated; import Tool, Function and the rest from "
    "converge_rules.plugins.api",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "OPEN",
    "Check",
    "Entry",
    "Function",
    "Pruner",
    "Registries",
    "Tool",
    "ToolFn",
    "ToolResult",
    "ValidatedTool",
    "check_type_name",
    "language_type",
    "model_signature",
    "program_with_pruners",
    "tools_for_engine",
]
