"""The ``http_json`` tool: call a JSON HTTP API from an agent.

```
uses tool http_json

agent enrich {
  when Ticket(id, customer)
  call http_json(url: "https://crm.example/customers/{customer}", customer: customer,
                 headers: ["Authorization: Bearer ${CRM_TOKEN}"]) as crm
  emit Customer(id: customer, tier: crm.tier)
}
```

* ``url`` is a template: each ``{name}`` is filled, URL-quoted, from the argument of
  that name (so every extra argument must be used by the template).
* ``headers`` are ``"Name: value"`` lines; ``${VAR}`` in a value is replaced by the
  environment variable ``VAR`` (secrets stay out of rulesets and traces' arguments).
* ``json`` is a request body (a record, list or scalar), ``timeout`` is in seconds.
* Connection errors, timeouts and 5xx answers are retried ``retries`` times, waiting
  ``backoff × 2^attempt`` seconds between tries.
* The answer must be a JSON object; its fields are the result (``crm.tier``). Any other
  status, a body that is not JSON or not an object is a ``ToolError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from converge_rules.plugins.api import OPEN, Tool, hookimpl

__version__ = "0.1.0"

# The function and models are named, not imported: pydantic and httpx load when a job
# calls the tool, not on every `converge check` (tests/cli/test_startup.py). The types
# are what converge_http.tool's models say; a job compares them when it loads them.
TOOL = Tool(
    name="http_json",
    fn="converge_http.tool:http_json",
    args="converge_http.tool:HttpJsonArgs",
    result="converge_http.tool:HttpJsonResult",
    description="Call a JSON HTTP API; the answer object's fields are the result.",
    arg_types={"url": "str", "method": "str?", "headers": "list[str]?", "json": "any?",
               "timeout": "float?", "retries": "int?", "backoff": "float?", OPEN: "any"},
    result_types={OPEN: "any"},
)

_MOVED = ("HttpJsonArgs", "HttpJsonResult", "fill_url", "http_json", "parse_headers")


def __getattr__(name: str) -> Any:
    """The tool's models and helpers, from :mod:`converge_http.tool` on first use (they
    were defined here before; importing them from here still works)."""
    if name in _MOVED:
        from converge_http import tool

        return getattr(tool, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def converge_register_tools(register: Callable[[Tool], None]) -> None:
    register(TOOL)
