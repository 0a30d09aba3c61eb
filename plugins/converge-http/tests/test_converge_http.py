"""``http_json`` against a real HTTP server on 127.0.0.1, called the way the engine calls
tools: through the registries built from the installed plugins."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from converge_rules.errors import ToolError
from converge_rules.plugins import collect, get_plugin_manager
from converge_rules.plugins.registries import ValidatedTool, tools_for_engine


class Server:
    """A local JSON API: ``/customers/<id>``, ``/flaky/<key>`` (500 once per key, then 200),
    ``/slow`` (answers only when released), ``/text`` (not JSON), ``/headers`` (echoes
    request headers), ``/echo`` (echoes the JSON body), ``/missing`` (404)."""

    def __init__(self) -> None:
        self.flaky_calls: dict[str, int] = {}
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.startswith("/customers/"):
                    ident = self.path.rsplit("/", 1)[1]
                    self.send(200, json.dumps({"id": ident, "tier": "gold"}).encode())
                elif self.path.startswith("/flaky/"):
                    calls = server.flaky_calls[self.path] = server.flaky_calls.get(self.path, 0) + 1
                    self.send(500 if calls == 1 else 200, json.dumps({"calls": calls}).encode())
                elif self.path == "/slow":
                    server.release.wait(5)
                    self.send(200, b"{}")
                elif self.path == "/text":
                    self.send(200, b"<html>oops</html>")
                elif self.path == "/headers":
                    self.send(200, json.dumps(dict(self.headers.items())).encode())
                elif self.path.startswith("/number/"):
                    self.send(200, b'{"x": %s}' % self.path.rsplit("/", 1)[1].encode())
                elif self.path == "/list":
                    self.send(200, b"[1, 2]")
                else:
                    self.send(404, b"{}")

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                self.send(200, json.dumps({"got": body}).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


@pytest.fixture(scope="module")
def http_json() -> ValidatedTool:
    """The tool as the engine gets it, from the installed plugin's entry point."""
    registries = collect(get_plugin_manager(environ={"CONVERGE_PLUGINS": "converge-http"}))
    return tools_for_engine(registries, allowed=["http_json"])["http_json"]


def call(tool: ValidatedTool, **args: Any) -> dict[str, Any]:
    pending = tool(args)
    assert asyncio.iscoroutine(pending)
    result: dict[str, Any] = asyncio.run(pending)
    return result


def test_signature_for_the_checker(http_json: ValidatedTool) -> None:
    sig = http_json.tool.signature()
    assert sig.plugin == "converge-http"
    assert sig.args["url"] == "str"
    assert sig.args["headers"] == "list[str]?"
    assert sig.args["json"] == "any?"
    assert sig.args["*"] == "any"          # extra arguments fill the url template
    assert sig.result == {"*": "any"}      # the answer's fields are the result


def test_success_fills_the_url_template(server: Server, http_json: ValidatedTool) -> None:
    result = call(http_json, url=server.url + "/customers/{customer}", customer="c 42/x")
    assert result == {"id": "c%2042%2Fx", "tier": "gold"}


def test_5xx_is_retried_then_succeeds(server: Server, http_json: ValidatedTool) -> None:
    result = call(http_json, url=server.url + "/flaky/retried", retries=2, backoff=0)
    assert result == {"calls": 2}


def test_5xx_without_retries_is_a_tool_error(server: Server, http_json: ValidatedTool) -> None:
    with pytest.raises(ToolError, match="failed after 1 attempt: HTTP 500"):
        call(http_json, url=server.url + "/flaky/once", retries=0)


def test_timeout_is_a_tool_error(server: Server, http_json: ValidatedTool) -> None:
    with pytest.raises(ToolError, match=r"failed after 2 attempts: ReadTimeout"):
        call(http_json, url=server.url + "/slow", timeout=0.2, retries=1, backoff=0)


def test_connection_refused_is_retried_then_a_tool_error(http_json: ValidatedTool) -> None:
    with pytest.raises(ToolError, match="failed after 3 attempts: ConnectError"):
        call(http_json, url="http://127.0.0.1:9/none", retries=2, backoff=0)


