"""Tools and functions as registered: signatures in language types, validated calls."""

from __future__ import annotations

import asyncio
import enum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from converge_rules.errors import ToolError
from converge_rules.plugins.api import OPEN, Function, Tool, language_type
from converge_rules.plugins.registries import Registries, ValidatedTool, tools_for_engine


class Colour(enum.StrEnum):
    red = "red"
    blue = "blue"


class Args(BaseModel):
    sku: str
    qty: int
    price: float
    rush: bool = False
    tags: list[str] = Field(default_factory=list)
    note: str | None = None
    colour: Colour = Colour.red
    mode: Literal["a", "b"] = "a"


class Result(BaseModel):
    total: float
    lines: list[int]
    warning: str | None


def total(args: Args) -> dict[str, Any]:
    return {"total": args.qty * args.price, "lines": [args.qty], "warning": None}


TOOL = Tool("total", total, Args, Result, "price a line")


def test_signature_maps_pydantic_types_to_language_types() -> None:
    sig = TOOL.signature()
    assert sig.name == "total"
    assert sig.args == {
        "sku": "str", "qty": "int", "price": "float", "rush": "bool?",
        "tags": "list[str]?", "note": "str?", "colour": "str?", "mode": "str?",
    }
    assert sig.result == {"total": "float", "lines": "list[int]", "warning": "str?"}


def test_open_models_carry_the_open_marker() -> None:
    class OpenArgs(BaseModel):
        model_config = ConfigDict(extra="allow")
        prompt: str

    sig = Tool("t", total, OpenArgs, OpenArgs).signature()
    assert sig.args == {"prompt": "str", OPEN: "any"}
    assert sig.result == {"prompt": "str", OPEN: "any"}


@pytest.mark.parametrize("annotation", [dict[str, str], int | str, tuple[int, str]])
def test_types_the_language_cannot_express_are_refused(annotation: Any) -> None:
    with pytest.raises(TypeError, match="field 'x'"):
        language_type(annotation, where="field 'x'")


def test_call_validates_arguments_and_result() -> None:
    call = ValidatedTool(TOOL)
    assert call({"sku": "A", "qty": 2, "price": 1.5}) == {
        "total": 3.0, "lines": [2], "warning": None}
    with pytest.raises(ToolError, match=r"tool 'total': bad arguments: qty"):
        call({"sku": "A", "qty": "many", "price": 1.5})
    with pytest.raises(ToolError, match="price: Field required"):
        call({"sku": "A", "qty": 1})


def test_a_result_that_breaks_its_model_is_a_tool_error() -> None:
    bad = Tool("bad", lambda args: {"total": "lots", "lines": []}, Args, Result)
    with pytest.raises(ToolError, match=r"does not match its model Result: total.*warning"):
        ValidatedTool(bad)({"sku": "A", "qty": 1, "price": 1.0})


def test_an_exception_inside_a_tool_is_a_tool_error_naming_it() -> None:
    def explode(args: Args) -> dict[str, Any]:
        raise ConnectionError("refused")

    with pytest.raises(ToolError, match="tool 'boom' failed: ConnectionError: refused"):
        ValidatedTool(Tool("boom", explode, Args, Result))({"sku": "A", "qty": 1, "price": 1})


def test_async_tools_give_awaitables_that_validate() -> None:
    async def later(args: Args) -> Result:
        await asyncio.sleep(0)
        return Result(total=args.price, lines=[], warning="late")

    call = ValidatedTool(Tool("later", later, Args, Result))
    assert call.is_async
    pending = call({"sku": "A", "qty": 1, "price": 4.0})
    assert asyncio.iscoroutine(pending)
    assert asyncio.run(pending) == {"total": 4.0, "lines": [], "warning": "late"}


def test_tools_for_engine_gives_only_the_allowed_tools() -> None:
    other = Tool("other", total, Args, Result)
    registries = Registries(tools={"other": other, "total": TOOL})
    tools = tools_for_engine(registries, allowed=["total"])
    assert list(tools) == ["total"]
    assert tools["total"]({"sku": "A", "qty": 1, "price": 2.0})["total"] == 2.0  # type: ignore[index]
    assert list(tools_for_engine(registries)) == ["other", "total"]


def test_tools_for_engine_names_a_tool_no_plugin_provides() -> None:
    with pytest.raises(ToolError, match=r"no installed plugin provides tool.*fx_rate"):
        tools_for_engine(Registries(tools={"total": TOOL}), allowed=["fx_rate", "total"])


def test_function_signature_checks_type_names() -> None:
    slug = Function("slug", str.lower, ("str",), "str")
    assert slug.signature().args == ("str",)
    with pytest.raises(TypeError, match="function 'bad' argument 1"):
        Function("bad", str.lower, ("string",), "str").signature()
    with pytest.raises(TypeError, match="result"):
        Function("bad", str.lower, ("str",), "list[dict]").signature()


def test_open_tools_keep_their_declared_types_and_mark_the_rest_open() -> None:
    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        url: str

    registries = Registries(tools={"open": Tool("open", total, Open, Open), "total": TOOL})
    signatures = registries.tool_signatures()
    assert signatures["total"] == TOOL.signature()
    typed = signatures["open"]
    assert typed is not None and typed.args == {"url": "str", OPEN: "any"}


def test_a_validated_tool_pickles_for_process_executors() -> None:
    import pickle

    again = pickle.loads(pickle.dumps(ValidatedTool(TOOL)))
    assert again({"sku": "A", "qty": 3, "price": 1.0})["total"] == 3.0  # type: ignore[index]


def test_time_types_map_to_the_language_s() -> None:
    import datetime

    assert language_type(datetime.date, where="x") == "date"
    assert language_type(datetime.datetime, where="x") == "datetime"
    assert language_type(datetime.timedelta | None, where="x") == "duration?"
    assert language_type(list[datetime.date], where="x") == "list[date]"
