"""The authoring API: everything a plugin author imports, in one place.

    from converge_rules.plugins.api import Function, Tool, hookimpl

* :data:`hookimpl` marks a plugin's hook functions (the hooks are documented in
  :mod:`converge_rules.plugins.hookspecs` and docs/plugins.md).
* :class:`Tool` — something agents ``call``: a sync or async function with pydantic
  ``args`` and ``result`` models. ``Tool.signature()`` gives the checker the argument
  and result types as language types, so ``converge check`` type-checks calls offline.
  The function and models may be given as ``"package.module:name"`` references with
  the types declared beside them, so ``converge check`` imports neither pydantic nor
  the tool's client libraries (they load when a job uses the tool).
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
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from converge_rules.blobs import Blob
from converge_rules.datetypes import date, datetime, timedelta
from converge_rules.errors import PluginError, ToolError
from converge_rules.language.checks.checked import FunctionSignature, ToolSignature
from converge_rules.language.syntax.span import Span
from converge_rules.program import Contender, FieldSpec, Resolver, TypeSpec
from converge_rules.records import record

if TYPE_CHECKING:
    # pydantic and the engine are imported when used, not with this module: every
    # `converge check` loads the plugin layer (see tests/cli/test_startup.py).
    from pydantic import BaseModel, ValidationError

    from converge_rules.engine.effects import Activation, Activations, AgentEffect, RunOutputs
    from converge_rules.engine.executors import Executor, SerialExecutor, run_agent
    from converge_rules.language.diagnostics import Diagnostic, Severity
    from converge_rules.plugins.hookspecs import hookimpl
    from converge_rules.store.base import TraceSink

__all__ = [
    "OPEN",
    "Activation",
    "Activations",
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
    "RunOutputs",
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

_TYPE_NAME = re.compile(
    r"^(str|int|float|bool|date|datetime|duration|blob|number|any|list\[(?P<elem>.+)\])\??$")


# ------------------------------------------------------------------- type mapping


_TIME_TYPES: dict[Any, str] = {
    datetime: "datetime", date: "date", timedelta: "duration",
}


def language_type(annotation: Any, *, where: str) -> str:
    """The language type name (``str int float bool date datetime duration list[T]
    T?``, or ``any``) of a pydantic field annotation (``datetime.date``,
    ``datetime.datetime`` and ``datetime.timedelta`` are the time types).
    ``Optional[T]``/``T | None`` is ``T?``; a ``Literal`` or ``Enum`` of strings is
    ``str``; ``Any`` is ``any``. Raises ``TypeError`` naming ``where`` for a type the
    language cannot express (a dict, a nested model)."""
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
    if isinstance(annotation, type) and issubclass(annotation, Blob):
        return "blob" + suffix
    if annotation in (str, int, float, bool):
        return str(annotation.__name__) + suffix
    if annotation in _TIME_TYPES:  # a tool gets and gives them as ISO 8601 text
        return _TIME_TYPES[annotation] + suffix
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
                    "float, bool, date, datetime, timedelta, list[T] or T | None")


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
    usable in a function signature (``str int float bool date datetime duration number
    any list[T]``, ``T?``)."""
    match = _TYPE_NAME.match(text)
    if match is None:
        raise TypeError(f"{where}: {text!r} is not a type; use str, int, float, bool, "
                        "date, datetime, duration, blob, number, any, list[T] or T?")
    if match.group("elem"):
        check_type_name(match.group("elem"), where=where)


# ------------------------------------------------------------------------- tools


