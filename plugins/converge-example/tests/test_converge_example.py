"""The example plugin, used the way a ruleset uses it: ``policy … using median`` and
the ``ttl`` pruner added to a program, run by the engine."""

from __future__ import annotations

import pytest

from converge_rules import api
from converge_rules.errors import CheckError
from converge_rules.plugins import load_registries
from converge_rules.plugins.registries import Registries, program_with_pruners

PRICES = """
ruleset quotes
fact Quote { vendor: str, sku: str, amount: float }
fact Price { key sku: str, amount: float }

agent propose {
  when Quote(sku, amount)
  emit Price(sku: sku, amount: amount)
}

policy Price {
  resolve by using median, then lowest amount
  on tie first
}
"""

READINGS = """
ruleset readings
fact Reading { key sensor: str, value: float, ttl: int }
fact Alarm { sensor: str }
fact Tick { n: int }

agent alarm {
  when Reading(sensor, value) where value > 10.0
  emit Alarm(sensor: sensor)
}

agent tick {
  when Tick(n) where n < 3
  emit Tick(n: n + 1)
}
"""


@pytest.fixture(scope="module")
def registries() -> Registries:
    return load_registries()


def quotes(*amounts: float) -> list[tuple[str, dict[str, object]]]:
    return [("Quote", {"vendor": f"v{i}", "sku": "A1", "amount": a})
            for i, a in enumerate(amounts)]


def test_plugin_registers_a_resolver_and_a_pruner(registries: Registries) -> None:
    assert registries.resolvers["median"].plugin == "converge-example"
    assert registries.pruners["ttl"].plugin == "converge-example"


def test_median_resolves_a_conflict(registries: Registries) -> None:
    result = api.run(api.loads(PRICES), quotes(9.0, 1.0, 5.0))
    assert result.status == "converged"
    assert result.facts("Price") == [{"sku": "A1", "amount": 5.0}]
    assert "using median" in result.conflicts[0]["reason"]


def test_even_count_passes_the_two_middle_values_on(registries: Registries) -> None:
    result = api.run(api.loads(PRICES), quotes(9.0, 7.0, 1.0, 5.0))
    assert result.facts("Price") == [{"sku": "A1", "amount": 5.0}]


def test_an_unknown_resolver_is_a_check_error(registries: Registries) -> None:
    with pytest.raises(CheckError) as info:
        api.loads(PRICES.replace("using median", "using medium"))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "CVG407"
    assert "median" in (diagnostic.help or "")  # the installed resolver is suggested


def test_ttl_pruner_drops_facts_older_than_their_ttl(registries: Registries) -> None:
    ruleset = api.loads(READINGS, plugins=registries)
    pruned = api.loads(READINGS, plugins=registries, pruners=["ttl"])
    facts = [("Reading", {"sensor": "s1", "value": 1.0, "ttl": 1}),
             ("Reading", {"sensor": "s2", "value": 2.0, "ttl": 99}),
             ("Tick", {"n": 0})]
    result = api.run(pruned, facts)
    assert result.status == "converged"
    assert [r["sensor"] for r in result.facts("Reading")] == ["s2"]
    # Without the pruner both readings stay.
    plain = api.run(ruleset, facts)
    assert len(plain.facts("Reading")) == 2


def test_ttl_pruner_only_applies_to_types_with_a_ttl_field(registries: Registries) -> None:
    program = program_with_pruners(api.loads(READINGS).program, registries.objects("pruners"))
    assert [program.types[p.type_id].name for p in program.prunes] == ["Reading"]


def test_fx_rate_answers_known_currencies_and_fails_unknown_ones(
        registries: Registries) -> None:
    from converge_rules.errors import ToolError
    from converge_rules.plugins.registries import ValidatedTool

    tool = registries.tools["fx_rate"]
    assert tool.plugin == "converge-example"
    assert tool.signature().args == {"currency": "str"}
    assert tool.signature().result == {"usd": "float"}
    call = ValidatedTool(tool)
    assert call({"currency": "eur"}) == {"usd": 1.08}
    with pytest.raises(ToolError, match="no demo rate for 'XYZ'"):
        call({"currency": "XYZ"})


def test_the_pricing_example_gets_its_rates_from_the_plugin(registries: Registries) -> None:
    from pathlib import Path

    ruleset = api.load(Path(__file__).parents[3] / "rulesets" / "pricing" / "pricing.cvg",
                       plugins=registries)
    cost = ("Cost", {"sku": "A1", "amount": 10.0})
    euro = ("Quote", {"sku": "A1", "vendor": "euro", "amount": 11.0, "currency": "EUR"})
    yen = ("Quote", {"sku": "A1", "vendor": "odd", "amount": 1500.0, "currency": "XYZ"})
    result = api.run(ruleset, [cost, euro])
    assert result.status == "converged"
    assert result.facts("Rate") == [{"currency": "EUR", "usd": 1.08}]
    assert result.unmet == []
    # Both rates are fetched by one run of `fetch_rate`; the failed XYZ call discards
    # that run's whole effect (transactional effects), so neither rate is merged and
    # both intents stay open, listed in the result.
    result = api.run(ruleset, [cost, euro, yen])
    assert result.facts("Rate") == []
    assert {"EUR", "XYZ"} <= {c for u in result.unmet for c in ("EUR", "XYZ") if c in str(u)}


def test_the_declared_types_are_what_the_models_say() -> None:
    """``converge check`` reads the declared types without importing the models; a job
    imports the models. Both must describe the same tool."""
    import dataclasses

    from converge_example import FX_RATE

    derived = dataclasses.replace(FX_RATE, arg_types=None, result_types=None).signature()
    assert FX_RATE.signature() == derived
    FX_RATE.load()  # what a job does first: imports and compares, raising if they differ


SENSORS = """
ruleset sensors
uses tool knowledge_find
root "read" {
  max_cycles = 20
}
fact Step    { key n: int }
fact Reading { key n: int, value: int }
fact Seen    { key n: int, count: int, high: int }

agent step {
  when Step(n) where n < 6
  emit lasting Step(n: n + 1)
  emit lasting Reading(n: n, value: n * n)
}

agent look {
  when Step(n) where n == 6
  call knowledge_find(type: "ReadingSummary", cycle: 5) as s
  emit Seen(n: n, count: s.count, high: s.value_max)
}

prune Reading when age >= 1 into knowledge
"""


def test_the_summarize_hook_folds_moved_facts_into_a_summary_agents_can_read() -> None:
    ruleset = api.loads(SENSORS, plugins=load_registries(["converge_example"],
                                                         entry_points=False))
    result = api.run(ruleset, [("Step", {"n": 0})], now=None)
    assert result.status == "converged"
    (summary,) = [r.fields for r in result.knowledge.rows("ReadingSummary")
                  if r.fields["cycle"] == 5]
    # the Reading merged in cycle 4 (n: 3) moved in cycle 5
    assert summary == {"cycle": 5, "count": 1, "n_min": 3, "n_max": 3, "n_sum": 3,
                       "value_min": 9, "value_max": 9, "value_sum": 9}
    assert result.facts("Seen") == [{"n": 6, "count": 1, "high": 9}]
