"""How soon `converge lsp` publishes diagnostics after an edit of a 2,000-line ruleset.

Starts the real server process, opens a generated ruleset of about 2,000 lines
(``converge_rules.benchmarks.generated_ruleset``, importing a small ``shared.cvg`` and
using its type) and ``shared.cvg``, then sends edits of these kinds in turn, each as
one ``didChange`` with the whole text (as VS Code sends it for a small file):

* ``in-line``: a constant in the middle of the file changes (typing within a line);
* ``insert-line``: a line is inserted near the top (every item below it moves);
* ``delete-line``: that line is deleted again;
* ``paste-20``: a block of 20 lines is pasted near the top; ``cut-20``: it is cut again;
* ``last-item``: a constant in the last item changes;
* ``import``: the type ``shared.cvg`` declares is renamed, or named back (the big
  file's diagnostics change: it uses that type);
* ``burst``: five changes 25 ms apart (a constant in the middle typed a character at a
  time), timed from the last one: the server waits for a burst to stop
  (``DEBOUNCE_SECONDS``, 40 ms) and checks it once.

Each edit introduces an error or removes it, so every change yields new diagnostics;
the edits accumulate, as an editor's do. The time is from sending the change to
receiving the big file's diagnostics for it. The edits are 200 ms apart (a user's
pause), so the server checks each at once; before this session's change it always
waited ``DEBOUNCE_SECONDS`` (40 ms) first. The server's CPU time per change (user + system,
from ``/proc``, 10 ms ticks, so a mean over the rounds) is less sensitive to other
load on the machine than the latency.

``--baseline DIR`` also runs the server from another checkout (``git archive main |
tar -x -C DIR``) on its own copy of the files, the two servers taking turns edit by
edit (which goes first alternates), so before and after are measured in the same run
under the same load.

``--breakdown`` measures, in this process, where the server's time per change goes
(parse, check, conversion to LSP, JSON) for each kind of edit; with ``--twice`` every
item of the big file is written twice, so each change has about 600 diagnostics with
a related place.

    python bench/lsp/bench_lsp.py [--lines 2000] [--rounds 20] [--baseline DIR]
    python bench/lsp/bench_lsp.py --breakdown [--rounds 20] [--twice]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

from converge_rules.benchmarks import generated_ruleset

KINDS = ("in-line", "insert-line", "delete-line", "paste-20", "cut-20", "last-item",
         "import", "burst")
BURST_GAP = 0.025
"""Seconds between the changes of a burst (a key held down repeats every 30-40 ms)."""
SHARED = 'ruleset shared "A type the big file uses"\n\nfact Shared { key id: str }\n'
USE_SHARED = "\nagent useShared tier 1 {\n  when Shared(id)\n  emit Hold0(id: id)\n}\n"
PASTED = "".join(
    f"fact Pasted{i} {{ key id: str, amount: float }}\n"
    f"agent pasted{i} tier 1 {{\n  when Pasted{i}(id, amount)\n"
    f"  where amount > {'nope' if i == 0 else i}\n  emit Hold0(id: id)\n}}\n\n"
    for i in range(3)) + "\n"  # 20 lines, an error in the first agent


@dataclass
class Document:
    """The big file and ``shared.cvg`` with the edits made so far."""

    big: str
    middle: int
    last: int
    head: int
    constant: str = "value > 10"
    typed: str = ""  # a burst's word so far
    word: str = "zzzzz"
    last_constant: str = "value > 10"
    inserted: str = ""
    pasted: str = ""
    shared_name: str = "Shared"

    @classmethod
    def generated(cls, lines: int, *, twice: bool = False) -> Document:
        """The generated ruleset; ``twice``: its items written twice (every one a
        duplicate declaration: a diagnostic with a related place each)."""
        text = generated_ruleset(lines)
        header_end = text.index("\n") + 1
        if twice:
            text += text[header_end:]
        text = text[:header_end] + 'import "shared.cvg"\n' + text[header_end:] + USE_SHARED
        return cls(text, text.index("value > 10", len(text) // 2),
                   text.rindex("value > 10"), text.index("\n\n") + 1)

    def edit(self, kind: str) -> str:
        """Make one edit of ``kind``; the name of the file it changed."""
        if kind == "burst":
            if len(self.typed) == 5:  # the next burst types the other word
                self.typed = ""
                self.word = "12345" if self.word == "zzzzz" else "zzzzz"
            self.typed = self.word[:len(self.typed) + 1]
            self.constant = f"value > {self.typed}"
        elif kind == "in-line":
            self.constant = "value > zz" if self.constant != "value > zz" else "value > 11"
        elif kind == "insert-line":
            self.inserted = "fact X { a: nope }\n"
        elif kind == "delete-line":
            self.inserted = ""
        elif kind == "paste-20":
            self.pasted = PASTED
        elif kind == "cut-20":
            self.pasted = ""
        elif kind == "last-item":
            self.last_constant = "value > zz" if self.last_constant != "value > zz" \
                else "value > 11"
        elif kind == "import":
            self.shared_name = "Shard" if self.shared_name == "Shared" else "Shared"
            return "shared.cvg"
        return "big.cvg"

    def text(self, name: str) -> str:
        if name == "shared.cvg":
            return SHARED.replace("Shared", self.shared_name)
        b, n = self.big, len("value > 10")
        return (b[:self.head] + self.inserted + self.pasted + b[self.head:self.middle]
                + self.constant + b[self.middle + n:self.last] + self.last_constant
                + b[self.last + n:])


@dataclass
class Server:
    """One server process, its copy of the files, and what it has published."""

    name: str
    client: LanguageClient
    folder: Path
    doc: Document
    versions: dict[str, int] = field(default_factory=dict)
    published: list[tuple[str, int | None, float]] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def uri(self, name: str) -> str:
        return (self.folder / name).as_uri()

    def cpu_seconds(self) -> float:
        pid = self.client._server.pid  # type: ignore[attr-defined]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def start(name: str, lines: int, pythonpath: str | None) -> Server:
    client = LanguageClient("bench", "1")
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    folder = Path(tempfile.mkdtemp(prefix=f"bench-lsp-{name}-"))
    server = Server(name, client, folder, Document.generated(lines))

    @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: t.PublishDiagnosticsParams) -> None:
        server.published.append((params.uri, params.version, time.perf_counter()))

    # run from the files' folder: ``python -m`` puts the working directory first on
    # the module path, ahead of PYTHONPATH
    await client.start_io(sys.executable, "-m", "converge_rules.cli", "lsp", env=env,
                          cwd=folder)
    await client.initialize_async(t.InitializeParams(capabilities=t.ClientCapabilities()))
    client.initialized(t.InitializedParams())
    for file in ("shared.cvg", "big.cvg"):
        text = server.doc.text(file)
        (folder / file).write_text(text, encoding="utf-8")
        server.versions[file] = 1
        client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(
            uri=server.uri(file), language_id="converge", version=1, text=text)))
    await _wait(server, 0, server.uri("big.cvg"), 1)
    return server


async def change(server: Server, kind: str) -> None:
    """Make one edit and time it until the big file's diagnostics for it arrive."""
    before, seen = server.cpu_seconds(), len(server.published)
    for key in range(5 if kind == "burst" else 1):
        if key:
            await asyncio.sleep(BURST_GAP)
        name = server.doc.edit(kind)
        server.versions[name] += 1
        version = server.versions[name]
        server.client.text_document_did_change(t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(uri=server.uri(name), version=version),
            [t.TextDocumentContentChangeWholeDocument(text=server.doc.text(name))]))
        sent = time.perf_counter()
    # an edit of shared.cvg is answered for big.cvg too, at big.cvg's own version
    want = version if name == "big.cvg" else server.versions["big.cvg"]
    arrived = await _wait(server, seen, server.uri("big.cvg"), want)
    server.latency.setdefault(kind, []).append((arrived - sent) * 1000)
    await asyncio.sleep(0.2)  # an editor's user pauses between edits
    server.cpu.setdefault(kind, []).append((server.cpu_seconds() - before) * 1000)


