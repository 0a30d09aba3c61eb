"""The ``http_json`` tool itself: its models and function, imported when a job calls
the tool (``converge check`` reads the types declared in ``converge_http``)."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from converge_rules.errors import ToolError
from converge_rules.jsontext import NumberTextError, loads_numbers

if TYPE_CHECKING:
    # httpx is imported when a call is made: `converge check` loads every plugin and
    # should not pay for an HTTP client it never uses.
    import httpx


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class HttpJsonArgs(BaseModel):
    """Arguments of ``http_json``; extra arguments fill the URL template."""

    model_config = ConfigDict(extra="allow")

    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: list[str] = Field(default_factory=list)
    json_body: Any = Field(default=None, alias="json")
    timeout: float = Field(default=10.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    backoff: float = Field(default=0.5, ge=0)


class HttpJsonResult(BaseModel):
    """The JSON object the API answered; its fields are whatever the API sends."""

    model_config = ConfigDict(extra="allow")


def fill_url(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with each ``{name}`` replaced by the URL-quoted ``values[name]``.
    Raises ``ToolError`` for a placeholder without a value, a value without a
    placeholder, or a placeholder that is not a plain name."""
    used: set[str] = set()
    parts: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ToolError(f"http_json: bad url template {template!r}: {exc}") from None
    for literal, name, spec, conversion in parsed:
        parts.append(literal)
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ToolError(f"http_json: url placeholder {{{name}}} must be a plain name")
        if name not in values:
            raise ToolError(f"http_json: url placeholder {{{name}}} has no value; pass "
                            f"`{name}: …` in the call")
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ToolError(f"http_json: url value {name!r} must be a string or number")
        parts.append(quote(str(value), safe=""))
        used.add(name)
    unused = sorted(set(values) - used)
    if unused:
        raise ToolError(f"http_json: argument(s) {', '.join(unused)} not used by the url "
                        f"template {template!r}")
    return "".join(parts)


def parse_headers(lines: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """``"Name: value"`` lines as a dict, with ``${VAR}`` taken from ``environ``."""
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ToolError(f"http_json: header {line!r} must look like 'Name: value'")

        def env(match: re.Match[str], header: str = name.strip()) -> str:
            var = match.group(1)
            if var not in environ:
                raise ToolError(f"http_json: environment variable {var} (header {header}) "
                                "is not set")
            return environ[var]

        headers[name.strip()] = _ENV_REF.sub(env, value.strip())
    return headers


async def http_json(args: HttpJsonArgs) -> dict[str, Any]:
    """Send the request, retrying connection errors, timeouts and 5xx answers."""
    url = fill_url(args.url, args.model_extra or {})
    headers = parse_headers(args.headers, os.environ)
    kwargs: dict[str, Any] = {"headers": headers}
    if args.json_body is not None:
        kwargs["json"] = args.json_body
    failure = ""
    import asyncio

    import httpx

    async with httpx.AsyncClient(timeout=args.timeout) as client:
        for attempt in range(args.retries + 1):
            if attempt:
                await asyncio.sleep(args.backoff * 2 ** (attempt - 1))
            try:
                response = await client.request(args.method, url, **kwargs)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if response.status_code >= 500:
                failure = f"HTTP {response.status_code}"
                continue
            return _answer(args.method, url, response)
    tries = args.retries + 1
    raise ToolError(f"http_json: {args.method} {url} failed after {tries} "
                    f"attempt{'s' if tries > 1 else ''}: {failure}")


def _answer(method: str, url: str, response: httpx.Response) -> dict[str, Any]:
    if not response.is_success:
        raise ToolError(f"http_json: {method} {url} answered HTTP {response.status_code}")
    try:
        data = loads_numbers(response.content)
    except NumberTextError as exc:
        raise ToolError(f"http_json: {method} {url} answered a number no fact can hold: "
                        f"{exc}") from None
    except ValueError:
        raise ToolError(f"http_json: {method} {url} did not answer JSON "
                        f"(starts {response.text[:40]!r})") from None
    if not isinstance(data, dict):
        raise ToolError(f"http_json: {method} {url} answered a JSON {type(data).__name__}, "
                        "not an object")
    return data