@record
class Tool:
    """A tool agents may ``call``. ``plugin`` is filled in by ``collect`` with the name
    of the plugin that registered it.

    ``fn``, ``args`` and ``result`` are the function and the pydantic model classes, or
    references to them as ``"package.module:name"`` text, imported the first time a job
    needs them. With references *and* the declared ``arg_types`` and ``result_types``
    (field name → language type, as ``signature()`` would derive them), ``converge
    check`` type-checks calls without importing the tool's module, pydantic or the
    client libraries the tool uses; the declarations are compared with the models when
    they load (:attr:`args_model`), and a difference is a ``PluginError``."""

    name: str
    fn: ToolFn | str
    args: type[BaseModel] | str
    result: type[BaseModel] | str
    description: str = ""
    plugin: str = ""
    # Keyword-only: positionally they would follow ``plugin``, and a declaration passed
    # after ``description`` went into ``plugin`` (lost) and the wrong side's types.
    arg_types: Mapping[str, str] | None = field(default=None, hash=False, kw_only=True)
    result_types: Mapping[str, str] | None = field(default=None, hash=False, kw_only=True)
    # What the references resolved to (fn, args, result), filled on first use. Per
    # instance: two registries holding the same Tool share nothing else.
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False,
                                    compare=False, hash=False)

    def signature(self) -> ToolSignature:
        """What the checker needs: argument and result names with language types.
        Uses ``arg_types``/``result_types`` when declared (a model given as a class is
        checked against them), else derives them from the models, importing a model
        given as a reference. Raises ``TypeError`` for a type the language cannot
        express, a bad declaration, a declaration the model contradicts, or a
        reference that is not ``"package.module:name"`` text."""
        where = f"tool {self.name!r}"
        for part, ref in (("fn", self.fn), ("args", self.args), ("result", self.result)):
            if isinstance(ref, str) and not _REFERENCE.match(ref):
                raise TypeError(f"{where} {part}: {ref!r} is not a reference; write "
                                "'package.module:name'")
        args = self._side_types("args", where=f"{where} args", defaults_optional=True)
        result = self._side_types("result", where=f"{where} result",
                                  defaults_optional=False)
        return ToolSignature(name=self.name, args=args, result=result, plugin=self.plugin)

    def _side_types(self, side: str, *, where: str, defaults_optional: bool) -> dict[str, str]:
        declared = self.arg_types if side == "args" else self.result_types
        ref = self.args if side == "args" else self.result
        if declared is None:
            model = self._model(side)
            return model_signature(model, where=where, defaults_optional=defaults_optional)
        types_ = _checked_declaration(declared, where=where)
        if not isinstance(ref, str):  # the class is here anyway: hold it to its word
            if not _is_model_class(ref):
                raise TypeError(f"{where}: {ref!r} is not a pydantic model class")
            _compare(types_, model_signature(ref, where=where,
                                             defaults_optional=defaults_optional),
                     where=where, model=ref)
        return types_

    @property
    def args_model(self) -> type[BaseModel]:
        """The ``args`` model class, imported on first use when ``args`` is a
        reference. Raises ``PluginError`` when it cannot be imported, is not a pydantic
        model, or contradicts the declared ``arg_types``/``result_types``."""
        return self._model("args")

    @property
    def result_model(self) -> type[BaseModel]:
        """The ``result`` model class; see :attr:`args_model`."""
        return self._model("result")

    @property
    def function(self) -> ToolFn:
        """``fn`` itself, imported on first use when it is a reference. Raises
        ``PluginError`` when it cannot be imported or is not callable."""
        loaded = self._loaded.get("fn")
        if loaded is None:
            loaded = _resolve(self.fn, plugin=self.plugin, where=f"tool {self.name!r} fn")
            if not callable(loaded):
                raise PluginError(self.plugin, f"tool {self.name!r}: fn {self.fn!r} is "
                                               f"{type(loaded).__name__}, not callable")
            self._loaded["fn"] = loaded
        return loaded  # type: ignore[no-any-return]

    def load(self) -> None:
        """Import whatever is given as a reference (the function and both models) and
        compare the models with the declared types now, rather than at the first call:
        a job does this when it starts, so the first call does not pay for the
        imports (within its agent's timeout) and a bad plugin fails before any agent
        runs. Raises ``PluginError``."""
        self.function  # noqa: B018 (the import is the point)
        self._model("args")
        self._model("result")

    def _model(self, side: str) -> type[BaseModel]:
        loaded = self._loaded.get(side)
        if loaded is not None:
            return loaded  # type: ignore[no-any-return]
        ref = self.args if side == "args" else self.result
        where = f"tool {self.name!r} {side}"
        model: type[BaseModel] = _resolve(ref, plugin=self.plugin, where=where)
        if not _is_model_class(model):
            raise PluginError(self.plugin, f"{where}: {ref!r} is not a pydantic model "
                                           "class")
        declared = self.arg_types if side == "args" else self.result_types
        if declared is not None:
            try:
                _compare(_checked_declaration(declared, where=where),
                         model_signature(model, where=where,
                                         defaults_optional=side == "args"),
                         where=where, model=model)
            except TypeError as exc:
                raise PluginError(self.plugin, str(exc)) from None
        self._loaded[side] = model
        return model

    @property
    def is_async(self) -> bool:
        """True when ``fn`` is an ``async def`` (calling it gives an awaitable)."""
        import inspect  # (~5 ms: a run without tools has no use for it)

        fn = self.function
        # A callable object with an ``async def __call__`` counts too.
        call = type(fn).__call__ if not inspect.isroutine(fn) else None
        return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)

    def validate_args(self, raw: Mapping[str, Any]) -> BaseModel:
        """The call's arguments as an ``args`` model instance, or ``ToolError``."""
        from pydantic import ValidationError

        try:
            return self.args_model.model_validate(dict(raw))
        except ValidationError as exc:
            raise ToolError(f"tool {self.name!r}: bad arguments: {_errors(exc)}") from None

    def validate_result(self, raw: Any) -> ToolResult:
        """The tool's answer checked against the ``result`` model, as JSON-safe data
        (what the trace records), or ``ToolError``."""
        from pydantic import ValidationError

        model = self.result_model
        if isinstance(raw, model):
            data = raw
        else:
            try:
                data = model.model_validate(raw)
            except ValidationError as exc:
                raise ToolError(
                    f"tool {self.name!r}: the result does not match its model "
                    f"{model.__name__}: {_errors(exc)}"
                ) from None
        dumped: ToolResult = data.model_dump(mode="json", by_alias=True)
        for name, info in type(data).model_fields.items():
            value = getattr(data, name)
            if isinstance(value, Blob):  # the agent gets its text, the trace its handle
                dumped[info.alias or name] = value
        return dumped


