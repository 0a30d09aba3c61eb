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
    client.published.append((params.uri, params.version))  # type: ignore[attr-defined]


def make_client() -> LanguageClient:
    """pytest-lsp's test client, also keeping the version of each file's diagnostics."""
    client = LanguageClient(converter_factory=default_converter)
    client.versions = {}  # type: ignore[attr-defined]
    client.published = []  # type: ignore[attr-defined]
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


async def test_a_ruleset_in_a_folder_whose_name_needs_escaping_gets_its_diagnostics(
        client: LanguageClient, tmp_path: Path) -> None:
    """An editor escapes a space in a URI (``my%20rules``): diagnostics and locations
    are sent under the URI the editor knows the file by (pygls' ``from_fs_path``, used
    before, escapes nothing: the diagnostics went to a file no editor had open)."""
    uri = write(tmp_path / "my rules+1" / "shop.cvg", BROKEN)
    assert "my%20rules%2B1" in uri
    open_doc(client, uri, BROKEN)
    assert [d.code for d in await diagnostics(client, uri, version=1)] == ["CVG101"]
    change(client, uri, FIXED, 2)
    assert await diagnostics(client, uri, version=2) == []
    found = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), position_of(FIXED, "when Cost(", 6)))
    assert isinstance(found, list) and [f.uri for f in found] == [uri]
    # a file the editor has not open (imported): its path's URI, escaped alike
    lib = tmp_path / "my rules+1" / "lib facts.cvg"
    write(lib, "ruleset lib\nfact Tax { key sku: str }\n")
    text = FIXED.replace("ruleset shop\n", 'ruleset shop\nimport "lib facts.cvg"\n') + (
        "agent t {\n  when Tax(sku)\n  emit Price(sku: sku, amount: 1.0)\n}\n")
    change(client, uri, text, 3)
    assert not any(d.severity == t.DiagnosticSeverity.Error
                   for d in await diagnostics(client, uri, version=3))
    found = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), position_of(text, "when Tax(", 6)))
    assert isinstance(found, list) and [f.uri for f in found] == [lib.as_uri()]
    assert "lib%20facts.cvg" in found[0].uri


async def test_a_burst_of_changes_is_checked_once_it_stops(client: LanguageClient,
                                                           tmp_path: Path) -> None:
    """Changes sent back to back (a key held down) are not checked one by one: the
    server waits for them to stop, then publishes the last one's diagnostics."""
    uri = write(tmp_path / "shop.cvg", FIXED)
    open_doc(client, uri, FIXED)
    assert await diagnostics(client, uri, version=1) == []
    for version in range(2, 12):
        change(client, uri, BROKEN if version % 2 else FIXED, version)
    found = await diagnostics(client, uri, version=11)
    assert [d.code for d in found] == ["CVG101"]
    checked = [v for u, v in client.published  # type: ignore[attr-defined]
               if u == uri and v not in (None, 1)]  # None: the workspace's check
    assert checked[-1] == 11 and len(checked) <= 3, checked


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


IMPORTED = "ruleset facts\nfact Cost { key sku: str, amount: float }\n"
"""A file that ``IMPORTING`` imports as ``lib/facts.cvg``."""
IMPORTING = ('ruleset main\nimport "lib/facts.cvg"\nfact Price { key sku: str, amount: '
             'float }\nagent markup {\n  when Cost(sku, amount)\n  emit Price(sku: sku, '
             'amount: amount * 1.2)\n}\n')


def write_imports(tmp_path: Path) -> tuple[str, str]:
    """``IMPORTED`` and ``IMPORTING`` written under ``tmp_path``: their URIs."""
    return (write(tmp_path / "lib" / "facts.cvg", IMPORTED),
            write(tmp_path / "main.cvg", IMPORTING))


async def test_a_ruleset_with_imports(client: LanguageClient, tmp_path: Path) -> None:
    facts, main = IMPORTED, IMPORTING
    lib_uri, uri = write_imports(tmp_path)
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