def test_a_body_that_is_not_json_is_a_tool_error(
    server: Server, http_json: ValidatedTool
) -> None:
    with pytest.raises(ToolError, match="did not answer JSON"):
        call(http_json, url=server.url + "/text")
    with pytest.raises(ToolError, match="JSON list, not an object"):
        call(http_json, url=server.url + "/list")


@pytest.mark.parametrize(("number", "says"), [
    ("1e-400", "`1e-400` is below the smallest float"),
    ("1e400", "`1e400` is beyond the largest float"),
    ("NaN", "`NaN` is not a number"),
])
def test_a_number_no_float_holds_is_a_tool_error(
    server: Server, http_json: ValidatedTool, number: str, says: str
) -> None:
    # json.loads reads 1e-400 as 0.0: a nonzero answer became zero without a word
    with pytest.raises(ToolError, match="answered a number no fact can hold: " + says):
        call(http_json, url=server.url + "/number/" + number)
    assert call(http_json, url=server.url + "/number/5e-324") == {"x": 5e-324}


def test_a_4xx_is_a_tool_error_and_not_retried(server: Server, http_json: ValidatedTool) -> None:
    with pytest.raises(ToolError, match="answered HTTP 404"):
        call(http_json, url=server.url + "/missing")


def test_headers_take_values_from_the_environment(
    server: Server, http_json: ValidatedTool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cret")
    result = call(http_json, url=server.url + "/headers",
                  headers=["Authorization: Bearer ${API_TOKEN}", "X-Team: support"])
    assert result["Authorization"] == "Bearer s3cret"
    assert result["X-Team"] == "support"


def test_a_missing_environment_variable_is_named(
    server: Server, http_json: ValidatedTool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_TOKEN", raising=False)
    with pytest.raises(ToolError, match="environment variable API_TOKEN"):
        call(http_json, url=server.url + "/headers", headers=["Authorization: ${API_TOKEN}"])


def test_post_sends_the_json_body(server: Server, http_json: ValidatedTool) -> None:
    result = call(http_json, url=server.url + "/echo", method="POST",
                  json={"ticket": "T1", "tags": ["a"]})
    assert result == {"got": {"ticket": "T1", "tags": ["a"]}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"url": "http://127.0.0.1:9/{who}"}, r"\{who\} has no value"),
        ({"url": "http://127.0.0.1:9/x", "who": "a"}, "who not used by the url"),
        ({"url": "http://127.0.0.1:9/{who.__class__}", "who": "a"}, "plain name"),
        ({"url": "http://127.0.0.1:9/", "method": "BREW"}, "bad arguments: method"),
        ({"url": "http://127.0.0.1:9/", "headers": ["no colon"]}, "Name: value"),
    ],
)
def test_bad_calls_are_tool_errors(
    http_json: ValidatedTool, args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        call(http_json, **args)


RULESET = """
ruleset enrich
uses tool http_json

fact Ticket   { key id: str, customer: str }
fact Customer { key id: str, tier: str }

agent enrich {
  when Ticket(customer)
  call http_json(url: "BASE/customers/{customer}", customer: customer, retries: 0) as crm
  emit Customer(id: customer, tier: crm.tier)
}
"""


def test_a_ruleset_calls_the_tool_through_the_engine(server: Server) -> None:
    from converge_rules import api

    ruleset = api.loads(RULESET.replace("BASE", server.url))
    result = api.run(ruleset, [("Ticket", {"id": "T1", "customer": "c1"}),
                               ("Ticket", {"id": "T2", "customer": "c2"})],
                     executor="threads")
    assert result.status == "converged"
    assert result.facts("Customer") == [{"id": "c1", "tier": "gold"},
                                        {"id": "c2", "tier": "gold"}]
    calls = [e for e in result.trace.events() if e.event == "tool_call"]
    assert [c.args["customer"] for c in calls] == ["c1", "c2"]


def test_the_declared_types_are_what_the_models_say() -> None:
    """``converge check`` reads the declared types without importing the models; a job
    imports the models. Both must describe the same tool."""
    import dataclasses

    from converge_http import TOOL

    derived = dataclasses.replace(TOOL, arg_types=None, result_types=None).signature()
    assert TOOL.signature() == derived
    TOOL.load()  # what a job does first: imports and compares, raising if they differ
