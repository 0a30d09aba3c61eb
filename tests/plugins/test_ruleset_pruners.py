"""Issue 10 item 11: `prune Quote using ttl(cycles: 7)` enables a plugin pruner from the
ruleset (only the Python API and `--pruner` could), its named arguments checked against
the parameters the pruner declares; an unknown pruner is an error with a "did you mean";
`converge fmt` keeps the syntax."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules.cli import main
from converge_rules.errors import CheckError, CompileError, PluginError
from converge_rules.language.format.formatter import format_source
from converge_rules.plugins import collect, get_plugin_manager
from converge_rules.plugins.registries import Registries

PLUGIN = """
from converge_rules.plugins.api import hookimpl


class Older:
    parameters = {"than": "int", "unless": "str?"}

    def __init__(self, than=0, unless=None):
        self.than, self.unless = than, unless

    def bind(self, arguments):
        return Older(**arguments)

    def __call__(self, fact_type, fields, age):
        return age > self.than and fields.get("vendor") != self.unless


class Everything:
    def __call__(self, fact_type, fields, age):
        return True


@hookimpl
def converge_register_pruners(register):
    register("older", Older(), "drops facts older than `than` cycles")
    register("everything", Everything())
"""

HEAD = """\
ruleset quotes "plugin pruners from the ruleset"
fact Quote { key vendor: str, amount: float }
fact Seen  { key vendor: str }
fact Tick  { key n: int }
agent seen {
  when Quote(vendor)
  emit Seen(vendor: vendor)
}
agent tick {
  when Tick(n) where n < 4
  emit Tick(n: n + 1)
}
policy Tick { resolve by latest }
"""


@pytest.fixture
def registries(write_module: Callable[[str, str], str]) -> Registries:
    write_module("older_pruner_plugin", PLUGIN)
    return collect(get_plugin_manager(["older_pruner_plugin"], entry_points=False))


def codes(error: CheckError) -> list[str]:
    return [d.code for d in error.diagnostics]


def test_a_pruner_with_arguments_applies_to_its_type_only(registries: Registries) -> None:
    ruleset = converge_rules.loads(HEAD + 'prune Quote using older(than: 1, unless: "b")\n',
                                   plugins=registries)
    facts = [("Quote", {"vendor": "a", "amount": 1.0}), ("Quote", {"vendor": "b", "amount": 2.0}),
             ("Tick", {"n": 0})]
    result = converge_rules.run(ruleset, facts)
    assert result.status == "converged", result.detail
    assert result.facts("Quote") == [{"vendor": "b", "amount": 2.0}]
    # the input Tick is older than one cycle too, but the rule names Quote alone
    assert {"n": 0} in result.facts("Tick") and {"n": 4} in result.facts("Tick")
    pruned = [line for line in result.trace.lines() if '"pruned"' in line]
    assert len(pruned) == 1 and '"vendor":"a"' in pruned[0].replace(" ", "")


def test_the_example_plugins_ttl_takes_cycles() -> None:
    ruleset = converge_rules.loads(HEAD + "prune Quote using ttl(cycles: 0)\n")
    result = converge_rules.run(ruleset, [("Quote", {"vendor": "a", "amount": 1.0})])
    assert result.facts("Quote") == [] and result.facts("Seen") == []


def test_an_unknown_pruner_is_an_error_with_did_you_mean(registries: Registries) -> None:
    with pytest.raises(CheckError) as info:
        converge_rules.loads(HEAD + "prune Quote using oldr(than: 1)\n", plugins=registries)
    (diag,) = info.value.diagnostics
    assert diag.code == "CVG805" and diag.help == "did you mean `older`?"
    assert (diag.span.line, diag.span.column) == (14, 19)


@pytest.mark.parametrize(("args", "message"), [
    ("(days: 7)", "pruner `older` has no parameter `days`"),
    ('(than: "7")', "the argument `than` of pruner `older` is str, not int"),
    ("(than: count(Quote()))", "the argument `than` of pruner `older` is not a constant"),
    ('(unless: "a")', "pruner `older` needs `than`"),
    ("", "pruner `older` needs `than`"),
])
def test_arguments_are_checked_against_the_declared_parameters(
    registries: Registries, args: str, message: str,
) -> None:
    with pytest.raises(CheckError) as info:
        converge_rules.loads(HEAD + f"prune Quote using older{args}\n", plugins=registries)
    assert "CVG806" in codes(info.value)
    assert message in [d.message for d in info.value.diagnostics]


def test_a_pruner_without_parameters_takes_no_arguments(registries: Registries) -> None:
    with pytest.raises(CheckError) as info:
        converge_rules.loads(HEAD + "prune Quote using everything(now: true)\n",
                             plugins=registries)
    (diag,) = info.value.diagnostics
    assert diag.code == "CVG806" and "write `using everything`" in (diag.help or "")
    ruleset = converge_rules.loads(HEAD + "prune Quote using everything\n", plugins=registries)
    assert converge_rules.run(ruleset, [("Quote", {"vendor": "a", "amount": 1.0})]
                              ).facts("Quote") == []


def test_a_pruner_that_does_not_apply_to_the_type_stops_at_load() -> None:
    # without `cycles`, ttl reads a `ttl` field, which Quote lacks
    with pytest.raises(CompileError, match="the pruner `ttl` does not apply to Quote"):
        converge_rules.loads(HEAD + "prune Quote using ttl\n")


def test_run_without_plugins_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "q.cvg"
    path.write_text(HEAD + "prune Quote using ttl(cycles: 1)\n", encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Quote": {"vendor": "a", "amount": 1.0}}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(path), "-f", str(facts), "--no-plugins"])
    assert result.exit_code == 2
    assert "unknown pruner `ttl`" in result.output
    assert "Traceback" not in result.output
    ok = CliRunner().invoke(main, ["run", str(path), "-f", str(facts)])
    assert ok.exit_code == 0, ok.output


def test_fmt_round_trips_the_syntax() -> None:
    messy = HEAD + ('prune   Quote using older( than : -1 , unless:"x", )\n'
                    "prune Quote using ttl()\n")
    tidy = format_source(messy, "q.cvg")
    assert "prune Quote using older(than: -1, unless: \"x\")\n" in tidy
    assert "prune Quote using ttl\n" in tidy
    assert format_source(tidy, "q.cvg") == tidy


def test_parameters_without_bind_fail_at_registration(
    write_module: Callable[[str, str], str],
) -> None:
    write_module("unbound_pruner_plugin", """
