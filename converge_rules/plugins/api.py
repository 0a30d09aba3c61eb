"""The authoring API: everything a plugin author imports, in one place.

    from converge_rules.plugins.api import Function, Tool, hookimpl

* :data:`hookimpl` marks a plugin's hook functions (the hooks are documented in
  :mod:`converge_rules.plugins.hookspecs` and docs/plugins.md).
* :class:`Tool` — something agents ``call``: a sync or async function with pydantic
  ``args`` and ``result`` models. ``Tool.signature()`` gives the checker the argument
  and result types as language types, so ``converge check`` type-checks calls offline.
* :class:`Function` — a pure function usable in expressions, with language types.
* :class:`Resolver` — a criterion for ``resolve by using NAME``; it sees the conflicting
  :class:`TypeSpec` (with its :class:`FieldSpec` fields) and the :class:`Contender` s.
* :class:`Pruner` — drops facts from the live context after each merge.
* :class:`Check` — an extra lint rule returning :class:`Diagnostic` s.
* :class:`Executor` and :class:`TraceSink` — the interfaces an executor or a store
  plugin implements.
* :class:`Entry` — how a registered resolver, pruner, executor, store or check is
  listed (name, object, description, plugin).

A model that allows extra fields (``model_config = ConfigDict(extra="allow")``) is
*open*: its signature carries the entry ``"*": "any"`` (:data:`OPEN`), meaning names
beyond the declared ones are accepted, with any type. Templated tools use it (an HTTP
URL template or an LLM prompt filled from extra arguments; an LLM answer whose fields a
schema chooses).
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from converge_rules.errors import PluginError, ToolError
from converge_rules.language.checks.checked import FunctionSignature, ToolSignature
from converge_rules.language.diagnostics import Diagnostic, Severity
from converge_rules.language.syntax.span import Span
from converge_rules.plugins.hookspecs import hookimpl
from converge_rules.program import Contender, FieldSpec, Resolver, TypeSpec
from converge_rules.store.base import TraceSink

if TYPE_CHECKING:
    # pydantic and the engine are imported when used, not with this module: every
    # `converge check` loads the plugin layer (see tests/cli/test_startup.py).
    from pydantic import BaseModel, ValidationError

    from converge_rules.engine.effects import Activation, AgentEffect
    from converge_rules.engine.executors import Executor, SerialExecutor, run_agent

__all__ = [
    "OPEN",
    "Activation",
    "AgentEffect",
    "Check",
    "Contender",
    "Diagnostic",
    "Entry",
    "Executor",
    "FieldSpec",
    "Function",
    "PluginError",
    "Pruner",
    "Resolver",
    "SerialExecutor",
    "Severity",
    "Span",
    "Tool",
    "ToolError",
    "ToolFn",
    "ToolResult",
    "TraceSink",
    "TypeSpec",
    "check_type_name",
    "hookimpl",
    "language_type",
    "model_signature",
    "run_agent",
]

OPEN = "*"
"""Signature key of an open model: more names are accepted, of type ``any``."""

ToolResult = dict[str, Any]
ToolFn = Callable[[Any], Any]
"""A tool's function: takes the validated ``args`` model instance and returns a dict or
a ``result`` model instance, or an awaitable of one (an ``async def``)."""

_TYPE_NAME = re.compile(r"^(str|int|float|bool|number|any|list\[(?P<elem>.+)\])\??$")


# ------------------------------------------------------------------- type mapping


def language_type(annotation: Any, *, where: str) -> str:
    """The language type name (``str int float bool list[T] T?``, or ``any``) of a
    pydantic field annotation. ``Optional[T]``/``T | None`` is ``T?``; a ``Literal`` or
    ``Enum`` of strings is ``str``; ``Any`` is ``any``. Raises ``TypeError`` naming
    ``where`` for a type the language cannot express (a dict, a nested model)."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) != 1:
            raise TypeError(f"{where}: a union of several types has no language type; "
                            "use one type (optionally `| None`)")
        annotation = members[0]
        origin = typing.get_origin(annotation)
    suffix = "?" if optional else ""
    if annotation is Any:
        return "any"
    if annotation in (str, int, float, bool):
        return str(annotation.__name__) + suffix
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return "str" + suffix
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "int" + suffix
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum) and issubclass(
        annotation, str
    ):
        return "str" + suffix
    if origin in (list, tuple, Sequence):
        args = typing.get_args(annotation)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"{where}: only homogeneous tuples (tuple[T, ...]) map to list[T]")
        elem = language_type(args[0], where=where) if args else "any"
        return f"list[{elem}]" + suffix
    raise TypeError(f"{where}: type {annotation!r} has no language type; use str, int, "
                    "float, bool, list[T] or T | None")


def model_signature(
    model: type[BaseModel], *, where: str, defaults_optional: bool
) -> dict[str, str]:
    """Field name → language type for a pydantic model, in declaration order.

    With ``defaults_optional`` (arguments), a field with a default may be left out and
    is typed ``T?``. An open model (``extra="allow"``) adds ``"*": "any"``."""
    result: dict[str, str] = {}
    for name, info in model.model_fields.items():
        alias = info.alias or name
        text = language_type(info.annotation, where=f"{where} field {alias!r}")
        if defaults_optional and not info.is_required() and not text.endswith("?"):
            text += "?"
        result[alias] = text
    if model.model_config.get("extra") == "allow":
        result[OPEN] = "any"
    return result