def _edits_of_every_kind(big: str, shared: str) -> list[tuple[str, str, str]]:
    """(kind, big.cvg's text, shared.cvg's text) after each edit of a sequence an editor
    makes: each kind of edit puts an error in or takes one out."""
    head = big.index("\n\n") + 1
    middle = big.index("value > 10", len(big) // 2)
    last = big.rindex("value > 10")
    pasted = "".join(f"fact Pasted{i} {{ key id: str }}\nagent pasted{i} tier 1 {{\n"
                     f"  when Pasted{i}(id)\n  where id == {'nope' if i == 0 else i}\n"
                     "  emit Hold0(id: id)\n}\n\n" for i in range(3)) + "\n\n"
    assert pasted.count("\n") == 23

    def text(inline: str = "10", inserted: str = "", block: str = "",
             end: str = "10") -> str:
        return (big[:head] + inserted + block + big[head:middle] + f"value > {inline}"
                + big[middle + 10:last] + f"value > {end}" + big[last + 10:])

    renamed = shared.replace("Shared", "Shard")
    return [  # the error in the middle moves with the lines inserted above it
        ("in-line", text(inline="zz"), shared),
        ("insert-line", text(inline="zz", inserted="fact X { a: nope }\n"), shared),
        ("delete-line", text(inline="zz"), shared),
        ("paste-20", text(inline="zz", block=pasted), shared),
        ("cut-20", text(inline="zz"), shared),
        ("in-line", text(), shared),
        ("last-item", text(end="zz"), shared),
        ("last-item", text(), shared),
        ("import", text(), renamed),
        ("import", text(), shared),
    ]


def _as_checked(d: t.Diagnostic) -> tuple[object, ...]:
    related = tuple((r.location.uri, r.location.range.start.line,
                     r.location.range.start.character, r.message)
                    for r in d.related_information or ())
    return (d.code, d.message, d.range.start.line, d.range.start.character,
            d.range.end.line, d.range.end.character, related)


def _from_check(d: dict[str, object]) -> tuple[object, ...]:
    related = tuple((Path(str(r["file"])).as_uri(), int(r["line"]) - 1,  # type: ignore[call-overload]
                     int(r["column"]) - 1, r["message"])  # type: ignore[call-overload]
                    for r in d["related"])  # type: ignore[attr-defined]
    message = str(d["message"]) + (f"\nhelp: {d['help']}" if d.get("help") else "")
    return (d["code"], message, int(d["line"]) - 1, int(d["column"]) - 1,  # type: ignore[call-overload]
            int(d["end_line"]) - 1, int(d["end_column"]) - 1, related)  # type: ignore[call-overload]


async def test_after_each_kind_of_edit_the_diagnostics_are_converge_checks(
        client: LanguageClient, tmp_path: Path) -> None:
    """A long ruleset importing another, edited as an editor edits: a line inserted and
    deleted above most items, 20 lines pasted and cut, the last item and the imported
    file changed. After each edit the diagnostics are exactly ``converge check``'s for
    the same text."""
    import json
    import subprocess

    from converge_rules.benchmarks import generated_ruleset

    shared = 'ruleset shared\n\nfact Shared { key id: str }\n'
    generated = generated_ruleset(300)
    big = generated.replace("\n", '\nimport "shared.cvg"\n', 1) + \
        "\nagent useShared tier 1 {\n  when Shared(id)\n  emit Hold0(id: id)\n}\n"
    steps = _edits_of_every_kind(big, shared)
    for i, (_, big_text, shared_text) in enumerate(steps):  # what `converge check` says
        write(tmp_path / "states" / str(i) / "big.cvg", big_text)
        write(tmp_path / "states" / str(i) / "shared.cvg", shared_text)
    paths = [str(tmp_path / "states" / str(i) / "big.cvg") for i in range(len(steps))]
    out = subprocess.run([sys.executable, "-m", "converge_rules.cli", "check", "--format",
                          "json", *paths], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env={**os.environ})
    reported = json.loads(out.stdout)["diagnostics"]
    for d in reported:  # file names are relative to the working directory
        for r in (d, *d["related"]):
            r["file"] = str((tmp_path / r["file"]).resolve())
    expected = []
    for i, path in enumerate(paths):
        mine = [d for d in reported if d["file"] == str(Path(path).resolve())]
        for d in mine:  # the same folder layout under the server's files
            for r in d["related"]:
                r["file"] = str(r["file"]).replace(f"/states/{i}/", "/ws/")
        expected.append(sorted(_from_check(d) for d in mine))
    assert any(expected) and not all(expected)  # errors come and go

    uri = write(tmp_path / "ws" / "big.cvg", big)
    shared_uri = write(tmp_path / "ws" / "shared.cvg", shared)
    open_doc(client, shared_uri, shared)
    open_doc(client, uri, big)
    assert await diagnostics(client, uri, version=1) == []
    versions = {uri: 1, shared_uri: 1}
    texts = {uri: big, shared_uri: shared}
    for (kind, big_text, shared_text), want in zip(steps, expected, strict=True):
        for target, text in ((uri, big_text), (shared_uri, shared_text)):
            if texts[target] != text:
                versions[target] += 1
                texts[target] = text
                change(client, target, text, versions[target])
        if kind != "import":
            found = await diagnostics(client, uri, version=versions[uri])
        else:  # answered at big.cvg's unchanged version, once shared.cvg is checked
            for _ in range(600):
                found = list(client.diagnostics.get(uri, []))
                if sorted(_as_checked(d) for d in found) == want:
                    break
                await asyncio.sleep(0.05)
        assert sorted(_as_checked(d) for d in found) == want, kind


async def test_the_quick_fixes_of_a_duplicate_import_and_a_bidi_control(
        client: LanguageClient, tmp_path: Path) -> None:
    """CVG607's fix deletes the second ``import`` line; CVG011's deletes the invisible
    character alone (after an emoji: the edit's columns are UTF-16), keeping the text."""
    write(tmp_path / "b.cvg", "ruleset b\nfact A { key id: str }\n")
    text = ('ruleset a\nimport "b.cvg"\nimport "b.cvg"\n'
            'fact C { key id: str }  # 😀 by \u202eana\n')
    uri = write(tmp_path / "a.cvg", text)
    open_doc(client, uri, text)
    found = await diagnostics(client, uri, version=1)
    assert [d.code for d in found] == ["CVG607", "CVG011"]
    edits = []
    for d in found:
        actions = await client.text_document_code_action_async(t.CodeActionParams(
            text_document=t.TextDocumentIdentifier(uri), range=d.range,
            context=t.CodeActionContext([d])))
        assert actions and len(actions) == 1 and isinstance(actions[0], t.CodeAction)
        assert actions[0].is_preferred and actions[0].edit and actions[0].edit.changes
        (edit,) = actions[0].edit.changes[uri]
        edits.append((actions[0].title, edit))
    assert edits[0][1] == t.TextEdit(t.Range(t.Position(2, 0), t.Position(3, 0)), "")
    assert edits[1][0] == "Remove the bidirectional control character U+202E"
    start = position_of(text, "\u202e")
    start = t.Position(start.line, len(text.split("\n")[3][:start.character]
                                       .encode("utf-16-le")) // 2)
    assert edits[1][1] == t.TextEdit(
        t.Range(start, t.Position(start.line, start.character + 1)), "")
    fixed = 'ruleset a\nimport "b.cvg"\nfact C { key id: str }  # 😀 by ana\n'
    change(client, uri, fixed, 2)
    assert await diagnostics(client, uri, version=2) == []


async def test_an_import_cycle_shows_at_the_import_line_of_the_open_file(
        client: LanguageClient, tmp_path: Path) -> None:
    """The cycle closes in the other file, whichever file is open: each shows it at its
    own import line (`converge check` fails on either; the editor showed nothing)."""
    a = 'ruleset a\nimport "b.cvg"\nfact A { key id: str }\n'
    b = 'ruleset b\nimport "a.cvg"\nfact B { key id: str }\n'
    ua, ub = write(tmp_path / "a.cvg", a), write(tmp_path / "b.cvg", b)
    for uri, text, other in ((ua, a, ub), (ub, b, ua)):
        open_doc(client, uri, text)
        (found,) = await diagnostics(client, uri, version=1)
        assert found.code == "CVG602" and "import cycle" in found.message
        assert found.range == t.Range(t.Position(1, 0), t.Position(1, 14))
        related = found.related_information
        assert related and related[0].location.uri == other
        assert related[0].location.range.start.line == 1


async def test_no_completion_inside_a_string_or_a_comment(client: LanguageClient,
                                                           tmp_path: Path) -> None:
    """A space is a trigger character: typed in a string or a comment, it offered
    keywords, and Enter at the end of the line took the first one."""
    text = ('ruleset r\nfact A { key id: str }  # the \nagent a {\n'
            '  when A(id) where id != "a \\" b "\n  emit A(id: id)\n}\n')
    uri = write(tmp_path / "r.cvg", text)
    open_doc(client, uri, text)
    await diagnostics(client, uri, version=1)
    for at in (position_of(text, "# the ", 6), position_of(text, '"a \\" b ', 8)):
        found = await client.text_document_completion_async(t.CompletionParams(
            text_document=t.TextDocumentIdentifier(uri), position=at))
        assert isinstance(found, t.CompletionList) and not found.items, at
    after = await client.text_document_completion_async(t.CompletionParams(
        text_document=t.TextDocumentIdentifier(uri),
        position=position_of(text, '" b "', 5)))  # after the string: still offered
    assert isinstance(after, t.CompletionList) and after.items


async def test_a_file_changed_on_disk_is_checked_again(client: LanguageClient,
                                                       tmp_path: Path) -> None:
    """The VS Code client reports .cvg files changed outside the editor
    (workspace/didChangeWatchedFiles): creating a missing import clears its CVG601,
    deleting it brings it back, without typing in the open file."""
    text = 'ruleset a\nimport "b.cvg"\nfact A { key id: str }\n'
    uri = write(tmp_path / "a.cvg", text)
    open_doc(client, uri, text)
    assert [d.code for d in await diagnostics(client, uri, version=1)] == ["CVG601"]
    client.diagnostics.pop(uri)
    b = write(tmp_path / "b.cvg", "ruleset b\nfact B { key id: str }\n")
    client.workspace_did_change_watched_files(t.DidChangeWatchedFilesParams(
        [t.FileEvent(b, t.FileChangeType.Created)]))
    assert await diagnostics(client, uri) == []
    client.diagnostics.pop(uri)
    (tmp_path / "b.cvg").unlink()
    client.workspace_did_change_watched_files(t.DidChangeWatchedFilesParams(
        [t.FileEvent(b, t.FileChangeType.Deleted)]))
    assert [d.code for d in await diagnostics(client, uri)] == ["CVG601"]
