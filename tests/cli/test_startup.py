"""``converge`` starts fast because each command imports only what it uses: editors and
pre-commit hooks start it on every save. These tests look at which modules a real
process imported (never at how long it took, which would be flaky); the timings are in
``converge bench``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules.cli import COMMANDS, LazyGroup, main

REPO = Path(__file__).resolve().parents[2]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"

# Runs the real CLI in a fresh interpreter, then writes the names of the modules it
# imported to the file named by the first argument.
PROBE = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
from converge_rules.cli import main
try:
    main(args, prog_name="converge")
except SystemExit:
    pass
with open(out, "w", encoding="utf-8") as f:
    json.dump(sorted(sys.modules), f)
"""

HEAVY = ("pydantic", "rich", "lark", "re2", "pluggy", "asyncio", "concurrent.futures",
         "multiprocessing", "converge_rules.engine", "converge_rules.compiler",
         "converge_rules.api")
"""Libraries and layers that neither ``--version`` nor ``--help`` may import."""


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    """The modules a ``converge ARGS...`` process has imported when it is done."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "CONVERGE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert out.exists(), done.stdout + done.stderr
    return set(json.loads(out.read_text(encoding="utf-8")))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (each a module or a package, with its sub-modules) were
    imported."""
    return sorted(m for m in modules for name in names if m == name or m.startswith(name + "."))


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_import_no_heavy_library_and_no_command(
        tmp_path: Path, args: list[str]) -> None:
    modules = imported_by(tmp_path, *args)
    assert "converge_rules.cli" in modules  # the probe did run the CLI
    assert loaded(modules, HEAVY) == []
    commands = [f"converge_rules.cli.{name}" for name in COMMANDS]
    assert sorted(set(commands) & modules) == []


def test_check_imports_neither_the_engine_nor_the_compiler_nor_pydantic(
        tmp_path: Path) -> None:
    modules = imported_by(tmp_path, "check", "--no-plugins", str(PRICING))
    assert "converge_rules.language.checks.checker" in modules  # it did check
    assert loaded(modules, (
        "converge_rules.engine", "converge_rules.compiler", "converge_rules.api",
        "converge_rules.plugins", "pydantic", "rich", "pluggy", "asyncio",
        "concurrent.futures", "multiprocessing", "jinja2", "converge_rules.report")) == []
    others = {f"converge_rules.cli.{name}" for name in COMMANDS} - {"converge_rules.cli.check"}
    assert sorted(others & modules) == []


