"""``converge lsp`` driven as an editor drives it: pytest-lsp starts the real server
process and speaks LSP to it over stdio."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest.importorskip("pytest_lsp")
import pytest_asyncio
from lsprotocol import types as t
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

REPO = Path(__file__).resolve().parents[2]
PRICING = (REPO / "rulesets" / "pricing" / "pricing.cvg").read_text(encoding="utf-8")

BROKEN = """ruleset shop
fact Cost { key sku: str, amount: float }
fact Price { key sku: str, amount: float }
agent markup {
  when Cots(sku, amount)
  emit Price(sku: sku, amount: amount * 1.2)
}
"""
FIXED = BROKEN.replace("Cots", "Cost")

pytestmark = pytest.mark.asyncio(loop_scope="function")


def _published(client: LanguageClient, params: t.PublishDiagnosticsParams) -> None:
    """Keep each file's diagnostics and the document version they are for."""
    client.diagnostics[params.uri] = params.diagnostics
    client.versions[params.uri] = params.version  # type: ignore[attr-defined]


def make_client() -> LanguageClient:
    """pytest-lsp's test client, also keeping the version of each file's diagnostics."""
    client = LanguageClient(converter_factory=default_converter)
    client.versions = {}  # type: ignore[attr-defined]
    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES,
                                   t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: _published})
    return client


CONFIG = ClientServerConfig(
    server_command=[sys.executable, "-m", "converge_rules.cli", "lsp"],
    client_factory=make_client, server_env={**os.environ})


@pytest_asyncio.fixture(loop_scope="function")
async def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    lsp_client = await CONFIG.start()
    await lsp_client.initialize_session(t.InitializeParams(
        capabilities=t.ClientCapabilities(),
        workspace_folders=[t.WorkspaceFolder(uri=tmp_path.as_uri(), name="ws")]))
    yield lsp_client
    await lsp_client.shutdown_session()
    await lsp_client.stop()


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path.as_uri()


def open_doc(client: LanguageClient, uri: str, text: str, version: int = 1) -> None:
    client.text_document_did_open(t.DidOpenTextDocumentParams(
        t.TextDocumentItem(uri=uri, language_id="converge", version=version, text=text)))


def change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        t.VersionedTextDocumentIdentifier(uri=uri, version=version),
        [t.TextDocumentContentChangeWholeDocument(text=text)]))


