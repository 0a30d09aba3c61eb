"""``converge lsp`` on broken and unusual documents: every request answers (no error,
no hang) and the diagnostics are the checker's, then a change back to a good text
clears them. One server for every document, so the whole probe takes seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest.importorskip("pytest_lsp")
from lsprotocol import types as t
from pytest_lsp import LanguageClient

from tests.lsp import test_server
from tests.lsp.test_server import change, diagnostics, open_doc, write

client = test_server.client  # the fixture: a started and initialised server

pytestmark = pytest.mark.asyncio(loop_scope="function")

GOOD = """ruleset r
fact A { key id: str, x: int }
fact B { key id: str, y: int }
agent a {
  when A(id, x) where x > 1
  emit B(id: id, y: x + 1)
}
test "t" {
  given A(id: "a", x: 2)
  expect B(id: "a", y: 3)
}
"""

# each document, and the codes of the diagnostics it has
DOCS: dict[str, tuple[str, list[str]]] = {
    "empty": ("", ["CVG006"]),
    "bom": ("\ufeff" + GOOD, []),
    "crlf": (GOOD.replace("\n", "\r\n"), []),
    "cr": (GOOD.replace("\n", "\r"), ["CVG004"]),
    "tabs": (GOOD.replace("  ", "\t"), []),
    "unterminated": (GOOD.replace('"a", x: 2)', '"a, x: 2)'), ["CVG003"]),
    "open_brace": (GOOD[:60], ["CVG002"]),
    "nul": (GOOD.replace("agent", "ag\x00ent"), ["CVG004", "CVG101"]),
    "deep_parens": (GOOD.replace("x + 1", "(" * 3000 + "x" + ")" * 3000), []),
    "deep_minus": (GOOD.replace("x + 1", "-" * 3000 + "x"), ["CVG990"]),
    "astral": (GOOD.replace('"a"', '"\U0001F600\U0001F600"'), []),
    "line_separator": (GOOD.replace('"a"', '"a\u2028b"'), []),
    "ruleset_alone": ("ruleset", ["CVG001"]),
    "garbage": ("}}}{{{((()))]]]", ["CVG007"]),
    "long_line": (GOOD.replace("x + 1", " + ".join(["x"] * 5000)), ["CVG990"]),
}


async def test_every_request_answers_on_broken_documents(client: LanguageClient,
                                                         tmp_path: Path) -> None:
    for name, (text, codes) in DOCS.items():
        uri = write(tmp_path / f"{name}.cvg", text)
        open_doc(client, uri, text)
        found = await diagnostics(client, uri, version=1)
        assert [d.code for d in found][:len(codes)] == codes, name
        doc = t.TextDocumentIdentifier(uri=uri)
        lines = text.split("\n")
        for p in [t.Position(line, c) for line in range(min(len(lines), 12))
                  for c in (0, 3, 8, 40, 200)]:
            await client.text_document_hover_async(
                t.HoverParams(text_document=doc, position=p))
            await client.text_document_completion_async(
                t.CompletionParams(text_document=doc, position=p))
            await client.text_document_definition_async(
                t.DefinitionParams(text_document=doc, position=p))
            await client.text_document_references_async(t.ReferenceParams(
                text_document=doc, position=p,
                context=t.ReferenceContext(include_declaration=True)))
        await client.text_document_document_symbol_async(
            t.DocumentSymbolParams(text_document=doc))
        await client.text_document_formatting_async(t.DocumentFormattingParams(
            text_document=doc, options=t.FormattingOptions(tab_size=2,
                                                           insert_spaces=True)))
        await client.text_document_semantic_tokens_full_async(
            t.SemanticTokensParams(text_document=doc))
        await client.text_document_code_action_async(t.CodeActionParams(
            text_document=doc, range=t.Range(t.Position(0, 0), t.Position(3, 0)),
            context=t.CodeActionContext(diagnostics=found)))
        change(client, uri, GOOD, 2)
        assert await diagnostics(client, uri, version=2) == [], name
    bad = [m.message for m in client.log_messages
           if "internal error" in m.message or "Traceback" in m.message]
    assert not bad, bad


async def test_a_line_separator_in_a_string_does_not_shift_the_lines_after_it(
        client: LanguageClient, tmp_path: Path) -> None:
    """LSP counts only CR, LF and CRLF as line breaks; U+2028 in a string (which
    Python's ``splitlines`` also breaks at) must not move hover, its range or the
    semantic tokens of a later line that has characters outside the BMP."""
    text = ('ruleset r\nfact A { key id: str, x: int }\nfact B { key id: str, y: int }\n'
            'fact C { key id: str, y: int }\nagent a {\n'
            '  when A(id, x) where id != "a\u2028b"\n  emit B(id: id, y: x)\n}\n'
            'agent b {\n  when A(id: "\U0001F600\U0001F600", x: y) where y > 1\n'
            '  emit C(id: "c", y: y)\n}\n')
    uri = write(tmp_path / "sep.cvg", text)
    open_doc(client, uri, text)
    assert await diagnostics(client, uri, version=1) == []
    line = text.split("\n")[9]
    at = len(line[:line.index("x: y")].encode("utf-16-le")) // 2  # UTF-16 units
    hover = await client.text_document_hover_async(t.HoverParams(
        text_document=t.TextDocumentIdentifier(uri=uri), position=t.Position(9, at)))
    assert hover is not None and hover.range == t.Range(t.Position(9, at),
                                                        t.Position(9, at + 1))
    tokens = (await client.text_document_semantic_tokens_full_async(
        t.SemanticTokensParams(text_document=t.TextDocumentIdentifier(uri=uri)))).data
    where, line_no = [], 0
    for i in range(0, len(tokens), 5):
        line_no += tokens[i]
        start = tokens[i + 1] if tokens[i] or not where or where[-1][0] != line_no \
            else where[-1][1] + tokens[i + 1]
        where.append((line_no, start, tokens[i + 2]))
    assert (9, at, 1) in where, where
    completion = await client.text_document_completion_async(t.CompletionParams(
        text_document=t.TextDocumentIdentifier(uri=uri), position=t.Position(9, at + 1)))
    assert completion is not None and not isinstance(completion, list)
    edits = [item.text_edit for item in completion.items]
    assert edits and all(isinstance(e, t.TextEdit) and e.range == t.Range(
        t.Position(9, at), t.Position(9, at + 1)) for e in edits)


async def test_formatting_parses_a_text_once_until_it_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking to format the same text again answers from the last parse (a long line
    or a deep document takes most of a second to parse); a changed text is parsed."""
    from converge_rules.language.format import formatter
    from converge_rules.lsp.server import ConvergeServer

    parsed: list[str] = []
    real = formatter.format_source

    def counting(text: str, path: str = "<string>") -> str:
        parsed.append(text)
        return real(text, path)

    monkeypatch.setattr(formatter, "format_source", counting)
    server = ConvergeServer()
    messy, canonical = GOOD, real(GOOD)
    assert messy != canonical
    first = server.format_edits("file:///f.cvg", messy, "f.cvg")
    assert first and first[0].new_text == canonical
    assert server.format_edits("file:///f.cvg", messy, "f.cvg") == first
    assert server.format_edits("file:///f.cvg", "ruleset", "f.cvg") is None
    assert server.format_edits("file:///f.cvg", "ruleset", "f.cvg") is None
    assert server.format_edits("file:///f.cvg", canonical, "f.cvg") == []
    assert parsed == [messy, "ruleset", canonical]