# \Z, not $: "$" also matches before a trailing newline, which no import can name.
_REFERENCE = re.compile(r"^\w+(\.\w+)*:\w+(\.\w+)*\Z")


def _is_model_class(obj: Any) -> bool:
    """Whether ``obj`` looks like a pydantic model class (without importing pydantic)."""
    return isinstance(obj, type) and isinstance(getattr(obj, "model_fields", None), dict)


def _resolve(ref: Any, *, plugin: str, where: str) -> Any:
    """``ref`` itself, or the object a ``"package.module:name"`` reference names."""
    if not isinstance(ref, str):
        return ref
    if not _REFERENCE.match(ref):
        raise PluginError(plugin, f"{where}: {ref!r} is not a reference; write "
                                  "'package.module:name'")
    import importlib

    module_name, _, attribute = ref.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (Exception, SystemExit) as exc:  # plugin code can raise anything, exit too
        raise PluginError(plugin, f"{where}: cannot import {ref!r}: "
                                  f"{type(exc).__name__}: {exc}") from None
    return found


def _checked_declaration(declared: Mapping[str, str], *, where: str) -> dict[str, str]:
    """The declared name → type mapping as a dict, or ``TypeError`` naming ``where``
    for a name that is not an identifier (or ``*``) or a type that is not a language
    type."""
    if not isinstance(declared, Mapping):
        raise TypeError(f"{where}: declared types must be a mapping of field name to "
                        f"type name, not {type(declared).__name__}")
    result: dict[str, str] = {}
    for name, text in declared.items():
        if not isinstance(name, str) or not (name.isidentifier() or name == OPEN):
            raise TypeError(f"{where}: declared field name {name!r} is not an identifier")
        if not isinstance(text, str):
            raise TypeError(f"{where}: declared type of {name!r} must be text such as "
                            f"'str' or 'int?', not {type(text).__name__}")
        check_type_name(text, where=f"{where} field {name!r}")
        result[name] = text
    return result


def _compare(declared: dict[str, str], derived: dict[str, str], *, where: str,
             model: type[BaseModel]) -> None:
    """``TypeError`` listing how ``declared`` differs from what ``model`` says."""
    if declared == derived:
        return
    problems = [f"{name!r} is declared {declared[name]!r} but the model says "
                f"{derived[name]!r}"
                for name in declared if name in derived and declared[name] != derived[name]]
    problems += [f"{name!r} is declared but not in the model"
                 for name in declared if name not in derived]
    problems += [f"{name!r} ({derived[name]}) is in the model but not declared"
                 for name in derived if name not in declared]
    raise TypeError(f"{where}: the declared types do not match model "
                    f"{model.__name__}: {'; '.join(problems)}")


def _errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)


# --------------------------------------------------------------------- functions


@record
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


@record
class Entry(Generic[T]):
    """A named resolver, pruner, executor factory, store factory or check, with the
    plugin that registered it."""

    name: str
    obj: T
    description: str = ""
    plugin: str = ""




_LAZY_NAMES = {"Executor": "engine.executors", "SerialExecutor": "engine.executors",
               "run_agent": "engine.executors", "Activation": "engine.effects",
               "AgentEffect": "engine.effects", "Activations": "engine.effects",
               "RunOutputs": "engine.effects", "Diagnostic": "language.diagnostics",
               "Severity": "language.diagnostics", "TraceSink": "store.base",
               "hookimpl": "plugins.hookspecs"}


def __getattr__(name: str) -> Any:
    """What an executor plugin needs from the engine (:class:`Executor`,
    :class:`Activation` and a cycle's :class:`Activations`, :class:`AgentEffect`
    and the serial executor's :class:`RunOutputs`, :func:`run_agent`,
    :class:`SerialExecutor`), a check's :class:`Diagnostic` and :class:`Severity`,
    and a store's :class:`TraceSink`, imported on first use: ``converge check`` never
    loads the engine, and loading a ruleset (the plugin manager imports this module)
    neither the diagnostics nor the stores; and :data:`hookimpl`, so that the built-ins
    alone (``plugins=False``, which import this module) never import pluggy."""
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"converge_rules.{module}"), name)
