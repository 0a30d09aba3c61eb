"""The compiled-program cache (``compiler/program_cache.py``): a second load of the same
ruleset skips parsing, checking and compiling, and runs exactly as the first; a damaged,
foreign or untrusted entry is a miss, never a crash; writers racing do not corrupt it;
``CONVERGE_CACHE_DIR=""`` turns it off."""

from __future__ import annotations

import importlib.util
import marshal
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules.compiler import program_cache
from converge_rules.language import loader
from converge_rules.language.syntax.parser_cache import digest

ROOT = Path(__file__).resolve().parents[2]


def _clips() -> Any:
    path = ROOT / "bench" / "classics" / "clips_facts.py"
    spec = importlib.util.spec_from_file_location("program_cache_clips_facts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


clips = _clips()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("CONVERGE_CACHE_DIR", str(directory))
    return directory


class Loads:
    """Counts how often the ruleset is really parsed (the loader runs)."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loads]:
    loads = Loads()
    real = loader.load_file

    def counting(*args: Any, **kwargs: Any) -> Any:
        loads.count += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(loader, "load_file", counting)
    yield loads


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("program-*.cvgc"))


def _waltz() -> tuple[converge_rules.Ruleset, Any]:
    ruleset = converge_rules.load(ROOT / "rulesets" / "waltz" / "waltz.cvg", plugins=False)
    return ruleset, clips.read_file(ROOT / "bench" / "data" / "waltz12.fct", ruleset.program)


def _manners() -> tuple[converge_rules.Ruleset, Any]:
    ruleset = converge_rules.load(ROOT / "rulesets" / "manners" / "manners.cvg",
                                  plugins=False)
    return ruleset, clips.read_file(ROOT / "bench" / "data" / "manners16.fct",
                                    ruleset.program)


def _pricing() -> tuple[converge_rules.Ruleset, Any]:
    ruleset = converge_rules.load(ROOT / "rulesets" / "pricing" / "pricing.cvg")
    return ruleset, converge_rules.read_facts(ruleset, ROOT / "rulesets" / "pricing" /
                                              "input.jsonl")


@pytest.mark.parametrize("load", [_waltz, _manners, _pricing])
def test_a_hit_runs_exactly_as_the_miss_that_stored_it(
        load: Any, cache: Path, parses: Loads, tmp_path: Path) -> None:
    missed, facts = load()
    assert parses.count == 1 and len(_entries(cache)) == 1
    hit, _ = load()
    assert parses.count == 1, "the second load parsed the ruleset again"
    first = converge_rules.run(missed, facts, trace=tmp_path / "miss.jsonl")
    second = converge_rules.run(hit, facts, trace=tmp_path / "hit.jsonl")
    assert second.to_json() == first.to_json()
    assert (tmp_path / "hit.jsonl").read_bytes() == (tmp_path / "miss.jsonl").read_bytes()
    assert hit.program.types == missed.program.types
    assert [a.source for a in hit.program.agents] == [a.source for a in missed.program.agents]
    assert hit.files == missed.files and hit.tools.keys() == missed.tools.keys()


WARNED = """\
ruleset warned
fact Item { id: int, size: int }
fact Big { id: int }
policy Big {
  keep all
}
agent big {
  when Item(id, size) where size > 10
  emit Big(id: id)
}
"""


def test_a_hit_has_the_same_checked_ruleset_and_warnings(cache: Path, parses: Loads) -> None:
    missed = converge_rules.loads(WARNED, path="warned.cvg")
    hit = converge_rules.loads(WARNED, path="warned.cvg")
    assert parses.count == 1
    assert hit.checked == missed.checked  # parsed and checked again, on first use
    assert parses.count == 2
    assert hit.warnings == missed.warnings and missed.warnings


def test_a_cached_agent_shows_its_generated_lines_in_tracebacks(cache: Path) -> None:
    import linecache

    converge_rules.loads(WARNED, path="lines.cvg")
    linecache.clearcache()  # as in a new process
    hit = converge_rules.loads(WARNED, path="lines.cvg")
    code = hit.program.agents[0].fn.__code__
    assert linecache.getline(code.co_filename, 1).startswith("# agent 'big'")


def test_an_edited_import_is_a_miss(cache: Path, tmp_path: Path, parses: Loads) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "types.cvg").write_text("ruleset types\nfact Item { id: int }\n")
    entry = folder / "main.cvg"
    entry.write_text('ruleset main\nimport "types.cvg"\nfact Out { id: int }\n'
                     "agent copy {\n  when Item(id)\n  emit Out(id: id)\n}\n")
    converge_rules.load(entry)
    (folder / "types.cvg").write_text("ruleset types\nfact Item { id: int, n: int = 1 }\n")
    edited = converge_rules.load(entry)
    assert parses.count == 2
    assert edited.program.type("Item").field_names == ("id", "n")


@pytest.mark.parametrize("linked", ["file", "folder"])
def test_an_import_through_a_symbolic_link_pointed_elsewhere_is_a_miss(
        linked: str, cache: Path, tmp_path: Path) -> None:
    # The entry's text and both imported files are unchanged; only the link moved.
    folder = tmp_path / "rules"
    for variant, factor in (("a", 2), ("b", 3)):
        (folder / variant).mkdir(parents=True)
        (folder / variant / "lib.cvg").write_text(
            f"ruleset lib{variant}\nfact Out {{ key n: int }}\n"
            f"agent scale {{\n  when In(n)\n  emit Out(n: n * {factor})\n}}\n")
    entry = folder / "main.cvg"
    entry.write_text('ruleset main\nimport "lib/lib.cvg"\nfact In { key n: int }\n'
                     if linked == "folder" else
                     'ruleset main\nimport "lib.cvg"\nfact In { key n: int }\n')
    link = folder / "lib" if linked == "folder" else folder / "lib.cvg"

    def point(variant: str) -> None:
        if link.is_symlink():
            link.unlink()
        link.symlink_to(folder / variant if linked == "folder"
                        else folder / variant / "lib.cvg")

    def outs() -> Any:
        result = converge_rules.run(converge_rules.load(entry), [("In", {"n": 5})])
        return result.facts("Out")

    point("a")
    assert outs() == [{"n": 10}]
    assert outs() == [{"n": 10}]  # a hit
    point("b")
    assert outs() == [{"n": 15}]  # as without the cache: b's agent, not a's
    point("a")
    assert outs() == [{"n": 10}]


def test_a_hit_checks_the_texts_its_program_was_built_from(cache: Path,
                                                            tmp_path: Path) -> None:
    # ``checked`` of a hit is built on first use: from what was loaded, not from the
    # files edited since (without the cache, it is built at load)
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "types.cvg").write_text("ruleset types\nfact In { key n: int }\n")
    entry = folder / "main.cvg"
    entry.write_text('ruleset main\nimport "types.cvg"\nfact Out { key n: int }\n'
                     "agent copy {\n  when In(n)\n  emit Out(n: n)\n}\n")
    converge_rules.load(entry)
    hit = converge_rules.load(entry)
    entry.write_text('ruleset other\nimport "types.cvg"\n')
    (folder / "types.cvg").write_text("ruleset types\nfact In { key m: str }\n")
    assert hit.checked.name == "main"
    assert [a.name.name for a in hit.checked.agents] == ["copy"]
    assert sorted(hit.checked.facts) == ["In", "Out"]
    assert [f.name.name for f in hit.checked.facts["In"].fields] == ["n"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX's")
@pytest.mark.parametrize("where", ["entry", "parser", "import"])
def test_a_named_pipe_in_place_of_a_file_is_a_miss_not_a_hang(
        where: str, cache: Path, tmp_path: Path) -> None:
    # Without the cache a pipe given as an import is refused; a pipe where an entry of
    # the cache or the parser's is read would block the open for ever (a writer never
    # comes): each is a miss. In a child process, so that a hang fails by its timeout.
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "types.cvg").write_text("ruleset types\nfact In { key n: int }\n")
    entry = folder / "main.cvg"
    entry.write_text('ruleset main\nimport "types.cvg"\nfact Out { key n: int }\n'
                     "agent copy {\n  when In(n)\n  emit Out(n: n)\n}\n")
    env = {**os.environ, "CONVERGE_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "converge_rules.cli", "run", str(entry), "--no-plugins"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    (stored,) = _entries(cache) if where == "entry" else sorted(cache.glob(
        "parser-*")) if where == "parser" else [folder / "types.cvg"]
    stored.unlink()
    os.mkfifo(stored)
    if where == "parser":  # (a program from the cache needs no parser)
        for program in _entries(cache):
            program.unlink()
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    if where == "import":  # as without the cache: the loader says what is wrong
        off = subprocess.run(command, capture_output=True, text=True, timeout=120,
                             env={**env, "CONVERGE_CACHE_DIR": ""})
        assert (again.returncode, again.stdout, again.stderr) == (
            off.returncode, off.stdout, off.stderr)
        assert again.returncode == 2
    else:
        assert (again.returncode, again.stdout) == (0, first.stdout), again.stderr


def test_a_cache_dir_naming_an_unknown_users_home_turns_the_cache_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVERGE_CACHE_DIR", "~no-such-user-r23c/cache")
    ruleset, facts = _manners()
    assert converge_rules.run(ruleset, facts).status == "converged"
    entry = tmp_path / "main.cvg"
    entry.write_text("ruleset main\nfact In { key n: int }\n")
    result = subprocess.run([sys.executable, "-m", "converge_rules.cli", "check", str(entry)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout + result.stderr


def _damage_truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _damage_flipped(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))


def _sealed(path: Path, payload: bytes) -> None:
    """``payload`` with a header whose checksum matches: only the contents can refuse."""
    seal = digest(payload).encode("ascii")
    path.write_bytes(b"converge-program-cache 2 " + seal + b"\n" + payload)


def _damage_foreign_key(path: Path) -> None:
    data = marshal.loads(path.read_bytes().split(b"\n", 1)[1])
    data["key"] = "0" * 40
    _sealed(path, marshal.dumps(data))


def _damage_unknown_class(path: Path) -> None:
    data = marshal.loads(path.read_bytes().split(b"\n", 1)[1])
    data["program"] = ("C", "os.system", {"command": "true"})
    _sealed(path, marshal.dumps(data))


def _damage_not_marshal(path: Path) -> None:
    _sealed(path, b"\xff\x00 not marshal data")


def _damage_wrong_shapes(path: Path) -> None:
    data = marshal.loads(path.read_bytes().split(b"\n", 1)[1])
    data["functions"][0]["code"] = "print('hello')"
    _sealed(path, marshal.dumps(data))


def _damage_group_writable(path: Path) -> None:
    path.chmod(0o664)


@pytest.mark.parametrize("damage", [
    _damage_truncated, _damage_flipped, _damage_foreign_key, _damage_unknown_class,
    _damage_not_marshal, _damage_wrong_shapes, _damage_group_writable,
    lambda path: path.write_bytes(b""),
])
def test_a_damaged_or_untrusted_entry_is_ignored_and_written_again(
        damage: Any, cache: Path, parses: Loads, tmp_path: Path) -> None:
    ruleset, facts = _waltz()
    expected = converge_rules.run(ruleset, facts).to_json()
    (entry,) = _entries(cache)
    damage(entry)
    again, _ = _waltz()  # a miss: loaded as without the cache, never a crash
    assert parses.count == 2
    assert converge_rules.run(again, facts).to_json() == expected
    if not entry.stat().st_mode & 0o022:
        third, _ = _waltz()  # the entry was written again: a hit
        assert parses.count == 2
        assert converge_rules.run(third, facts).to_json() == expected


def test_an_empty_cache_dir_setting_turns_the_cache_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parses: Loads) -> None:
    monkeypatch.setenv("CONVERGE_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _waltz()
    _waltz()
    assert parses.count == 2
    assert not list(tmp_path.rglob("program-*"))


def test_chosen_pruners_are_not_cached(cache: Path, parses: Loads) -> None:
    from converge_rules.plugins import load_registries

    registries = load_registries()
    if not registries.pruners:
        pytest.skip("no plugin registers a pruner here")
    name = next(iter(registries.pruners))
    for _ in range(2):
        converge_rules.load(ROOT / "rulesets" / "pricing" / "pricing.cvg", pruners=[name])
    assert parses.count == 2 and not _entries(cache)


def _race(directory: str, rounds: int) -> None:
    """One of several processes loading the same ruleset and writing its entry over
    and over, as concurrent misses do; every load must give the whole program."""
    from converge_rules.plugins import load_registries

    os.environ["CONVERGE_CACHE_DIR"] = directory
    kwargs = load_registries(entry_points=False).compiler_kwargs()
    for _ in range(rounds):
        ruleset = converge_rules.load(ROOT / "rulesets" / "waltz" / "waltz.cvg",
                                      plugins=False)
        assert len(ruleset.program.agents) > 30
        for path in _entries(Path(directory)):
            key = path.name[len("program-"):-len(".cvgc")]
            program_cache.save(Path(directory), key, ruleset.program, ruleset.files,
                               kwargs["functions"], kwargs["resolvers"])
            assert program_cache.load(Path(directory), key, kwargs["functions"],
                                      kwargs["resolvers"]) is not None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks writers")
def test_concurrent_writers_never_leave_a_damaged_entry(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_race, args=(str(directory), 4)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    (entry,) = _entries(directory)
    assert not list(directory.glob(".program-*"))  # no temporary file left behind
    header, payload = entry.read_bytes().split(b"\n", 1)
    assert header.endswith(digest(payload).encode("ascii"))


def test_the_cache_keeps_the_most_recently_used_entries(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    for i in range(5):
        path = directory / f"program-{i}.cvgc"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
    program_cache.evict(directory, max_entries=3)
    assert [p.name for p in _entries(directory)] == [f"program-{i}.cvgc" for i in (2, 3, 4)]
    program_cache.evict(directory, max_bytes=250)
    assert [p.name for p in _entries(directory)] == ["program-3.cvgc", "program-4.cvgc"]


@pytest.mark.parametrize("path", sorted((ROOT / "rulesets").glob("*/*.cvg")),
                         ids=lambda p: p.name)
def test_every_example_ruleset_is_stored_and_read_back(
        path: Path, cache: Path, parses: Loads) -> None:
    """A program field or constant of a type the cache cannot describe leaves the
    program out of the cache, silently (it is only a speed-up): this is where that
    shows. Extend ``program_cache._Encoder`` with the new type."""
    first = converge_rules.load(path)
    second = converge_rules.load(path)
    assert len(_entries(cache)) == 1 and parses.count == 1
    assert [a.source for a in second.program.agents] == \
        [a.source for a in first.program.agents]


def test_commands_say_the_same_with_and_without_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``converge check`` (its warnings) and ``converge run`` print the same, and exit
    the same, with the cache off, on a miss and on a hit."""
    from click.testing import CliRunner

    from converge_rules.cli import main

    rules = tmp_path / "warned.cvg"
    rules.write_text(WARNED, encoding="utf-8")
    facts = tmp_path / "items.jsonl"
    facts.write_text('{"Item": {"id": 1, "size": 20}}\n{"Item": {"id": 2, "size": 5}}\n',
                     encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    outputs = []
    for setting in ("", str(tmp_path / "cache"), str(tmp_path / "cache")):
        monkeypatch.setenv("CONVERGE_CACHE_DIR", setting)
        said = []
        for args in (["check", "warned.cvg"],
                     ["run", "warned.cvg", "--facts", "items.jsonl", "--format", "json"]):
            result = CliRunner().invoke(main, args)
            said.append((result.exit_code, result.output))
        outputs.append(said)
    assert _entries(tmp_path / "cache")
    assert outputs[0] == outputs[1] == outputs[2]
    assert "CVG403" in outputs[0][0][1]


def test_a_changed_compiler_is_a_miss(cache: Path, parses: Loads) -> None:
    """Converge's own code is part of the key (each module's size and modification
    time): a checkout whose code generator changed never runs programs the old one
    generated."""
    import converge_rules.compiler.codegen as codegen

    source = Path(codegen.__file__)
    before = source.stat()
    program_cache._code_fingerprint.cache_clear()
    try:
        converge_rules.loads(WARNED, path="code.cvg")
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
        program_cache._code_fingerprint.cache_clear()  # as a new process would
        converge_rules.loads(WARNED, path="code.cvg")
        assert parses.count == 2
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
        program_cache._code_fingerprint.cache_clear()



CONSTANTS = """\
ruleset constants
enum Level { low, high }
fact Claim { id: int, filed: date, at: datetime, level: Level = high, cap: float = 2.5 }
fact Late { id: int, by: duration, level: Level, due: date, cap: float, stamp: datetime }
agent late {
  when Claim(id, filed, at, level, cap)
    where filed > date("2026-01-01") and at < datetime("2026-12-06T10:00:00Z")
  emit Late(id: id, by: filed - date("2026-01-01") + 2h, level: level,
            due: filed + 30d, cap: cap * 2.0, stamp: at + 90m)
}
"""


def test_constants_of_every_kind_come_back_as_they_were(cache: Path, parses: Loads) -> None:
    """Dates, datetimes, durations, enum members and defaults in generated code: the
    cached program derives the same facts, value for value."""
    facts = [("Claim", {"id": 1, "filed": "2026-03-01", "at": "2026-12-01T08:00:00Z"}),
             ("Claim", {"id": 2, "filed": "2025-03-01", "at": "2026-12-01T08:00:00Z"}),
             ("Claim", {"id": 3, "filed": "2026-05-01", "at": "2026-12-07T08:00:00Z",
                        "level": "low", "cap": 1.0})]
    first = converge_rules.run(converge_rules.loads(CONSTANTS, path="k.cvg"), facts)
    cached = converge_rules.loads(CONSTANTS, path="k.cvg")
    assert parses.count == 1
    again = converge_rules.run(cached, facts)
    assert again.facts("Late") == first.facts("Late") and len(first.facts("Late")) == 1
    assert again.to_json() == first.to_json()


def test_a_process_loading_from_the_cache_imports_no_parser_checker_or_compiler(
        cache: Path) -> None:
    """What a hit skips, seen in a real process: lark, the syntax tree, the checker and
    the code generator are never imported (running the program needs none of them)."""
    import subprocess

    probe = ("import sys, converge_rules\n"
             f"converge_rules.load({str(ROOT / 'rulesets' / 'waltz' / 'waltz.cvg')!r}, "
             "plugins=False)\n"
             "print(sorted(m for m in ('lark', 'converge_rules.language.syntax.nodes', "
             "'converge_rules.language.checks.checker', 'converge_rules.compiler.codegen')"
             " if m in sys.modules))\n")
    env = {**os.environ, "CONVERGE_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    runs = [subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           env=env, check=True).stdout.strip() for _ in range(2)]
    assert runs[0] != "[]"  # the miss parses, checks and compiles
    assert runs[1] == "[]"
