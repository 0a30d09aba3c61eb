"""The ``llm`` tool itself: its models and function, imported when a job calls the
tool (``converge check`` reads the types declared in ``converge_llm``)."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from converge_rules.errors import ToolError
from converge_rules.jsontext import NumberTextError, loads_numbers

_JSON_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float,
                                "boolean": bool}


class LlmArgs(BaseModel):
    """Arguments of ``llm``; extra arguments fill the prompt template."""

    model_config = ConfigDict(extra="allow")

    prompt: str
    model: str | None = None
    # ``schema`` would shadow a BaseModel attribute: rulesets use the alias.
    schema_dsl: str | None = Field(default=None, alias="schema")
    system: str | None = None


class LlmAnswer(BaseModel):
    """The model's answer: ``text``, plus the schema's fields for structured answers."""

    model_config = ConfigDict(extra="allow")

    text: str


def fill_prompt(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]``. Raises
    ``ToolError`` for a placeholder without a value, a value without a placeholder, or
    a placeholder that is not a plain name."""
    used: set[str] = set()
    parts: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ToolError(f"llm: bad prompt template: {exc} (write {{{{ and }}}} for literal "
                        "braces)") from None
    for literal, name, spec, conversion in parsed:
        parts.append(literal)
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ToolError(f"llm: prompt placeholder {{{name}}} must be a plain name")
        if name not in values:
            raise ToolError(f"llm: prompt placeholder {{{name}}} has no value; pass "
                            f"`{name}: …` in the call")
        value = values[name]
        parts.append(", ".join(map(str, value)) if isinstance(value, list | tuple)
                     else str(value))
        used.add(name)
    unused = sorted(set(values) - used)
    if unused:
        raise ToolError(f"llm: argument(s) {', '.join(unused)} not used by the prompt")
    return "".join(parts)


def answer_model(schema: dict[str, Any]) -> type[BaseModel]:
    """A pydantic model validating an answer against a JSON schema built by
    ``llm.schema_dsl`` (flat objects of strings, integers, numbers and booleans)."""
    fields: dict[str, Any] = {}
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        kind = _JSON_TYPES.get(prop.get("type", "string"), str)
        fields[name] = (kind, ...) if name in required else (kind | None, None)
    model: type[BaseModel] = create_model(
        "StructuredAnswer", __config__=ConfigDict(extra="ignore", strict=False), **fields
    )
    return model


def parse_schema(text: str) -> dict[str, Any]:
    """The JSON schema for an ``llm`` concise schema string, or ``ToolError``."""
    import llm  # imported when used: `converge check` loads every plugin

    try:
        schema: dict[str, Any] = llm.schema_dsl(text)
    except Exception as exc:
        raise ToolError(f"llm: bad schema {text!r}: {exc}") from None
    if "text" in schema.get("properties", {}):
        raise ToolError("llm: a schema field may not be named `text` (the raw answer)")
    return schema


def extract_json(text: str) -> Any:
    """The JSON object in a model's answer: the whole text, or the outermost ``{…}``
    (models like to wrap JSON in prose or code fences)."""
    try:
        return loads_numbers(text)
    except NumberTextError:
        raise
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end < start:
            raise
        return loads_numbers(text[start:end + 1])


async def ask(args: LlmArgs) -> dict[str, Any]:
    """Fill the prompt, ask the model, and shape the answer."""
    prompt = fill_prompt(args.prompt, args.model_extra or {})
    schema = parse_schema(args.schema_dsl) if args.schema_dsl else None
    import llm  # imported when used: `converge check` loads every plugin

    try:
        model = llm.get_model(args.model) if args.model else llm.get_model()
    except llm.UnknownModelError as exc:
        raise ToolError(f"llm: {exc.args[0] if exc.args else exc}; `llm models` lists the "
                        "installed models") from None
    system = args.system
    native = schema is not None and model.supports_schema
    if schema is not None and not native:
        instruction = ("Answer with one JSON object and nothing else, matching this JSON "
                       "schema: " + json.dumps(schema, sort_keys=True))
        system = f"{system}\n\n{instruction}" if system else instruction

    def run() -> str:
        response = model.prompt(prompt, system=system, schema=schema if native else None,
                                stream=False)
        return response.text()

    # llm's sync models block; keep the event loop free for other agents' calls.
    import asyncio

    try:
        text = await asyncio.to_thread(run)
    except llm.ModelError as exc:
        raise ToolError(f"llm: model {model.model_id} failed: {exc}") from None
    result: dict[str, Any] = {"text": text}
    if schema is not None:
        result.update(_structured(text, schema, model.model_id))
    return result


def _structured(text: str, schema: dict[str, Any], model_id: str) -> dict[str, Any]:
    try:
        data = extract_json(text)
    except NumberTextError as exc:
        raise ToolError(f"llm: model {model_id} answered a number no fact can hold: "
                        f"{exc}") from None
    except ValueError:
        raise ToolError(f"llm: model {model_id} did not answer JSON for the schema "
                        f"(answer starts {text[:60]!r})") from None
    if not isinstance(data, dict):
        raise ToolError(f"llm: model {model_id} answered a JSON {type(data).__name__}, "
                        "not an object")
    try:
        answer = answer_model(schema).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors(include_url=False))
        raise ToolError(f"llm: model {model_id}'s answer does not match the schema: "
                        f"{problems}") from None
    return answer.model_dump()