from converge_rules.plugins.api import hookimpl

class Half:
    parameters = {"n": "int"}
    def __call__(self, fact_type, fields, age):
        return False

@hookimpl
def converge_register_pruners(register):
    register("half", Half())
""")
    with pytest.raises(PluginError, match="declares parameters but has no bind"):
        collect(get_plugin_manager(["unbound_pruner_plugin"], entry_points=False))


WINDOW_PLUGIN = """
from datetime import timedelta

from converge_rules.plugins.api import hookimpl


class Window:
    parameters = {"after": "duration", "vendors": "list[str]?"}

    def __init__(self, after=timedelta(0), vendors=None):
        assert isinstance(after, timedelta), after
        self.cycles = after // timedelta(days=1)
        self.vendors = vendors

    def bind(self, arguments):
        return Window(**arguments)

    def __call__(self, fact_type, fields, age):
        return age > self.cycles and fields.get("vendor") in (self.vendors or ())


@hookimpl
def converge_register_pruners(register):
    register("window", Window(), "drops facts older than `after` (one cycle a day)")
"""


def test_a_duration_argument_reaches_the_pruner_as_a_timedelta(
    write_module: Callable[[str, str], str],
) -> None:
    # the checker took `7d` for a constant (as the docs say) and the compiler refused
    # it: 'a pruner's argument must be a constant'
    write_module("window_pruner_plugin", WINDOW_PLUGIN)
    registries = collect(get_plugin_manager(["window_pruner_plugin"], entry_points=False))
    ruleset = converge_rules.loads(
        HEAD + 'prune Quote using window(after: 2d, vendors: ["a"])\n', plugins=registries)
    facts = [("Quote", {"vendor": "a", "amount": 1.0}), ("Quote", {"vendor": "b", "amount": 2.0}),
             ("Tick", {"n": 0})]
    assert converge_rules.run(ruleset, facts).facts("Quote") == [
        {"vendor": "b", "amount": 2.0}]
    assert "using window(after: 2d, vendors: [\"a\"])" in format_source(
        HEAD + 'prune Quote using window(after: 2d, vendors: ["a"])\n')


def test_a_wrong_argument_type_is_told_in_plain_words(registries: Registries) -> None:
    # the help said "give a int"
    with pytest.raises(CheckError) as info:
        converge_rules.loads(HEAD + 'prune Quote using older(than: "7")\n', plugins=registries)
    (diag,) = info.value.diagnostics
    assert diag.help == "give a value of type int"