async def diagnostics(client: LanguageClient, uri: str, *, version: int | None = None,
                      timeout: float = 30.0) -> list[t.Diagnostic]:
    """The diagnostics published for ``uri`` (for ``version`` when given), waiting for
    them to arrive."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if uri in client.diagnostics and (version is None or
                                          client.versions.get(uri) == version):
            return list(client.diagnostics[uri])
        if loop.time() > deadline:
            raise AssertionError(f"no diagnostics for {uri} (version {version})")
        await asyncio.sleep(0.02)


def position_of(text: str, needle: str, offset: int = 0) -> t.Position:
    before = text[:text.index(needle) + offset]
    return t.Position(before.count("\n"), len(before) - before.rfind("\n") - 1)


async def test_an_error_is_shown_with_code_span_and_help_and_clears_once_fixed(
        client: LanguageClient, tmp_path: Path) -> None:
    uri = write(tmp_path / "shop.cvg", BROKEN)
    open_doc(client, uri, BROKEN)
    found = await diagnostics(client, uri, version=1)
    assert [d.code for d in found] == ["CVG101"]
    d = found[0]
    assert d.range == t.Range(t.Position(4, 7), t.Position(4, 11))  # `Cots`
    assert d.severity == t.DiagnosticSeverity.Error
    assert "Cots" in d.message and "did you mean `Cost`?" in d.message
    change(client, uri, FIXED, 2)
    assert await diagnostics(client, uri, version=2) == []


async def test_a_syntax_error_while_typing_then_its_fix(client: LanguageClient,
                                                        tmp_path: Path) -> None:
    uri = write(tmp_path / "shop.cvg", FIXED)
    open_doc(client, uri, FIXED)
    assert await diagnostics(client, uri, version=1) == []
    typing = FIXED.replace("amount * 1.2)", "amount * ")
    change(client, uri, typing, 2)
    found = await diagnostics(client, uri, version=2)
    assert found and all(d.code.startswith("CVG0") for d in found)  # type: ignore[union-attr]
    change(client, uri, FIXED, 3)
    assert await diagnostics(client, uri, version=3) == []


async def test_related_information_points_at_the_first_declaration(
        client: LanguageClient, tmp_path: Path) -> None:
    text = "ruleset r\nfact Cost { key sku: str }\nfact Cost { key sku: str }\n"
    uri = write(tmp_path / "dup.cvg", text)
    open_doc(client, uri, text)
    found = await diagnostics(client, uri, version=1)
    assert [d.code for d in found] == ["CVG102"]
    related = found[0].related_information
    assert related and related[0].location.uri == uri
    assert related[0].location.range.start.line == 1


async def test_the_quick_fix_replaces_the_misspelt_name(client: LanguageClient,
                                                       tmp_path: Path) -> None:
    uri = write(tmp_path / "shop.cvg", BROKEN)
    open_doc(client, uri, BROKEN)
    found = await diagnostics(client, uri, version=1)
    actions = await client.text_document_code_action_async(t.CodeActionParams(
        t.TextDocumentIdentifier(uri), found[0].range, t.CodeActionContext(found)))
    assert actions and len(actions) == 1
    action = actions[0]
    assert isinstance(action, t.CodeAction)
    assert action.kind == t.CodeActionKind.QuickFix and action.title == \
        "Change `Cots` to `Cost`"
    assert action.edit is not None and action.edit.changes is not None
    (edit,) = action.edit.changes[uri]
    assert edit.new_text == "Cost" and edit.range == found[0].range


async def test_completion_offers_types_fields_members_agents_budgets_and_keywords(
        client: LanguageClient, tmp_path: Path) -> None:
    uri = write(tmp_path / "pricing.cvg", PRICING)
    open_doc(client, uri, PRICING)
    await diagnostics(client, uri, version=1)

    async def labels(text: str, needle: str, offset: int) -> set[str]:
        change(client, uri, text, 99)
        result = await client.text_document_completion_async(t.CompletionParams(
            t.TextDocumentIdentifier(uri), position_of(text, needle, offset)))
        assert result is not None
        items = result.items if isinstance(result, t.CompletionList) else result
        return {i.label for i in items}

    # a type after `when`, fields inside a pattern and an emit
    typing = PRICING.replace("when Cost(sku, amount: cost)\n  emit Price(sku: sku, "
                             "channel: web, amount: round(cost * 1.2",
                             "when Co")
    assert {"Cost", "Quote", "Price"} <= await labels(typing, "when Co", 7)
    assert {"sku", "amount"} <= await labels(PRICING, "when Cost(sku, amount: cost)\n  emit",
                                             len("when Cost("))
    fields = await labels(PRICING, "emit Alert(sku: sku, ", len("emit Alert(sku: sku, "))
    assert "message" in fields and "Cost" not in fields
    # enum members after `Channel.`, agents in `priority [...]`, budgets in the root
    members = PRICING.replace("channel: web, amount: round(cost", "channel: Channel.")
    assert await labels(members, "Channel. *", len("Channel.")) >= {"web", "store",
                                                                    "marketplace"}
    priority = PRICING.replace("resolve by highest confidence, then lowest amount",
                               "resolve by priority [")
    assert {"undercut", "cost_plus"} <= await labels(priority, "priority [", 10)
    budgets = PRICING.replace("  max_agents    = 64\n", "  max_\n")
    assert {"max_agents", "job_timeout"} <= await labels(budgets, "  max_\n", 6)
    top = PRICING + "\nag"
    assert {"agent", "fact", "policy"} <= await labels(top, "\nag", 3)


async def test_a_plugins_tool_appears_in_completion(client: LanguageClient,
                                                    tmp_path: Path) -> None:
    """plugins/converge-example is installed in the tests: its ``fx_rate`` tool."""
    text = PRICING.replace("uses tool fx_rate", "uses tool fx")
    uri = write(tmp_path / "pricing.cvg", text)
    open_doc(client, uri, text)
    await diagnostics(client, uri, version=1)
    result = await client.text_document_completion_async(t.CompletionParams(
        t.TextDocumentIdentifier(uri), position_of(text, "uses tool fx", 12)))
    assert result is not None
    items = result.items if isinstance(result, t.CompletionList) else result
    fx = [i for i in items if i.label == "fx_rate"]
    assert fx and fx[0].kind == t.CompletionItemKind.Method
    assert fx[0].detail == "converge-example"


async def test_hover_shows_declarations_fields_agents_and_tools(
        client: LanguageClient, tmp_path: Path) -> None:
    uri = write(tmp_path / "pricing.cvg", PRICING)
    open_doc(client, uri, PRICING)
    await diagnostics(client, uri, version=1)

    async def hover(needle: str, offset: int = 0) -> str:
        result = await client.text_document_hover_async(t.HoverParams(
            t.TextDocumentIdentifier(uri), position_of(PRICING, needle, offset)))
        assert result is not None and isinstance(result.contents, t.MarkupContent)
        return result.contents.value

    assert "fact Price  { key sku: str, key channel: Channel, amount: float }" in \
        await hover("emit Price(", 6)
    amount = await hover("Cost(sku, amount: cost)", 11)
    assert "amount: float" in amount and "field of `Cost`" in amount
    assert "key sku: str" in await hover("Cost(sku, amount: cost)", 6)
    agent = await hover("agent undercut", 7)
    assert "tier 1" in agent and "reads: Cost, Quote" in agent and "emits: Price" in agent
    tool = await hover("call fx_rate", 6)
    assert "fx_rate(currency: str) -> {usd: float}" in tool
    assert "demo exchange rates" in tool and "converge-example" in tool
    assert "round(float, int) -> float" in await hover("round(theirs", 1)


async def test_definition_and_references(client: LanguageClient, tmp_path: Path) -> None:
    uri = write(tmp_path / "pricing.cvg", PRICING)
    open_doc(client, uri, PRICING)
    await diagnostics(client, uri, version=1)
    found = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), position_of(PRICING, "when Cost(", 6)))
    assert isinstance(found, list) and len(found) == 1
    assert found[0].uri == uri
    assert found[0].range.start == position_of(PRICING, "fact Cost", 5)
    refs = await client.text_document_references_async(t.ReferenceParams(
        text_document=t.TextDocumentIdentifier(uri),
        position=position_of(PRICING, "fact Cost", 5),
        context=t.ReferenceContext(include_declaration=True)))
    assert refs is not None
    assert len(refs) == 1 + PRICING.count("Cost(")  # the declaration and each use
    # an enum member, an agent in `priority`… and a tool: into the plugin's source
    tool = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), position_of(PRICING, "call fx_rate", 6)))
    assert isinstance(tool, list) and tool[0].uri.endswith("converge_example/fx.py")


async def test_formatting_gives_the_canonical_layout(client: LanguageClient,
                                                     tmp_path: Path) -> None:
    from converge_rules.language.format.formatter import format_source

    messy = "ruleset r\nfact   Cost{key sku:str,amount:float}\n\n\n"
    uri = write(tmp_path / "messy.cvg", messy)
    open_doc(client, uri, messy)
    edits = await client.text_document_formatting_async(t.DocumentFormattingParams(
        t.TextDocumentIdentifier(uri), t.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert edits is not None and len(edits) == 1
    assert edits[0].new_text == format_source(messy)
    assert edits[0].range.start == t.Position(0, 0)


async def test_document_symbols_outline_the_file(client: LanguageClient,
                                                 tmp_path: Path) -> None:
    uri = write(tmp_path / "pricing.cvg", PRICING)
    open_doc(client, uri, PRICING)
    symbols = await client.text_document_document_symbol_async(
        t.DocumentSymbolParams(t.TextDocumentIdentifier(uri)))
    assert symbols is not None
    names = [s.name for s in symbols]
    assert names[:3] == ["pricing", 'uses tool fx_rate', "root 'Price every costed SKU'"]
    assert {"Cost", "Channel", "ask_rate", "policy Price"} <= set(names)
    cost = next(s for s in symbols if s.name == "Cost")
    assert isinstance(cost, t.DocumentSymbol) and cost.children
    assert [c.name for c in cost.children] == ["sku", "amount"]


async def test_a_ruleset_with_imports(client: LanguageClient, tmp_path: Path) -> None:
    facts = "ruleset facts\nfact Cost { key sku: str, amount: float }\n"
    main = ('ruleset main\nimport "lib/facts.cvg"\nfact Price { key sku: str, amount: '
            'float }\nagent markup {\n  when Cost(sku, amount)\n  emit Price(sku: sku, '
            'amount: amount * 1.2)\n}\n')
    lib_uri = write(tmp_path / "lib" / "facts.cvg", facts)
    uri = write(tmp_path / "main.cvg", main)
    open_doc(client, uri, main)
    assert await diagnostics(client, uri, version=1) == []
    # definition across files, and of the imported file itself
    found = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), position_of(main, "when Cost", 6)))
    assert isinstance(found, list) and found[0].uri == lib_uri
    assert found[0].range.start == t.Position(1, 5)
    target = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), position_of(main, "lib/facts", 2)))
    assert isinstance(target, list) and target[0].uri == lib_uri
    # an unsaved edit of the imported file is seen by the file importing it
    open_doc(client, lib_uri, facts)
    change(client, lib_uri, facts.replace("Cost", "Expense"), 2)
    found_main = await diagnostics(client, uri, version=1)
    for _ in range(200):
        if found_main:
            break
        await asyncio.sleep(0.05)
        found_main = list(client.diagnostics.get(uri, []))
    assert [d.code for d in found_main] == ["CVG101"]