def test_check_with_the_plugin_layer_loads_no_engine_and_no_pydantic(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in plugins register executors, resolvers and a store without importing
    the engine; the first-party plugins import their HTTP and LLM clients only when
    called. (A plugin's own pydantic models still cost what they cost.)"""
    monkeypatch.setenv("CONVERGE_DISABLE_PLUGINS",
                       "converge-http,converge-llm,converge-example,converge-ray")
    modules = imported_by(tmp_path, "check", str(PRICING))
    assert "converge_rules.plugins.manager" in modules  # the plugins were loaded
    assert loaded(modules, (
        "converge_rules.engine.runner", "converge_rules.engine.executors",
        "converge_rules.engine.inputs", "converge_rules.compiler", "pydantic", "asyncio",
        "concurrent.futures", "multiprocessing")) == []


def test_check_with_the_first_party_plugins_imports_neither_pydantic_nor_their_clients(
        tmp_path: Path) -> None:
    """Their tools name their functions and models by reference with the types
    declared, so checking a ruleset that calls one (pricing calls ``fx_rate``) needs
    neither pydantic nor httpx nor llm."""
    modules = imported_by(tmp_path, "check", str(PRICING))
    assert "converge_rules.language.checks.checker" in modules  # it did check
    assert {"converge_http", "converge_llm", "converge_example"} <= modules
    # converge-ray, where installed, imports Ray only when a job builds its executor
    assert loaded(modules, ("pydantic", "httpx", "llm", "asyncio", "converge_http.tool",
                            "converge_llm.tool", "converge_example.fx", "ray")) == []


def test_importing_the_package_imports_none_of_its_stages(tmp_path: Path) -> None:
    out = tmp_path / "modules.json"
    code = ("import json, sys, converge_rules; "
            f"json.dump(sorted(sys.modules), open({str(out)!r}, 'w'))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    modules = set(json.loads(out.read_text(encoding="utf-8")))
    assert loaded(modules, (*HEAVY, "click", "converge_rules.language")) == []


@pytest.mark.parametrize("name", sorted(converge_rules.__all__))
def test_every_public_name_is_there_when_asked_for(name: str) -> None:
    value = getattr(converge_rules, name)
    assert value is not None
    assert name in dir(converge_rules)
    if name != "__version__":
        assert getattr(value, "__name__", name) == name  # the object itself, not a module


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        converge_rules.nope  # noqa: B018
    assert not hasattr(converge_rules, "nope")


def test_the_public_names_are_the_stages_own_objects() -> None:
    from converge_rules.api import load, run
    from converge_rules.errors import CheckError
    from converge_rules.language.syntax.parser import parse

    assert converge_rules.load is load and converge_rules.run is run
    assert converge_rules.parse is parse and converge_rules.CheckError is CheckError


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_help_summary_table_says_what_the_command_says(name: str) -> None:
    """`converge --help` summarises each command from the table without importing it;
    the summary must be what click would make of the command's own help, at any
    terminal width."""
    command = main.commands[name]
    stand_in = click.Command(name, help=COMMANDS[name])
    for limit in (20, 45, 76, 94, 200):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


@pytest.mark.parametrize("width", [60, 80, 200])
def test_help_is_what_click_writes_with_every_command_imported(width: int) -> None:
    settings = {"params": main.params, "help": main.help,
                "context_settings": main.context_settings}
    lazy = LazyGroup(name="converge", **settings)  # nothing imported through it yet
    plain = click.Group(name="converge", commands=[main.commands[n] for n in COMMANDS],
                        **settings)
    runner = CliRunner()
    shown = runner.invoke(lazy, ["--help"], terminal_width=width)
    assert shown.exit_code == 0
    assert shown.output == runner.invoke(plain, ["--help"], terminal_width=width).output
    assert all(not lazy.commands.is_loaded(name) for name in COMMANDS)
    assert all(f"\n  {name} " in shown.output for name in COMMANDS)


def test_a_mistyped_command_is_still_offered_its_correction() -> None:
    result = CliRunner().invoke(main, ["chek", "x.cvg"])
    assert result.exit_code == 2
    assert "No such command 'chek'" in result.output
    assert "Did you mean 'check'?" in result.output


def test_a_command_added_to_the_group_is_listed_and_runs() -> None:
    group = LazyGroup(name="converge")

    @click.command("hello")
    def hello() -> None:
        """Say hello."""
        click.echo("hello")

    group.add_command(hello)
    assert "hello" in group.commands and len(group.commands) == len(COMMANDS) + 1
    runner = CliRunner()
    assert runner.invoke(group, ["hello"]).output == "hello\n"
    assert "hello    Say hello." in runner.invoke(group, ["--help"]).output


def test_test_imports_jinja2_only_to_write_an_html_report(tmp_path: Path) -> None:
    plain = imported_by(tmp_path, "test", str(PRICING))
    assert "converge_rules.testing.runner" in plain  # it did run the tests
    assert loaded(plain, ("jinja2", "converge_rules.report")) == []
    page = tmp_path / "tests.html"
    with_report = imported_by(tmp_path, "test", str(PRICING), "--report", str(page))
    assert "jinja2" in with_report
    assert page.exists()


def test_a_job_of_plainly_right_facts_imports_neither_pydantic_nor_asyncio(
        tmp_path: Path) -> None:
    """Reading facts that are plainly right needs no pydantic (the plain check of
    engine/input_check.py), and a serial job with no async tool needs no event loop
    (``converge run`` in CI, a benchmark's whole process)."""
    from converge_rules.benchmarks import CLOSURE_RULESET

    (tmp_path / "closure.cvg").write_text(CLOSURE_RULESET, encoding="utf-8")
    (tmp_path / "edges.jsonl").write_text(
        "".join(json.dumps({"Edge": {"src": i, "dst": i + 1}}) + "\n" for i in range(5)),
        encoding="utf-8")
    modules = imported_by(tmp_path, "run", "--no-plugins", str(tmp_path / "closure.cvg"),
                          "--facts", str(tmp_path / "edges.jsonl"), "--format", "json")
    assert "converge_rules.engine.runner" in modules  # the job did run
    assert loaded(modules, ("pydantic", "asyncio", "multiprocessing", "ctypes",
                            "converge_rules.engine.trace_models")) == []


def test_a_bad_fact_is_still_reported_by_pydantic_s_validation(tmp_path: Path) -> None:
    """A fact the plain check is not sure of goes to pydantic, which says what is
    wrong, as before."""
    from converge_rules.benchmarks import CLOSURE_RULESET

    (tmp_path / "closure.cvg").write_text(CLOSURE_RULESET, encoding="utf-8")
    (tmp_path / "edges.jsonl").write_text('{"Edge": {"src": 1, "dst": 2}}\n'
                                          '{"Edge": {"src": 1, "dts": 3}}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "--no-plugins", str(tmp_path / "closure.cvg"),
                                       "--facts", str(tmp_path / "edges.jsonl")])
    assert result.exit_code == 2
    assert "edges.jsonl" in result.output and ":2" in result.output
    assert "Edge has no field `dts`" in result.output and "did you mean `dst`?" in result.output


RUN_PROBE = """
import json, sys
import converge_rules
from converge_rules.benchmarks import CLOSURE_RULESET
ruleset = converge_rules.loads(CLOSURE_RULESET, plugins=False)
trace = sys.argv[2] if len(sys.argv) > 2 else None
result = converge_rules.run(ruleset, [("Edge", {"src": 1, "dst": 2})], trace=trace)
assert result.status == "converged", result.status
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(sorted(sys.modules), f)
"""


def test_a_run_without_a_store_or_trace_builds_none_of_the_store_s_records(
        tmp_path: Path) -> None:
    """``converge_rules.store.base`` (the store's protocols and its records'
    dataclasses, built at import) is imported for a run given a trace or a store, not
    for one without (a benchmark's whole process); given a trace file, the run still
    writes it."""
    out = tmp_path / "modules.json"
    for trace in ((), (str(tmp_path / "trace.jsonl"),)):
        done = subprocess.run([sys.executable, "-c", RUN_PROBE, str(out), *trace],
                              cwd=REPO, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        modules = set(json.loads(out.read_text(encoding="utf-8")))
        assert "converge_rules.engine.runner" in modules  # the job did run
        assert ("converge_rules.store.base" in modules) == bool(trace)
    assert (tmp_path / "trace.jsonl").read_text(encoding="utf-8").count("\n") > 2


def test_a_cached_load_and_a_run_without_a_trace_load_no_openssl_and_no_pluggy(
        tmp_path: Path) -> None:
    """The program cache seals and keys its entries with the built-in BLAKE2b, and the
    engine imports ``hashlib`` only where it hashes (trace lines, store rows, held facts'
    ids, tool memo keys): a cache hit and a run of the built-ins without a trace never
    load OpenSSL (``_hashlib``, ~2 ms of a start). A run writing a trace still hashes
    its lines. ``plugins=False`` loads no pluggy (plugins/collecting.py)."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "CONVERGE_CACHE_DIR": str(tmp_path / "cache")}
    for number, trace in enumerate(((), (), (str(tmp_path / "trace.jsonl"),))):
        done = subprocess.run([sys.executable, "-c", RUN_PROBE, str(out), *trace],
                              cwd=REPO, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        modules = set(json.loads(out.read_text(encoding="utf-8")))
        assert "converge_rules.engine.runner" in modules  # the job did run
        # the built-ins alone are registered without pluggy and the plugin manager
        assert loaded(modules, ("pluggy", "converge_rules.plugins.manager")) == []
        if number == 0:  # a miss: compiled, and the program stored
            assert list((tmp_path / "cache").glob("program-*"))
        else:
            assert "converge_rules.compiler.compile" not in modules  # a hit
            assert ("_hashlib" in modules) == bool(trace)
            if not trace:  # a program without gates or invariants, no store
                assert loaded(modules, ("converge_rules.engine.gates",
                                        "converge_rules.engine.invariants",
                                        "converge_rules.engine.tracerows")) == []
    from converge_rules.integrity import verify_lines

    lines = (tmp_path / "trace.jsonl").read_text(encoding="utf-8").splitlines()
    assert verify_lines(lines).ok


SPILL_PROBE = """
import json, sys
import converge_rules
from converge_rules.engine import trace
ruleset = converge_rules.load(sys.argv[2], plugins=False)
trace.SPILL_EVENTS = 16
result = converge_rules.run(ruleset, [("Edge", {"src": a, "dst": a + 1}) for a in range(40)])
assert result.status == "converged", result.status
assert len(result.trace) > len(result.trace.raw)  # it spilled
assert len(result.facts("Path")) == 40 * 41 // 2
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(sorted(sys.modules), f)
"""


def _spill_probe_modules(tmp_path: Path) -> set[str]:
    """The modules imported by :data:`SPILL_PROBE`'s second process: a closure job run
    from the program cache (the first process fills it) whose trace spills."""
    from converge_rules.benchmarks import CLOSURE_RULESET

    out, rules = tmp_path / "modules.json", tmp_path / "closure.cvg"
    rules.write_text(CLOSURE_RULESET, encoding="utf-8")
    env = {**os.environ, "CONVERGE_CACHE_DIR": str(tmp_path / "cache")}
    for _ in ("a miss", "a hit"):
        done = subprocess.run([sys.executable, "-c", SPILL_PROBE, str(out), str(rules)],
                              cwd=REPO, env=env, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr
    return set(json.loads(out.read_text(encoding="utf-8")))


def test_a_serial_run_spilling_its_trace_imports_neither_tempfile_nor_queues(
        tmp_path: Path) -> None:
    """The spool is made with ``os.open(O_TMPFILE)`` where tempfile would make it
    (tempfile's import pulls shutil, random, bz2 and lzma), ``queue`` is imported by
    the thread pool and the observer's relay, not by a serial job, and ``heapq`` by
    ``RunResult.fact_ids`` given a limit (a cached load: the compiler's lark imports
    tempfile)."""
    modules = _spill_probe_modules(tmp_path)
    assert "converge_rules.compiler.compile" not in modules
    assert "converge_rules.engine.runner" in modules  # the job did run
    assert loaded(modules, ("queue", "heapq")) == []
    if hasattr(os, "O_TMPFILE"):
        assert loaded(modules, ("tempfile", "random", "bz2", "lzma")) == []


def test_the_chain_s_genesis_is_the_hash_it_says() -> None:
    import hashlib

    from converge_rules.integrity import GENESIS

    assert hashlib.sha256(b"converge trace chain v1").digest() == GENESIS



INSPECT_PROBE = """
import json, sys
out, rules, facts = sys.argv[1:4]
import converge_rules
ruleset = converge_rules.load(rules, plugins=False)
facts = converge_rules.read_facts(ruleset, facts)
result = converge_rules.run(ruleset, facts)
assert result.status == "converged", result.status
modules = sorted(sys.modules)
# a hit compiles no text (typing's string annotations...): the first compile() of a
# process makes the 119 classes of Python's syntax tree
import gc
if "converge_rules.compiler.compile" not in sys.modules:
    assert not [t for t in gc.get_objects() if isinstance(t, type) and t.__module__ == "ast"]
# whoever asks for inspect then gets the module itself, dataclasses included
import dataclasses
@dataclasses.dataclass
class Undocumented:
    a: int
import inspect, types
assert type(inspect) is types.ModuleType and sys.modules["inspect"] is inspect
assert Undocumented.__doc__ == "Undocumented(a: int)", Undocumented.__doc__
assert dataclasses.inspect.signature is inspect.signature
import linecache, tokenize
assert sys.modules["tokenize"] is tokenize and linecache.tokenize.open is tokenize.open
code = ruleset.program.agents[0].fn.__code__  # a hit's agents show their lines
assert linecache.getline(code.co_filename, 1).startswith("# agent "), code.co_filename
with open(out, "w", encoding="utf-8") as f:
    json.dump(modules, f)
"""


def test_a_cached_load_and_run_import_no_inspect(tmp_path: Path) -> None:
    """``dataclasses`` imports ``inspect`` (with ``ast``, ``dis`` and ``tokenize``: ~5 ms
    of a start) only to write the docstring of a dataclass without one, ``linecache``
    ``tokenize`` only to read a source file: imported first by ``records`` and the
    program cache, each is given a stand-in that imports the module when first used
    (``deferred_imports``), and a cached load and a run of the built-ins import none
    of them. Whoever imports them afterwards, ``dataclasses`` and ``linecache`` too,
    has the modules."""
    from converge_rules.benchmarks import CLOSURE_RULESET

    out, rules = tmp_path / "modules.json", tmp_path / "closure.cvg"
    rules.write_text(CLOSURE_RULESET, encoding="utf-8")
    facts = tmp_path / "edges.jsonl"
    facts.write_text('{"Edge": {"src": 1, "dst": 2}}\n', encoding="utf-8")
    # bytecode written by the miss and read by the hit, whatever this process's
    # PYTHONDONTWRITEBYTECODE (importing a module from its text compiles it)
    env = {**os.environ, "CONVERGE_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPYCACHEPREFIX": str(tmp_path / "bytecode")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for _ in ("a miss", "a hit"):
        done = subprocess.run([sys.executable, "-c", INSPECT_PROBE, str(out), str(rules),
                               str(facts)],
                              cwd=REPO, env=env, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr
    modules = set(json.loads(out.read_text(encoding="utf-8")))
    assert "converge_rules.compiler.compile" not in modules  # a hit
    assert "converge_rules.engine.runner" in modules  # the job did run
    assert loaded(modules, ("inspect", "ast", "dis", "tokenize")) == []


def test_a_cached_load_and_run_take_the_time_types_from_the_c_module(tmp_path: Path) -> None:
    """``datetime.py`` defines every class in Python before replacing it with the C
    module's (~0.7 ms of a start): the modules of a cached load and run take the same
    classes from ``converge_rules.datetypes``, which imports ``_datetime``."""
    import datetime

    from converge_rules import datetypes

    for name in datetypes.__all__:
        assert getattr(datetypes, name) is getattr(datetime, name), name
    modules = _spill_probe_modules(tmp_path)
    assert "converge_rules.compiler.compile" not in modules  # a hit
    assert "converge_rules.engine.runner" in modules  # the job did run
    assert "datetime" not in modules and "_datetime" in modules
