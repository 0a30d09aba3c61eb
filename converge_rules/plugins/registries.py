"""What plugins register, and the registries :func:`converge_rules.plugins.collect` builds.

* :class:`Tool` — something agents ``call``: a sync or async function with pydantic
  ``args`` and ``result`` models. ``Tool.signature()`` gives the checker the argument
  and result types as language types, so ``converge check`` type-checks calls offline;
  :func:`tools_for_engine` gives the engine callables that validate every call.
* :class:`Function` — a pure function usable in expressions, with language types.
* :class:`Entry` — a named resolver, pruner, executor factory, store factory or check.

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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from converge_rules.errors import ToolError
from converge_rules.language.checks.checked import FunctionSignature, ToolSignature

if TYPE_CHECKING:
    from converge_rules.program import Program

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
        try:
            return self.args.model_validate(dict(raw))
        except ValidationError as exc:
            raise ToolError(f"tool {self.name!r}: bad arguments: {_errors(exc)}") from None

    def validate_result(self, raw: Any) -> ToolResult:
        """The tool's answer checked against the ``result`` model, as JSON-safe data
        (what the trace records), or ``ToolError``."""
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


@dataclass(frozen=True, slots=True)
class ValidatedTool:
    """A tool as the engine calls it: ``call(args_dict)`` → result dict, or an
    awaitable of it for an async tool. Arguments and results are validated; any failure
    (including an exception inside the tool) is a ``ToolError`` naming the tool.
    Picklable when the tool's function and models are (module-level)."""

    tool: Tool

    @property
    def is_async(self) -> bool:
        return self.tool.is_async

    def __call__(self, args: Mapping[str, Any]) -> ToolResult | Awaitable[ToolResult]:
        model = self.tool.validate_args(args)
        if self.tool.is_async:
            return self._call_async(model)
        try:
            raw = self.tool.fn(model)
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(f"tool {self.tool.name!r} failed: {_describe(exc)}") from exc
        return self.tool.validate_result(raw)

    async def _call_async(self, model: BaseModel) -> ToolResult:
        try:
            raw = await self.tool.fn(model)
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(f"tool {self.tool.name!r} failed: {_describe(exc)}") from exc
        return self.tool.validate_result(raw)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
    """A pruning rule: True drops the fact from the live context. It may also have an
    ``applies_to(fact_type, field_names) -> bool`` attribute, asked once per fact type
    when a program is built, so it is never called for facts it cannot drop."""

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


@dataclass(frozen=True, slots=True)
class Registries:
    """Everything the installed plugins registered, each mapping sorted by name."""

    tools: Mapping[str, Tool] = field(default_factory=dict)
    functions: Mapping[str, Function] = field(default_factory=dict)
    resolvers: Mapping[str, Entry[Any]] = field(default_factory=dict)
    pruners: Mapping[str, Entry[Pruner]] = field(default_factory=dict)
    executors: Mapping[str, Entry[Any]] = field(default_factory=dict)
    stores: Mapping[str, Entry[Any]] = field(default_factory=dict)
    checks: Mapping[str, Entry[Check]] = field(default_factory=dict)
    #: the observer hooks of the plugin manager these came from (``plugins.Observers``),
    #: so a run notifies them without building and scanning a second manager
    observers: Any = field(default=None, compare=False, repr=False)

    def tool_signatures(self) -> dict[str, ToolSignature | None]:
        """Tool name → signature, for ``check(..., tools=...)``. An open tool's
        signature carries the :data:`OPEN` entry, which the checker reads as "any
        other argument or result field": the declared ones are still type-checked."""
        return {name: tool.signature() for name, tool in self.tools.items()}

    def checker_kwargs(self) -> dict[str, Any]:
        """What the plugins provide, as ``check``/``check_file`` keyword arguments: tool
        and function signatures and resolver names."""
        return {
            "tools": self.tool_signatures(),
            "functions": self.function_signatures(),
            "resolvers": sorted(self.resolvers),
        }

    def function_signatures(self) -> dict[str, FunctionSignature]:
        """Function name → signature, for ``check(..., functions=...)``."""
        return {name: function.signature() for name, function in self.functions.items()}

    def function_callables(self) -> dict[str, Callable[..., Any]]:
        """Function name → Python callable, for the compiled rules."""
        return {name: function.fn for name, function in self.functions.items()}

    function_impls = function_callables

    def tools_for_engine(self, allowed: Iterable[str] | None = None) -> dict[str, ValidatedTool]:
        """Like :func:`tools_for_engine`, leaving out allowed tools no plugin provides
        (a call to one of those fails at run time; tests mock them)."""
        present = None if allowed is None else [n for n in allowed if n in self.tools]
        return tools_for_engine(self, present)

    def objects(self, kind: str) -> dict[str, Any]:
        """Name → registered object for ``resolvers``, ``pruners``, ``executors``,
        ``stores`` or ``checks``."""
        entries: Mapping[str, Entry[Any]] = getattr(self, kind)
        return {name: entry.obj for name, entry in entries.items()}


def tools_for_engine(
    registries: Registries, allowed: Iterable[str] | None = None
) -> dict[str, ValidatedTool]:
    """The engine's ``tools`` mapping: tool name → validated callable, for the tools
    in ``allowed`` (a ruleset's ``uses tool`` names; all registered tools when None).

    Memoising identical calls is the engine's job, not this mapping's. Raises
    ``ToolError`` naming every allowed tool no installed plugin provides."""
    names = sorted(registries.tools) if allowed is None else sorted(set(allowed))
    missing = [n for n in names if n not in registries.tools]
    if missing:
        known = ", ".join(sorted(registries.tools)) or "none"
        raise ToolError(
            f"no installed plugin provides tool(s) {', '.join(missing)} (installed: {known}); "
            "install the plugin that provides it (see `converge plugins`), or mock it in "
            "a test with `mock tool NAME(...) returns {...}`"
        )
    return {name: ValidatedTool(registries.tools[name]) for name in names}


def program_with_pruners(program: Program, pruners: Mapping[str, Pruner]) -> Program:
    """``program`` with each pruner added as a ``prune`` rule on every fact type it
    applies to (intent types excluded), after the ruleset's own rules, in name order.
    The engine then applies them after each merge like ``prune`` lines."""
    from dataclasses import replace

    from converge_rules.program import PruneSpec

    added: list[PruneSpec] = []
    for name, pruner in sorted(pruners.items()):
        applies = getattr(pruner, "applies_to", None)
        for spec in program.types:
            if spec.intent or (applies is not None and not applies(spec.name, spec.field_names)):
                continue
            added.append(PruneSpec(
                type_id=spec.id,
                fn=_PrunerRule(pruner, spec.name, spec.field_names),
                source=f"# plugin pruner {name!r}",
                text=f"using pruner {name}",
                span=spec.span,
            ))
    return replace(program, prunes=(*program.prunes, *added)) if added else program


@dataclass(frozen=True, slots=True)
class _PrunerRule:
    """A pruner as the engine calls a ``prune`` rule: ``(values, age) -> drop?``."""

    pruner: Pruner
    fact_type: str
    field_names: tuple[str, ...]

    def __call__(self, values: tuple[Any, ...], age: int) -> bool:
        return bool(self.pruner(self.fact_type, dict(zip(self.field_names, values, strict=True)),
                                age))
