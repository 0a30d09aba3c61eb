"""The ``llm`` tool: ask a language model from an agent, through the ``llm`` library
(any model an ``llm`` plugin provides: OpenAI, Anthropic, local models, ``echo``…).

```
uses tool llm

agent classify {
  when Ticket(id, subject, body)
  call llm(prompt: "Classify this support ticket.\nSubject: {subject}\n{body}",
           subject: subject, body: body, model: "gpt-4o-mini",
           schema: "category, urgency int") as answer
  emit Classification(ticket: id, category: answer.category, source: "llm")
}
```

* ``prompt`` is a template: each ``{name}`` is filled from the argument ``name``
  (``{{`` and ``}}`` for literal braces); every extra argument must be used.
* ``model`` is an ``llm`` model id or alias (default: ``llm``'s default model).
* ``schema`` asks for a structured answer, in ``llm``'s concise schema syntax
  (``"category, urgency int, reason"``; types ``str int float bool``). Models that
  support schemas get the JSON schema; others are told in the system prompt to answer
  with one JSON object. The answer's fields become result fields beside ``text``, and
  are validated: a missing field or a wrong type is a ``ToolError``.
* ``system`` is an optional system prompt.

The result always has ``text`` (the raw answer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from converge_rules.plugins.api import OPEN, Tool, hookimpl

__version__ = "0.1.0"

# The function and models are named, not imported: pydantic and llm load when a job
# calls the tool, not on every `converge check` (tests/cli/test_startup.py). The types
# are what converge_llm.tool's models say; a job compares them when it loads them.
TOOL = Tool(
    name="llm",
    fn="converge_llm.tool:ask",
    args="converge_llm.tool:LlmArgs",
    result="converge_llm.tool:LlmAnswer",
    description="Ask a language model (any `llm` model); optional schema for structured "
                "answers.",
    arg_types={"prompt": "str", "model": "str?", "schema": "str?", "system": "str?",
               OPEN: "any"},
    result_types={"text": "str", OPEN: "any"},
)

_MOVED = ("LlmArgs", "LlmAnswer", "answer_model", "ask", "extract_json", "fill_prompt",
          "parse_schema")


def __getattr__(name: str) -> Any:
    """The tool's models and helpers, from :mod:`converge_llm.tool` on first use (they
    were defined here before; importing them from here still works)."""
    if name in _MOVED:
        from converge_llm import tool

        return getattr(tool, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def converge_register_tools(register: Callable[[Tool], None]) -> None:
    register(TOOL)
