"""Draw what `converge lsp` tells an editor about a ruleset with a mistake, and save it
as a PNG with headless Chromium (docs/images/lsp-session.png, shown in
docs/editors.md).

The picture is drawn from the server's answers only: the real server process is
started and driven over LSP as an editor drives it (open the file, wait for the
diagnostics, ask for semantic tokens, a hover, a completion and the quick fixes), and
the page shows the text coloured by its semantic tokens, the diagnostics underlined
with their messages, the hover and the completion list. It is not a screenshot of an
editor's window.

    python editors/screenshot.py [--out docs/images/lsp-session.png]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

REPO = Path(__file__).resolve().parents[1]
COLOURS = ["#4ec9b0", "#9cdcfe", "#b5cea8", "#dcdcaa", "#c8c8c8", "#dcdcaa", "#c586c0"]


def sample() -> str:
    text = (REPO / "rulesets" / "pricing" / "pricing.cvg").read_text(encoding="utf-8")
    start = text.index("enum Channel")
    end = text.index("agent below_cost")
    policy = text[text.index("policy Price"):text.index("prune Quote")]
    return 'ruleset pricing "Competitive prices"\n\nuses tool fx_rate\n\n' + text[
        start:end].replace("when Cost(sku, amount: cost)\n  emit",
                           "when Cots(sku, amount: cost)\n  emit", 1) + policy


async def session(text: str) -> dict[str, object]:
    client = LanguageClient("screenshot", "1")
    found: dict[str, object] = {}
    done = asyncio.Event()

    @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: t.PublishDiagnosticsParams) -> None:
        found["diagnostics"] = params.diagnostics
        done.set()

    await client.start_io(sys.executable, "-m", "converge_rules.cli", "lsp")
    await client.initialize_async(t.InitializeParams(capabilities=t.ClientCapabilities()))
    client.initialized(t.InitializedParams())
    path = Path(tempfile.mkdtemp()) / "pricing.cvg"
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(
        t.TextDocumentItem(uri=uri, language_id="converge", version=1, text=text)))
    await asyncio.wait_for(done.wait(), 60)
    doc = t.TextDocumentIdentifier(uri)
    tokens = await client.text_document_semantic_tokens_full_async(
        t.SemanticTokensParams(text_document=doc))
    found["tokens"] = tokens.data if tokens else []
    at = _position(text, "agent undercut", 8)
    found["hover"] = await client.text_document_hover_async(
        t.HoverParams(text_document=doc, position=at))
    found["hover_at"] = at
    diagnostics = list(found["diagnostics"])  # type: ignore[call-overload]
    found["diagnostics"] = diagnostics
    if not diagnostics:
        raise SystemExit("the sample ruleset has no diagnostic to show")
    found["actions"] = await client.text_document_code_action_async(t.CodeActionParams(
        text_document=doc, range=diagnostics[0].range,
        context=t.CodeActionContext(diagnostics=diagnostics)))
    await client.shutdown_async(None)
    client.exit(None)
    return found


def _position(text: str, needle: str, offset: int) -> t.Position:
    before = text[:text.index(needle) + offset]
    return t.Position(before.count("\n"), len(before) - before.rfind("\n") - 1)


def page(text: str, found: dict[str, object]) -> str:
    lines = text.split("\n")
    colour: dict[tuple[int, int], str] = {}  # (line, character) -> colour
    data = list(found["tokens"])  # type: ignore[call-overload]
    line = start = 0
    for i in range(0, len(data), 5):
        dl, ds, length, kind, _ = data[i:i + 5]
        line += dl
        start = start + ds if dl == 0 else ds
        for col in range(start, start + length):
            colour[(line, col)] = COLOURS[kind]
    diagnostics: list[t.Diagnostic] = found["diagnostics"]  # type: ignore[assignment]
    rows = []
    for number, content in enumerate(lines):
        marks = [d for d in diagnostics if d.range.start.line == number]
        comment = content.find("#")
        out = []
        for col, ch in enumerate(content):
            styles = []
            if (number, col) in colour:
                styles.append(f"color:{colour[(number, col)]}")
            elif comment >= 0 and col >= comment:
                styles.append("color:#6a9955")
            if any(d.range.start.character <= col < d.range.end.character for d in marks):
                styles.append("text-decoration:underline wavy #f14c4c")
            piece = html.escape(ch)
            out.append(f'<span style="{";".join(styles)}">{piece}</span>' if styles else piece)
        rows.append(f'<div class="l"><span class="n">{number + 1}</span>{"".join(out)}</div>')
        for d in marks:
            rows.append(f'<div class="d">{html.escape(str(d.code))}: '
                        f'{html.escape(d.message).replace(chr(10), "<br>")}</div>')
    hover = found["hover"]
    hover_html = ""
    if isinstance(hover, t.Hover) and isinstance(hover.contents, t.MarkupContent):
        body = html.escape(hover.contents.value.replace("```converge\n", "").replace(
            "```", "")).replace("\n\n", "<br>").replace("\n", "<br>")
        hover_html = f'<div class="box"><b>hover on <code>undercut</code></b><br>{body}</div>'
    actions = found["actions"] or []  # type: ignore[operator]
    fix_html = "".join(f"<div>fix: {html.escape(a.title)}</div>" for a in actions)  # type: ignore[union-attr]
    return f"""<!doctype html><meta charset="utf-8"><style>
body {{ background:#1e1e1e; color:#d4d4d4; font:14px/1.45 'DejaVu Sans Mono',monospace;
       margin:0; display:flex; }}
.code {{ padding:12px 0; flex:1; }} .l {{ white-space:pre; }}
.n {{ display:inline-block; width:36px; color:#858585; text-align:right; margin-right:14px; }}
.c {{ color:#6a9955; }}
.d {{ margin-left:50px; color:#f14c4c; background:#3a1d1d; padding:2px 8px;
      white-space:pre-wrap; }}
.side {{ width:380px; padding:12px; font-size:13px; }}
.box {{ background:#252526; border:1px solid #454545; padding:8px; margin-bottom:12px;
        white-space:normal; }}
</style><div class="code">{''.join(rows)}</div>
<div class="side">{hover_html}<div class="box"><b>quick fixes</b>{fix_html}</div>
<div class="box">drawn from <code>converge lsp</code>'s answers (diagnostics,
semantic tokens, hover, code actions) by editors/screenshot.py</div></div>"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" /
                        "lsp-session.png")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("needs chromium (or google-chrome) on the PATH")
    text = sample()
    found = asyncio.run(session(text))
    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "session.html"
        page_path.write_text(page(text, found), encoding="utf-8")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--screenshot={args.out.resolve()}",
                        "--window-size=1280,900", page_path.as_uri()],
                       check=True, capture_output=True, timeout=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
