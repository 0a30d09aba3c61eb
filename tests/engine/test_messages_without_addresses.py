"""Messages in traces never hold memory addresses: two runs of the same job write the
same bytes even when a tool, a function or a resolver puts an object's repr
(``<generator object g at 0x7f…>``) into an error."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import Contender, run
from converge_rules.language.checks.checked import FunctionSignature
from converge_rules.language.checks.checker import check_file
from converge_rules.program import TypeSpec

TOOL = """\
ruleset t "t"
uses tool fx
fact Q { c: str }
fact R { c: str, usd: float }
agent f {
  when Q(c)
  call fx(currency: c) as r
  emit R(c: c, usd: r.usd)
}
"""


def numbers() -> Iterator[int]:
    yield 1


# Every object made is kept, so no two runs can reuse one address by chance.
KEPT: list[Any] = []


def kept(value: Any) -> Any:
    KEPT.append(value)
    return value


def returns_a_generator(args: dict[str, Any]) -> Any:
    return kept(numbers())


def answers_with_a_generator_key(args: dict[str, Any]) -> Any:
    return {"usd": 1.0, kept(numbers()): 2}


def raises_with_a_repr(args: dict[str, Any]) -> Any:
    raise ValueError(f"cannot use {kept(numbers())!r} or {kept(object())}")


@pytest.mark.parametrize("tool", [returns_a_generator, answers_with_a_generator_key,
                                  raises_with_a_repr])
def test_two_runs_with_a_tool_failing_on_an_object_write_the_same_trace(
    tool: Callable[[dict[str, Any]], Any],
) -> None:
    ruleset = converge_rules.loads(TOOL, plugins=False)
    traces = [converge_rules.run(ruleset, [("Q", {"c": "EUR"})],
                                 tools={"fx": tool}).trace.to_jsonl() for _ in range(2)]
    assert traces[0] == traces[1]
    assert '"event":"effect_discarded"' in traces[0]
    assert " at 0x" not in traces[0]


def test_an_agent_failing_on_an_object_from_a_function_writes_the_same_trace(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.cvg"
    path.write_text('ruleset f "f"\nfact Q { c: str }\nfact R { c: str }\n'
                    "agent a {\n  when Q(c)\n  emit R(c: make(c))\n}\n")
    checked = check_file(path, functions={"make": FunctionSignature("make", ("str",), "any")})
    traces = []
    for _ in range(2):
        program = compile_ruleset(checked, functions={"make": lambda c: kept(numbers())})
        traces.append(run(program, [("Q", {"c": "x"})]).trace.to_jsonl())
    assert traces[0] == traces[1]
    assert "R.c is str, but its expression gave generator <generator object numbers>" \
        in traces[0]


def test_a_resolver_failing_on_an_object_writes_the_same_trace(tmp_path: Path) -> None:
    def resolver(type_spec: TypeSpec, contenders: Sequence[Contender]) -> list[int]:
        raise LookupError(kept(object()))

    path = tmp_path / "r.cvg"
    path.write_text('ruleset r "r"\nfact P { key k: str, v: int }\n'
                    "policy P { resolve by using odd }\n")
    checked = check_file(path, resolvers=["odd"])
    program = compile_ruleset(checked, resolvers={"odd": resolver})
    traces = [run(program, [("P", {"k": "a", "v": 1}), ("P", {"k": "a", "v": 2})]
                  ).trace.to_jsonl() for _ in range(2)]
    assert traces[0] == traces[1]
    assert "resolver 'odd' raised LookupError: <object object>" in traces[0]