def check_type_name(text: str, *, where: str) -> None:
    """Raise ``TypeError`` naming ``where`` unless ``text`` is a language type name
    usable in a function signature (``str int float bool number any list[T]``, ``T?``)."""
    match = _TYPE_NAME.match(text)
    if match is None:
        raise TypeError(f"{where}: {text!r} is not a type; use str, int, float, bool, "
                        "number, any, list[T] or T?")
    if match.group("elem"):
        check_type_name(match.group("elem"), where=where)


# ------------------------------------------------------------------------- tools


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool agents may ``call``. ``plugin`` is filled in by ``collect`` with the name
    of the plugin that registered it."""

    name: str
    fn: ToolFn
    args: type[BaseModel]
    result: type[BaseModel]
    description: str = ""
    plugin: str = ""

    def signature(self) -> ToolSignature:
        """What the checker needs: argument and result names with language types.
        Raises ``TypeError`` for a model field the language cannot express."""
        where = f"tool {self.name!r}"
        return ToolSignature(
            name=self.name,
            args=model_signature(self.args, where=f"{where} args", defaults_optional=True),
            result=model_signature(self.result, where=f"{where} result",
                                   defaults_optional=False),
            plugin=self.plugin,
        )

    @property
    def is_async(self) -> bool:
        """True when ``fn`` is an ``async def`` (calling it gives an awaitable)."""
        # A callable object with an ``async def __call__`` counts too.
        call = type(self.fn).__call__ if not inspect.isroutine(self.fn) else None
        return inspect.iscoroutinefunction(self.fn) or inspect.iscoroutinefunction(call)

    def validate_args(self, raw: Mapping[str, Any]) -> BaseModel:
        """The call's arguments as an ``args`` model instance, or ``ToolError``."""
        from pydantic import ValidationError

        try:
            return self.args.model_validate(dict(raw))
        except ValidationError as exc:
            raise ToolError(f"tool {self.name!r}: bad arguments: {_errors(exc)}") from None

    def validate_result(self, raw: Any) -> ToolResult:
        """The tool's answer checked against the ``result`` model, as JSON-safe data
        (what the trace records), or ``ToolError``."""
        from pydantic import ValidationError

        if isinstance(raw, self.result):
            data = raw
        else:
            try:
                data = self.result.model_validate(raw)
            except ValidationError as exc:
                raise ToolError(
                    f"tool {self.name!r}: the result does not match its model "
                    f"{self.result.__name__}: {_errors(exc)}"
                ) from None
        dumped: ToolResult = data.model_dump(mode="json", by_alias=True)
        return dumped


def _errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)


# --------------------------------------------------------------------- functions


@dataclass(frozen=True, slots=True)
class Function:
    """A pure function for rule expressions. ``args`` and ``result`` are language type
    names; ``variadic`` means the last argument type repeats."""

    name: str
    fn: Callable[..., Any]
    args: tuple[str, ...]
    result: str
    variadic: bool = False
    description: str = ""
    plugin: str = ""

    def signature(self) -> FunctionSignature:
        """The checker's view of this function. Raises ``TypeError`` for a bad type name."""
        for i, text in enumerate(self.args):
            check_type_name(text, where=f"function {self.name!r} argument {i + 1}")
        check_type_name(self.result, where=f"function {self.name!r} result")
        return FunctionSignature(self.name, tuple(self.args), self.result,
                                 variadic=self.variadic, plugin=self.plugin)


# ------------------------------------------------------------- other registrations


class Pruner(Protocol):
    """A pruning rule: ``pruner(fact_type, fields, age)`` with the fact type's name, the
    fact's fields as a mapping and its age in cycles; True drops the fact from the live
    context (it stays in the trace). It may also have an
    ``applies_to(fact_type, field_names) -> bool`` attribute, asked once per fact type
    when a program is built, so it is never called for facts it cannot drop.

    A pruner that takes arguments from a ruleset (``prune Quote using ttl(cycles: 7)``)
    has a ``parameters`` attribute, name → type as in the language (``"int"``,
    ``"str?"`` for one that may be left out…), which ``converge check`` checks the
    arguments against, and a ``bind(arguments) -> Pruner`` method, called once when the
    ruleset is compiled with the arguments as a dict of constants."""

    def __call__(self, fact_type: str, fields: Mapping[str, Any], age: int) -> bool: ...


class Check(Protocol):
    """An extra lint rule for ``converge check``: diagnostics for a checked ruleset."""

    def __call__(self, checked: Any) -> Iterable[Any]: ...


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """A named resolver, pruner, executor factory, store factory or check, with the
    plugin that registered it."""

    name: str
    obj: T
    description: str = ""
    plugin: str = ""




_ENGINE_NAMES = {"Executor": "executors", "SerialExecutor": "executors",
                 "run_agent": "executors", "Activation": "effects", "AgentEffect": "effects"}


def __getattr__(name: str) -> Any:
    """What an executor plugin needs from the engine (:class:`Executor`,
    :class:`Activation`, :class:`AgentEffect`, :func:`run_agent`,
    :class:`SerialExecutor`), imported on first use: ``converge check`` never loads
    the engine."""
    module = _ENGINE_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"converge_rules.engine.{module}"), name)
