"""How soon `converge lsp` publishes diagnostics after an edit of a 2,000-line ruleset.

Starts the real server process, opens a generated ruleset of about 2,000 lines
(``converge_rules.benchmarks.generated_ruleset``), then alternates two kinds of edit,
each sent as one ``didChange`` (the whole text, as VS Code sends it for a small file):

* ``in-line``: a constant in the middle of the file changes (typing within a line);
* ``new-line``: a line is inserted near the top, or removed again (every item below it
  moves).

Each edit introduces an error or removes it, so every change yields new diagnostics;
the edits accumulate, as an editor's do.
The time is from sending the change to receiving the diagnostics for its version;
it includes the server's pause for more typing (``DEBOUNCE_SECONDS``, 40 ms).

    python bench/lsp/bench_lsp.py [--lines 2000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

from converge_rules.benchmarks import generated_ruleset


async def measure(lines: int, rounds: int) -> dict[str, list[float]]:
    client = LanguageClient("bench", "1")
    arrived: dict[int, float] = {}

    @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: t.PublishDiagnosticsParams) -> None:
        if params.version is not None:
            arrived.setdefault(params.version, time.perf_counter())

    await client.start_io(sys.executable, "-m", "converge_rules.cli", "lsp")
    await client.initialize_async(t.InitializeParams(capabilities=t.ClientCapabilities()))
    client.initialized(t.InitializedParams())
    folder = Path(tempfile.mkdtemp(prefix="bench-lsp-"))
    path = folder / "big.cvg"
    text = generated_ruleset(lines)
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(
        t.TextDocumentItem(uri=uri, language_id="converge", version=1, text=text)))
    await _wait(arrived, 1)
    times: dict[str, list[float]] = {"in-line": [], "new-line": []}
    version = 1
    middle = text.index("value > 10", len(text) // 2)
    head = text.index("\n\n") + 1
    inserted = ""
    constant = "value > 10"
    for _ in range(rounds):
        for kind in ("in-line", "new-line"):
            version += 1
            if kind == "in-line":
                constant = "value > zz" if constant != "value > zz" else "value > 11"
            else:
                inserted = "fact X { a: nope }\n" if not inserted else ""
            edited = text[:head] + inserted + text[head:middle] + constant + \
                text[middle + len("value > 10"):]
            client.text_document_did_change(t.DidChangeTextDocumentParams(
                t.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [t.TextDocumentContentChangeWholeDocument(text=edited)]))
            sent = time.perf_counter()
            await _wait(arrived, version)
            times[kind].append((arrived[version] - sent) * 1000)
            await asyncio.sleep(0.2)  # an editor's user pauses between edits
    await client.shutdown_async(None)
    client.exit(None)
    await asyncio.sleep(0.2)
    return times


async def _wait(arrived: dict[int, float], version: int) -> None:
    deadline = time.perf_counter() + 60
    while version not in arrived:
        if time.perf_counter() > deadline:
            raise SystemExit(f"no diagnostics for version {version} within 60 s")
        await asyncio.sleep(0.001)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    times = asyncio.run(measure(args.lines, args.rounds))
    load = os.getloadavg()
    print(f"lines={args.lines} rounds={args.rounds} load={load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} cores={os.cpu_count()}")
    for kind, values in times.items():
        values.sort()
        p90 = values[int(len(values) * 0.9) - 1] if len(values) >= 10 else values[-1]
        print(f"{kind:9} median {statistics.median(values):6.1f} ms  p90 {p90:6.1f} ms  "
              f"max {values[-1]:6.1f} ms  (change sent -> diagnostics received)")


if __name__ == "__main__":
    main()
