"""``converge bench``: built-in workloads, ratios against same-run baselines, and the
engine's answers checked against the baseline's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

import converge_rules
from converge_rules.benchmarks import (
    INPUT_FORMATS,
    INPUT_RULESET,
    chain,
    closure_baseline,
    counters_baseline,
    counters_ruleset,
    generated_ruleset,
    input_spec,
    parse_input_baseline,
    peak_rss,
    random_graph,
    routing_baseline,
    routing_readings,
    routing_ruleset,
    startup_times,
    write_input,
)
from converge_rules.cli import main
from converge_rules.engine import read_facts
from converge_rules.language.syntax.parser import parse


def test_quick_bench_reports_ratios_and_agreement_as_json() -> None:
    result = CliRunner().invoke(main, ["bench", "--quick", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [r["graph"] for r in report["closure"]] == ["chain 60", "random 150/300"]
    for row in report["closure"]:
        assert row["agree"] is True
        assert row["paths"] > 0 and row["ratio"] > 0
        assert row["target"] == 1.5 and row["met"] is (row["ratio"] <= 1.5)
    assert report["closure"][0]["paths"] == 59 * 60 // 2  # a chain of 60 nodes
    assert report["parse"]["lines"] > 400 and report["parse"]["parse_lines_per_s"] > 0
    assert [r["command"] for r in report["startup"]] == [
        "converge --version", "converge check RULESET", "converge check --no-plugins RULESET"]
    inputs = report["inputs"]
    assert [(r["format"], r["facts"]) for r in inputs] == [
        (fmt, n) for fmt in ("jsonl", "json", "csv") for n in (2_000, 20_000)]
    for row in inputs:
        assert row["facts_per_s"] > 0 and row["baseline_facts_per_s"] > 0
        assert row["linearity"] > 0  # a measure, not asserted: timings vary
    agents = report["agents"]
    assert [r["workload"] for r in agents] == [
        "20 agents matching Reading(kind: <constant>), 1,020 facts",
        "20 agents each updating its own keyed counter, 10 cycles"]
    for row in agents:
        assert row["agree"] is True
        assert row["baseline_s"] > 0 and row["engine_s"] > 0
        assert row["met"] in (True, False)  # a measure, not asserted: timings vary
    memory = report["memory"]
    assert [r["workload"] for r in memory] == [
        "20,000 input facts, converge run from JSON Lines, peak RSS",
        "keyed counter, peak RSS at 1,000 cycles / at 100"]
    for row in memory:
        assert row["agree"] is True  # the jobs really ran and held what they should
        assert row["baseline_mib"] > 0 and row["engine_mib"] > 0
        assert row["met"] is (row["ratio"] <= row["target"])
    assert [r["target"] for r in memory] == [1.5, 1.05]
    assert report["quick"] is True
    executors = report["executors"]
    assert [r["workload"] for r in executors] == [
        "16 agents x 3 cycles, threads", "16 agents x 3 cycles, asyncio",
        "100 agents x 3 cycles, asyncio",
        "4 join agents, 400 x 400 facts on 20 keys, processes (2 workers) / serial"]
    for row in executors:
        assert row["agree"] is True  # every run converged with every call answered
    for row in executors[:3]:
        assert row["ideal_s"] == 0.06 and row["met"] is (row["ratio"] <= row["target"])
        assert row["ratio"] >= 1.0  # no job beats waiting for its calls
    assert [r["target"] for r in executors] == [1.3, 1.3, 1.5, 1.6]
    assert executors[3]["met"] is (executors[3]["speedup"] >= 1.6)
    store = report["store"]
    assert [r["workload"] for r in store] == [
        "pruned job, 1,000 cycles", "keyed counter, 500 cycles", "closure, chain 100",
        "pruned job with the store, peak RSS at 1,000 cycles / at 100",
        "pruned job, store bytes per cycle at 1,000 cycles / at 100"]
    for row in store:
        assert row["agree"] is True  # the stored trace is the job's; the jobs converged
    for row in store[:3]:
        assert row["none_s"] > 0 and row["store_s"] > 0 and row["cpu_ratio"] > 0
        assert row["met"] is (row["ratio"] <= 1.3)
    assert store[3]["met"] is (store[3]["ratio"] is not None and store[3]["ratio"] < 1.2)
    size = store[4]
    assert size["met"] is (size["ratio"] <= 1.2)
    assert [n for n, _ in size["by_changed_facts"]] == [3, 9, 33]
    # more facts changed a cycle, more bytes a cycle: the store grows with the delta
    per = [b for _, b in size["by_changed_facts"]]
    assert per == sorted(per) and per[0] < per[-1]
    summary = report["summary"]
    assert [r["target"] for r in summary] == [
        "<= 1.5x", "<= 1.5x", "<= 3x", "<= 5 µs", "<= 1.5x", "<= 1.05x",
        "<= 1.3x", "<= 1.3x", "<= 1.5x", ">= 1.6x",
        "<= 1.3x", "<= 1.3x", "<= 1.3x", "< 1.2x", "<= 1.2x"]
    rows = [*report["closure"], *agents, *memory, *executors, *store]
    assert [r["met"] for r in summary] == [r["met"] for r in rows]
    assert summary[3]["measured"] == f"{agents[1]['engine_s'] * 1e6:.2f} µs"


def test_the_text_report_ends_with_every_target_and_whether_it_is_met() -> None:
    result = CliRunner().invoke(main, ["bench", "--quick"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    last = lines[-1]
    met, _, total = last.partition(" of ")
    assert total.startswith("15 targets met (--quick")
    rows = lines[-16:-1]
    assert [r.split()[0] for r in rows] == ["closure,", "closure,", "20", "20", "20,000",
                                            "keyed", "16", "16", "100", "4", "pruned",
                                            "keyed", "closure,", "pruned", "pruned"]
    verdicts = [r.endswith("  met") for r in rows]
    assert all(r.endswith(("  met", "  NOT met")) for r in rows)
    assert int(met) == sum(verdicts)


def test_peak_rss_is_the_childs_own_not_the_parents(tmp_path: Path) -> None:
    held = b"x" * 200_000_000  # resident in this process while the children run
    small, code = peak_rss([sys.executable, "-c", "pass"], tmp_path / "out")
    assert code == 0
    big, _ = peak_rss([sys.executable, "-c", "b = b'x' * 300_000_000"], tmp_path / "out")
    failed = peak_rss([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "out")
    assert len(held) == 200_000_000
    if small is None:  # Windows: the OS reports no child's peak
        return
    assert small < 100_000_000 < 300_000_000 < big
    assert failed[1] == 3
    printed = peak_rss([sys.executable, "-c", "print('hello')"], tmp_path / "out")
    assert printed[1] == 0 and (tmp_path / "out").read_text() == "hello\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no report left behind


def test_the_many_agent_hand_loops_compute_what_the_rulesets_do() -> None:
    pairs = routing_readings(5, 23)
    ruleset = converge_rules.loads(routing_ruleset(4), plugins=False)
    result = converge_rules.run(ruleset, [("Reading", {"kind": k, "value": v})
                                          for k, v in pairs])
    seen = routing_baseline(4, pairs)
    assert seen == {"k0", "k1", "k2", "k3"}  # k4 has readings but no agent
    assert {f["kind"] for f in result.facts("Seen")} == seen
    cycles, runs, counts = counters_baseline(3, 4)
    assert counts == {"c0": 4, "c1": 4, "c2": 4} and runs == 3 * cycles
    ruleset = converge_rules.loads(counters_ruleset(3, 4), plugins=False)
    result = converge_rules.run(ruleset, [("Count", {"id": f"c{i}", "n": 0}) for i in range(3)])
    assert result.cycles == cycles
    assert {f["id"]: f["n"] for f in result.facts("Count")} == counts
    assert len(result.conflicts) == 3 * 4  # each update in place replaces the last value


def test_the_workloads_are_what_they_say() -> None:
    assert len(closure_baseline(chain(10))) == 55
    edges = random_graph(30, 50, seed=3)
    assert len(edges) == 50 and all(a != b for a, b in edges) and edges == sorted(edges)
    assert random_graph(30, 50, seed=3) == edges  # deterministic
    text = generated_ruleset(300)
    assert text.count("\n") >= 300
    assert parse(text, "generated.cvg").diagnostics == ()


def test_startup_is_measured_on_whole_processes_against_targets(tmp_path: Path) -> None:
    ruleset = tmp_path / "r.cvg"
    ruleset.write_text(generated_ruleset(100), encoding="utf-8")
    commands = [("version", ("--version",), 0.15), ("check", ("check", "{ruleset}"), 1e-9)]
    rows = startup_times(ruleset, runs=2, commands=commands)
    assert [r["command"] for r in rows] == ["version", "check"]
    for row in rows:
        assert row["exit_code"] == 0  # the processes really ran the commands
        assert row["runs"] == 2 and 0 < row["best_s"] <= row["median_s"]
        assert row["median_cpu_s"] is None or row["median_cpu_s"] > 0
        assert row["met"] is (row["median_s"] <= row["target_s"])
    assert rows[1]["met"] is False  # no process starts in a nanosecond


def test_the_input_files_hold_what_they_say_in_every_format(tmp_path: Path) -> None:
    program = converge_rules.loads(INPUT_RULESET, plugins=False).program
    read = {}
    for fmt in INPUT_FORMATS:
        path = tmp_path / f"q.{fmt}"
        write_input(path, fmt, 50)
        assert parse_input_baseline(path, fmt) == 50
        read[fmt] = [vals for _, vals in read_facts(program, input_spec(path, fmt)).rows]
    assert read["jsonl"] == read["json"] == read["csv"]
    assert len(set(read["jsonl"])) == 50