async def _wait(server: Server, seen: int, uri: str, version: int) -> float:
    deadline = time.perf_counter() + 60
    while True:
        for at_uri, at_version, at in server.published[seen:]:
            if at_uri == uri and at_version == version:
                return at
        if time.perf_counter() > deadline:
            raise SystemExit(f"{server.name}: no diagnostics for {uri} version {version} "
                             "within 60 s")
        await asyncio.sleep(0.001)


async def stop(server: Server) -> None:
    await server.client.shutdown_async(None)
    server.client.exit(None)
    await asyncio.sleep(0.2)


async def measure(lines: int, rounds: int, baseline: str | None) -> list[Server]:
    here = os.environ.get("PYTHONPATH")
    servers = [await start("this", lines, here)]
    if baseline is not None:
        servers.append(await start("baseline", lines,
                                   os.pathsep.join(p for p in (baseline, here) if p)))
    for round_ in range(rounds):
        for kind in KINDS:
            for server in (servers if round_ % 2 == 0 else servers[::-1]):
                await change(server, kind)
    for server in servers:
        await stop(server)
    return servers


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.9) - 1] if len(ordered) >= 10 else ordered[-1]


def report(servers: list[Server], lines: int, rounds: int) -> None:
    load = os.getloadavg()
    print(f"lines={lines} rounds={rounds} load={load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"cores={os.cpu_count()}   (change sent -> diagnostics received; CPU = the "
          "server's user+system time per change, mean)")
    for kind in KINDS:
        for server in servers:
            values = server.latency[kind]
            print(f"{kind:11} {server.name:8} median {statistics.median(values):6.1f} ms  "
                  f"p90 {_p90(values):6.1f} ms  max {max(values):6.1f} ms  "
                  f"CPU {statistics.fmean(server.cpu[kind]):5.1f} ms")


# ------------------------------------------------------------------ breakdown


def breakdown(lines: int, rounds: int, twice: bool) -> None:
    """Time each part of the server's work per change, in this process."""
    from pygls.workspace import Workspace

    from converge_rules.lsp import server as lsp

    folder = Path(tempfile.mkdtemp(prefix="bench-lsp-breakdown-"))
    doc = Document.generated(lines, twice=twice)
    for file in ("shared.cvg", "big.cvg"):
        (folder / file).write_text(doc.text(file), encoding="utf-8")
    ls = lsp.make_server()
    ls.load_plugins()
    workspace = Workspace(None)
    ls.protocol._workspace = workspace
    converter = ls.protocol._converter
    spent: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + (time.perf_counter() - begin) * 1000
        return wrapper

    def send(params: t.PublishDiagnosticsParams) -> None:
        json.dumps({"jsonrpc": "2.0", "method": t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
                    "params": converter.unstructure(params)})

    with _patched(lsp, "load_file", timed("load + parse", lsp.load_file)), \
            _patched(lsp, "check", timed("check", lsp.check)):
        ls.text_document_publish_diagnostics = timed("JSON", send)  # type: ignore[method-assign]
        ls.to_lsp = timed("to LSP", ls.to_lsp)  # type: ignore[method-assign]
        for file in ("shared.cvg", "big.cvg"):
            workspace.put_text_document(t.TextDocumentItem(
                uri=(folder / file).as_uri(), language_id="converge", version=1,
                text=doc.text(file)))
            ls.check_path((folder / file).resolve())
        rows: dict[str, dict[str, list[float]]] = {}
        for _ in range(rounds):
            for kind in KINDS:
                name = doc.edit(kind)
                document = workspace.get_text_document((folder / name).as_uri())
                document._source = doc.text(name)
                document.version = (document.version or 0) + 1
                spent.clear()
                cpu, begin = time.process_time(), time.perf_counter()
                changed = (folder / name).resolve()
                for entry in [*ls.entries.values()]:  # as the server does after its pause
                    if entry.path == changed or changed in entry.files:
                        ls.safely(ls.check_path, entry.path)
                spent["total"] = (time.perf_counter() - begin) * 1000
                spent["CPU"] = (time.process_time() - cpu) * 1000
                for part, ms in spent.items():
                    rows.setdefault(kind, {}).setdefault(part, []).append(ms)
    load = os.getloadavg()
    print(f"in-process breakdown, lines={lines}{' twice' if twice else ''} "
          f"rounds={rounds} load={load[0]:.2f} "
          f"{load[1]:.2f} {load[2]:.2f} cores={os.cpu_count()} (median ms per change; "
          "an import edit checks both rulesets)")
    parts = ("load + parse", "check", "to LSP", "JSON", "total", "CPU")
    print(f"{'':11} " + " ".join(f"{p:>12}" for p in parts))
    for kind, found in rows.items():
        print(f"{kind:11} " + " ".join(
            f"{statistics.median(found.get(p, [0.0])):12.1f}" for p in parts))


class _patched:
    def __init__(self, module: Any, name: str, value: Any) -> None:
        self.module, self.name, self.value = module, name, value

    def __enter__(self) -> None:
        self.old = getattr(self.module, self.name)
        setattr(self.module, self.name, self.value)

    def __exit__(self, *exc: object) -> None:
        setattr(self.module, self.name, self.old)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--baseline", help="a checkout of the code to compare with")
    parser.add_argument("--breakdown", action="store_true",
                        help="time the parts of the server's work in this process")
    parser.add_argument("--twice", action="store_true",
                        help="with --breakdown: every item written twice (a "
                             "diagnostic with a related place for each)")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.lines, args.rounds, args.twice)
        return
    servers = asyncio.run(measure(args.lines, args.rounds, args.baseline))
    report(servers, args.lines, args.rounds)


if __name__ == "__main__":
    main()
