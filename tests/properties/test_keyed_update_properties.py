"""The fused keyed update in place is an optimisation, never semantics.

* **Store**: ``FactStore.update_in_place(old, vals, cycle)`` leaves the store as
  ``add(type, vals, cycle)`` then ``remove(old)`` do — the same ids, live facts,
  index buckets (as id sequences), key holders, removal counts and log, cycles and
  fingerprint — on random sequences of new keys and updates, with indexes on the key,
  on another field and on both (an update whose other field changes moves between
  buckets; one that keeps it stays).
* **Updater**: ``FactStore.updater(type)``, the keyed lane's update in place for one
  merge, leaves the store as ``update_in_place`` does.
* **Merge**: ``KeyedMerge.merge_single`` (a key's only candidate, applied in one
  pass) gives the same status, facts, conflicts and trace, byte for byte, as the
  general keyed path alone, on random rulesets where agents update shared and own
  counters by every criterion the fast path decides (and others it does not), with
  ``emit lasting`` updates, facts derived from the counters (retracted with the value
  they rest on), agents routed by a non-key field, and input counters.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import converge_rules
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run
from converge_rules.engine.factstore import FactStore, Layout
from converge_rules.engine.keyed import KeyedMerge
from converge_rules.engine.result import RunResult
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program
from tests.store.test_checkpoints import check_resumes

PROFILE = settings(deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.data_too_large])

# ------------------------------------------------------------------ the store

#: one keyed type (id, n); indexes on the key, on n, on both
LAYOUT = Layout(types=1, indexes=((0, (0,)), (0, (1,)), (0, (0, 1))), keys=((0,),),
                intents=frozenset())


def _state(store: FactStore) -> tuple[Any, ...]:
    return (
        list(store.values), list(store.type_of), list(store.live[0]),
        [{k: list(b) for k, b in ix.items()} for ix in store.indexes],
        {k: store.incumbent(0, k) for k in ("a", "b", "c", "d")},
        list(store.removals), list(store.removal_log[0] or ()), store.live_count,
        list(store.cycle_starts), list(store.cycle_numbers), store.fingerprint,
        # what the next checkpoint's delta covers (update_in_place left the replaced
        # fact out: a job resumed from its checkpoints had both values of a key live)
        sorted(store.touched or ()),
    )


@settings(PROFILE, max_examples=300)
@given(ops=st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 3),
                              st.integers(0, 2), st.booleans()), max_size=25),
       keyed_early=st.booleans())
def test_update_in_place_leaves_the_store_as_add_then_remove(
    ops: list[tuple[str, int, int, bool]], keyed_early: bool
) -> None:
    fused, steps = FactStore(LAYOUT), FactStore(LAYOUT)
    for store in (fused, steps):
        store.log_removals([0])
        store.touched = set()  # as while a job writes checkpoints
        if keyed_early:
            store.incumbent(0, "a")  # the key table built before the first update
    cycle = 0
    for key, n, advance, general in ops:
        cycle += advance
        vals = (key, n)
        old = steps.incumbent(0, key)
        assert old == fused.incumbent(0, key)
        if old is None:
            assert fused.add(0, vals, cycle) == steps.add(0, vals, cycle)
        elif steps.values[old] != vals:
            new = steps.add(0, vals, cycle)
            steps.remove(old)
            if general:  # the general path's steps now and then: the key's bucket is
                # then a one-id dict, which a later update in place must keep right
                assert fused.add(0, vals, cycle) == new
                fused.remove(old)
            else:
                assert fused.update_in_place(old, vals, cycle) == new
        assert _state(fused) == _state(steps)


#: one keyed type (id, part, n) keyed by (id, part), as Waltz's Edge by (p1, p2):
#: indexes on the key, on part of it (an update keeps the bucket), on n, on id and n
PARTS = Layout(types=1, indexes=((0, (0, 1)), (0, (0,)), (0, (2,)), (0, (0, 2))),
               keys=((0, 1),), intents=frozenset())


@settings(PROFILE, max_examples=300)
@given(ops=st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 3),
                              st.integers(0, 2), st.sampled_from(("same", "fresh", "steps"))),
                    max_size=30),
       parts=st.booleans(), checkpoints=st.booleans())
def test_an_updater_leaves_the_store_as_update_in_place(
    ops: list[tuple[str, int, int, str]], parts: bool, checkpoints: bool
) -> None:
    # FactStore.updater: update_in_place with its lookups bound for one merge (the
    # keyed lane's), an index on part of the key told apart from one whose bucket an
    # update may change. A merge here is a run of ops in one cycle ("fresh": a new
    # merge, a new updater); "steps": the general add then remove on both stores (the
    # key's bucket is then a one-id dict, which a later update must keep right)
    bound, steps = FactStore(PARTS if parts else LAYOUT), FactStore(PARTS if parts else LAYOUT)
    if checkpoints:
        for store in (bound, steps):
            store.touched = set()  # as while a job writes checkpoints: the general path
    update = None
    cycle = 0
    for name, n, advance, how in ops:
        if advance or how == "fresh":
            update = None
        cycle += advance
        # (two ids share each part "a"/"b" of a key: "c" and "d" are ("a", 1), ("b", 1))
        key: Any = ("ab"["abcd".index(name) % 2], "abcd".index(name) // 2) if parts else name
        vals = (*key, n) if parts else (name, n)
        old = steps.incumbent(0, key)  # (builds the key table, as the lane's lookup does)
        assert old == bound.incumbent(0, key)
        if old is None:
            assert bound.add(0, vals, cycle) == steps.add(0, vals, cycle)
        elif steps.values[old] != vals:
            if how == "steps":
                for store in (bound, steps):
                    store.add(0, vals, cycle)
                    store.remove(old)
            else:
                if update is None:
                    update = bound.updater(0)
                assert update(old, vals, cycle, key) == steps.update_in_place(
                    old, vals, cycle, key)
        assert _state_of(bound) == _state_of(steps)


def _state_of(store: FactStore) -> tuple[Any, ...]:
    keys = {store.values[f][:len(store.layout.keys[0])] for f in store.live[0]}
    return (
        list(store.values), list(store.type_of), list(store.live[0]),
        [{k: list(b) for k, b in ix.items()} for ix in store.indexes],
        {k: store.incumbent(0, k if len(k) > 1 else k[0]) for k in sorted(keys)},
        list(store.removals), store.live_count, list(store.cycle_starts),
        list(store.cycle_numbers), store.fingerprint, sorted(store.touched or ()),
    )


# ------------------------------------------------------------------ the merge

# the first two decide most updates on the fused path; the others send it to the
# general one (the incumbent wins, a tie, a value that cannot be ranked)
CRITERIA = ("latest", "highest n", "earliest", "lowest n", "highest w",
            "highest confidence", "majority")


@st.composite
def update_rulesets(draw: st.DrawFn) -> str:
    keys = draw(st.integers(1, 2))
    first = draw(st.sampled_from(CRITERIA[:2]) | st.sampled_from(CRITERIA))
    criteria = [first, *draw(st.lists(st.sampled_from(CRITERIA), max_size=1))]
    criteria = list(dict.fromkeys(criteria))
    tie = draw(st.sampled_from(("first", "latest", "reject")))
    out = ["ruleset updates", "", 'root "r" { max_cycles = 14 }', "",
           "fact Count { key id: str, n: int, w: int? }", "fact Seen { id: str, n: int }",
           "fact Two { id: str }", "fact Seed { id: str }",
           f"policy Count {{ resolve by {', '.join(criteria)}\n  on tie {tie} }}", ""]
    for i in range(draw(st.integers(1, 5))):
        key = f"c{draw(st.integers(0, keys - 1))}"
        step = draw(st.sampled_from((1, 1, 2, -1)))
        w = draw(st.sampled_from(("", ", w: n", ", w: 0")))
        conf = draw(st.sampled_from(("", "", " confidence 0.5")))
        lasting = draw(st.sampled_from(("", "", "lasting ")))
        out += [f"agent step{i} {{", f'  when Count(id: "{key}", n) where n < 5 and n > -3',
                f'  emit {lasting}Count(id: "{key}", n: n + {step}{w}){conf}', "}"]
    if draw(st.booleans()):  # derived from the counters: retracted when they change
        out += ["agent mirror {", "  when Count(id, n)", "  emit Seen(id: id, n: n)", "}"]
    if draw(st.booleans()):  # routed by a field that is not the key
        out += ["agent two {", "  when Count(id, n: 2)", "  emit Two(id: id)", "}"]
    if draw(st.booleans()):  # a second proposer for a key now and then: a real group
        out += ["agent seed {", "  when Seed(id)", "  emit Count(id: id, n: 0)", "}"]
    return "\n".join(out) + "\n"


def _program(text: str) -> Program:
    checked = check_file("generated.cvg", source=text)
    errors = [f"{d.span}: {d.message}" for d in checked.diagnostics if d.is_error]
    assert not errors, "\n".join(errors) + "\n" + text
    return compile_ruleset(checked)


def _outcome(result: RunResult) -> tuple[Any, ...]:
    facts = {t.name: result.facts(t.name) for t in result.program.types}
    return (result.status, result.detail, result.cycles, facts, result.conflicts,
            result.trace.to_jsonl())


@settings(PROFILE, max_examples=150)
@given(text=update_rulesets(),
       seeds=st.lists(st.sampled_from(("c0", "c1", "c2")), max_size=2, unique=True),
       counts=st.lists(st.tuples(st.sampled_from(("c0", "c1", "c2")), st.integers(-1, 3)),
                       min_size=1, max_size=3, unique_by=lambda c: c[0])
       | st.just([("c0", 0), ("c1", 1)]))
def test_fused_update_records_what_the_general_path_does(
    text: str, seeds: list[str], counts: list[tuple[str, int]]
) -> None:
    note(text)
    program = _program(text)
    facts: list[tuple[str, dict[str, Any]]] = [("Seed", {"id": s}) for s in seeds]
    facts += [("Count", {"id": k, "n": n, "w": None}) for k, n in counts]
    updates = 0
    original = FactStore.update_in_place

    def counted(self: FactStore, *args: Any) -> int:
        nonlocal updates
        updates += 1
        return original(self, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FactStore, "update_in_place", counted)
        fused = run(program, facts)
    event("fused updates" if updates else "no fused update")
    event(f"status {fused.status}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KeyedMerge, "fused", False)
        unfused = run(program, facts)
        patch.setattr(KeyedMerge, "_merge_one", lambda *args: None)
        general = run(program, facts)
    assert _outcome(fused) == _outcome(unfused) == _outcome(general)


def test_the_benchmark_workload_takes_the_fused_path() -> None:
    """The keyed counters of ``converge bench`` are merged by the fused path (every
    update, none through the general one), with the same trace as without it."""
    from converge_rules.benchmarks import counters_ruleset

    program = _program(counters_ruleset(5, 8))
    facts = [("Count", {"id": f"c{i}", "n": 0}) for i in range(5)]
    general_calls = 0
    original = KeyedMerge.merge

    def counted(self: KeyedMerge, *args: Any) -> bool:
        nonlocal general_calls
        general_calls += 1
        return original(self, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KeyedMerge, "merge", counted)
        fused = run(program, facts)
        assert general_calls == 0
        patch.setattr(KeyedMerge, "fused", False)
        unfused = run(program, facts)
        assert general_calls == 5 * 8
    assert fused.status == "converged"
    assert {f["id"]: f["n"] for f in fused.facts("Count")} == {f"c{i}": 8 for i in range(5)}
    assert _outcome(fused) == _outcome(unfused)


@settings(PROFILE, max_examples=40)
@given(text=update_rulesets(),
       counts=st.lists(st.tuples(st.sampled_from(("c0", "c1", "c2")), st.integers(-1, 3)),
                       min_size=1, max_size=3, unique_by=lambda c: c[0]))
def test_fused_updates_resume_from_checkpoints_as_the_whole_run(
    text: str, counts: list[tuple[str, int]]
) -> None:
    """A job stopped after any cycle and resumed from its checkpoints equals the whole
    run: the fused update notes what the next checkpoint delta holds (it left the
    replaced value out, so the resumed job had both values of a key live)."""
    note(text)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "updates.cvg"
        path.write_text(text, encoding="utf-8")
        facts = [("Count", {"id": k, "n": n, "w": None}) for k, n in counts]
        check_resumes(converge_rules.load(path), facts,
                      lambda k: str(Path(tmp) / f"run{k}.db"), now=None)


# ------------------------------------------------- the serial executor's columns

@st.composite
def mixed_rulesets(draw: st.DrawFn) -> str:
    """:func:`update_rulesets` with runs that do not end as most do, beside the
    counters: an agent that raises now and then, one with two outputs, one that
    evaluates, one that calls a tool, one with two keyed outputs, one that fires one
    match at a time, one in a second tier that negates."""
    text = draw(update_rulesets())
    head, body = text.split("\n\n", 1)
    out = [head, "uses tool echo", "", body.rstrip("\n")]
    if draw(st.booleans()):  # raises when n is 2 (division by zero): discarded
        out += ["agent shaky {", '  when Count(id: "c0", n) where n < 4 and 6 / (n - 2) != 0',
                '  emit Count(id: "c0", n: n + 1)', "}"]
    if draw(st.booleans()):  # two outputs, one keyed
        out += ["agent pair {", '  when Count(id: "c1", n) where n < 4',
                '  emit Count(id: "c1", n: n + 1)', '  emit Seen(id: "c1", n: n)', "}"]
    if draw(st.booleans()):  # two keyed outputs: an update and a key of its own or c2's
        other = draw(st.sampled_from(("c2", "c9")))
        out += ["agent both {", '  when Count(id: "c0", n) where n < 4',
                '  emit Count(id: "c0", n: n + 1)', f'  emit Count(id: "{other}", n: n)', "}"]
    if draw(st.booleans()):  # one at a time: the runner refracts what fired
        out += ["agent once one at a time by earliest {", "  when Count(id, n) where n < 3",
                "  emit lasting Count(id: id, n: n + 1)", "}"]
    if draw(st.booleans()):
        out += ["agent judge {", "  when c: Count(id, n) where n == 2",
                '  evaluate c score 0.5 reason "two"', "}"]
    if draw(st.booleans()):  # a tool call: an effect with its calls
        out += ["agent caller {", '  when Count(id: "c2", n) where n < 3',
                "  call echo(n: n) as r", '  emit Count(id: "c2", n: r.n + 1)', "}"]
    if draw(st.booleans()):  # a second tier, negating a type that loses facts
        out += ["agent lonely tier 2 {", "  when Seed(id) and not Seen(id)",
                "  emit Two(id: id)", "}"]
    return "\n".join(out) + "\n"


def _echo(args: dict[str, Any]) -> dict[str, Any]:
    return {"n": args["n"]}


@settings(PROFILE, max_examples=120)
@given(text=mixed_rulesets(),
       seeds=st.lists(st.sampled_from(("c0", "c1", "c2")), max_size=2, unique=True),
       counts=st.lists(st.tuples(st.sampled_from(("c0", "c1", "c2")), st.integers(-1, 3)),
                       min_size=1, max_size=3, unique_by=lambda c: c[0]))
def test_serial_columns_merge_as_the_effects_do(
    text: str, seeds: list[str], counts: list[tuple[str, int]]
) -> None:
    """The serial executor's columns (``RunOutputs``, merged by ``KeyedMerge.lane``)
    give the same status, facts, conflicts and trace, byte for byte, as the same runs
    answered as one ``AgentEffect`` each, and as the general keyed path: whichever
    runs raise, call a tool, evaluate, have two outputs (keyed or not) or none, fire
    one at a time."""
    from converge_rules.engine import executors

    note(text)
    program = _program(text)
    facts: list[tuple[str, dict[str, Any]]] = [("Seed", {"id": s}) for s in seeds]
    facts += [("Count", {"id": k, "n": n, "w": None}) for k, n in counts]
    tools = {"echo": _echo}
    columns = 0
    original = executors._run_columns

    def counted(*args: Any) -> Any:
        nonlocal columns
        answer = original(*args)
        columns += type(answer) is executors.RunOutputs
        return answer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(executors, "_run_columns", counted)
        lane = run(program, facts, tools=tools)
    event("some cycle as columns" if columns else "no cycle as columns")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(executors, "_run_columns", lambda agents, acts, view, tools:
                      executors._run_serially(agents, acts, view, tools))
        effects = run(program, facts, tools=tools)
        patch.setattr(KeyedMerge, "fused", False)
        general = run(program, facts, tools=tools)
    assert _outcome(lane) == _outcome(effects) == _outcome(general)


def test_the_benchmark_workload_merges_columns() -> None:
    """``converge bench``'s keyed counters: every cycle is answered as columns and
    every update merged by the lane, none through ``merge_single`` or ``merge``."""
    from converge_rules.benchmarks import counters_ruleset
    from converge_rules.engine import executors

    program = _program(counters_ruleset(5, 8))
    facts = [("Count", {"id": f"c{i}", "n": 0}) for i in range(5)]
    answers: list[str] = []
    original = executors._run_columns

    def kept(*args: Any) -> Any:
        answer = original(*args)
        answers.append(type(answer).__name__)
        return answer

    def refused(*args: Any) -> bool:
        raise AssertionError("not the lane")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(executors, "_run_columns", kept)
        patch.setattr(KeyedMerge, "merge_single", refused)
        patch.setattr(KeyedMerge, "merge", refused)
        result = run(program, facts)
    assert answers == ["RunOutputs"] * 9  # 8 updates, then the runs that stop
    assert {f["id"]: f["n"] for f in result.facts("Count")} == {f"c{i}": 8 for i in range(5)}


def test_waltz_merges_columns_as_the_effects_do() -> None:
    """Waltz (bench/data/waltz12.fct): its agents emit several keyed updates a run and
    some fire one at a time; every cycle is merged from the serial executor's columns
    by the lane (none as effects), with the same facts and trace, byte for byte, as
    the same runs answered as effects and as the general keyed path."""
    from converge_rules.engine import executors, merge
    from tests.engine.test_classics import ROOT, clips

    ruleset = converge_rules.load(ROOT / "rulesets" / "waltz" / "waltz.cvg", plugins=False)
    program = ruleset.program
    facts = clips.read_file(ROOT / "bench" / "data" / "waltz12.fct", program)
    merged: list[str] = []
    original = merge.Merger.merge_cycle

    def kept(self: merge.Merger, cycle: int, effects: Any) -> bool:
        merged.append(type(effects).__name__)
        return original(self, cycle, effects)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(merge.Merger, "merge_cycle", kept)
        lane = run(program, facts)
    assert lane.status == "converged"
    assert set(merged) == {"RunOutputs"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(executors, "_run_columns", lambda agents, acts, view, tools:
                      executors._run_serially(agents, acts, view, tools))
        effects = run(program, facts)
        patch.setattr(KeyedMerge, "fused", False)
        general = run(program, facts)
    assert _outcome(lane) == _outcome(effects) == _outcome(general)


def test_a_group_of_one_lasting_value_is_merged_by_the_lane() -> None:
    """Two agents proposing one lasting update for a key in one cycle (a group of one
    value, as two Waltz rules labelling an edge alike) are merged by the lane in one
    pass (``KeyedMerge._fused_group``), with the same facts, conflicts and trace, byte
    for byte, as the same runs answered as effects and as the general keyed path."""
    from converge_rules.engine import executors

    program = _program("\n".join([
        "ruleset pairs", "fact Count { key id: str, n: int }",
        "policy Count { resolve by latest }",
        *(f"agent {name} {{\n  when Count(id, n) where n < 3\n"
          "  emit lasting Count(id: id, n: n + 1)\n}" for name in ("a", "b")),
    ]) + "\n")
    facts = [("Count", {"id": f"c{i}", "n": 0}) for i in range(3)]
    fused: list[bool] = []
    original = KeyedMerge._fused_group

    def kept(self: KeyedMerge, *args: Any) -> bool:
        fused.append(original(self, *args))
        return fused[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KeyedMerge, "_fused_group", kept)
        lane = run(program, facts)
    assert fused == [True] * 9                   # 3 keys, 3 updates each
    assert {f["id"]: f["n"] for f in lane.facts("Count")} == {f"c{i}": 3 for i in range(3)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(executors, "_run_columns", lambda agents, acts, view, tools:
                      executors._run_serially(agents, acts, view, tools))
        effects = run(program, facts)
        patch.setattr(KeyedMerge, "fused", False)
        general = run(program, facts)
    assert _outcome(lane) == _outcome(effects) == _outcome(general)
