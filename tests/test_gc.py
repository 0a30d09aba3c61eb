"""The collector pause: overlapping jobs in threads of one process leave the collector
as they found it, and none of them runs with it on."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import converge_rules
from converge_rules._gc import paused_gc
from converge_rules.benchmarks import CLOSURE_RULESET, chain
from converge_rules.engine import CycleProgress

WAIT = 10.0  # seconds; a job that waits longer has deadlocked and fails the test


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def _overlap(first: Callable[[Callable[[], None]], None],
             second: Callable[[Callable[[], None]], None]) -> list[bool]:
    """Run ``first`` and ``second`` in two threads so that ``first`` starts, then
    ``second`` starts, then ``first`` ends while ``second`` still runs. Each job gets a
    ``checkpoint`` to call from inside its work. Returns whether the collector was
    enabled at each checkpoint: first's, second's, second's after first ended."""
    seen: list[bool] = []
    first_inside, second_inside, first_done = (threading.Event() for _ in range(3))
    errors: list[BaseException] = []

    def first_checkpoint() -> None:
        if first_inside.is_set():
            return
        seen.append(gc.isenabled())
        first_inside.set()
        assert second_inside.wait(WAIT)

    def second_checkpoint() -> None:
        if second_inside.is_set():
            return
        seen.append(gc.isenabled())
        second_inside.set()
        assert first_done.wait(WAIT)
        seen.append(gc.isenabled())

    def job_a() -> None:
        try:
            first(first_checkpoint)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)
        finally:
            first_done.set()

    def job_b() -> None:
        assert first_inside.wait(WAIT)
        try:
            second(second_checkpoint)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=job_a), threading.Thread(target=job_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
        assert not t.is_alive()
    assert not errors, errors
    return seen


def _paused(checkpoint: Callable[[], None]) -> None:
    with paused_gc():
        checkpoint()


@pytest.mark.parametrize("enabled", [True, False])
def test_overlapping_pauses_keep_the_collector_off_and_restore_it_after_both(
    enabled: bool,
) -> None:
    if enabled:
        gc.enable()
    else:
        gc.disable()
    seen = _overlap(_paused, _paused)
    assert seen == [False, False, False]
    assert gc.isenabled() is enabled


def test_nested_pauses_restore_on_the_outermost_exit() -> None:
    gc.enable()
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_left_by_an_exception_still_restores() -> None:
    gc.enable()
    with pytest.raises(RecursionError), paused_gc():
        raise RecursionError
    assert gc.isenabled()


def _run(checkpoint: Callable[[], None]) -> None:
    def progress(_: CycleProgress) -> None:
        checkpoint()

    ruleset = converge_rules.loads(CLOSURE_RULESET, plugins=False)
    facts = [("Edge", {"src": a, "dst": b}) for a, b in chain(5)]
    assert converge_rules.run(ruleset, facts, progress=progress).status == "converged"


@pytest.mark.parametrize("enabled", [True, False])
def test_two_runs_in_threads_never_collect_and_restore_the_collector(enabled: bool) -> None:
    if enabled:
        gc.enable()
    else:
        gc.disable()
    seen = _overlap(_run, _run)
    assert seen == [False, False, False]
    assert gc.isenabled() is enabled


@pytest.mark.parametrize("enabled", [True, False])
def test_a_parse_leaves_the_collector_as_it_found_it(enabled: bool) -> None:
    if enabled:
        gc.enable()
    else:
        gc.disable()
    assert converge_rules.parse(CLOSURE_RULESET).module is not None
    assert gc.isenabled() is enabled
    with paused_gc():
        converge_rules.parse(CLOSURE_RULESET)
        assert not gc.isenabled()
    assert gc.isenabled() is enabled


@pytest.mark.parametrize("enabled", [True, False])
def test_loading_and_reading_facts_leave_the_collector_as_they_found_it(
        enabled: bool, tmp_path: Path) -> None:
    # load, loads and read_facts pause collection while they work (they make modules,
    # classes, a program and facts, no garbage); they restore it, also when they fail
    if enabled:
        gc.enable()
    else:
        gc.disable()
    cvg = tmp_path / "closure.cvg"
    cvg.write_text(CLOSURE_RULESET, encoding="utf-8")
    facts = tmp_path / "edges.jsonl"
    facts.write_text('{"Edge": {"src": 1, "dst": 2}}\n', encoding="utf-8")
    ruleset = converge_rules.load(cvg, plugins=False)
    assert gc.isenabled() is enabled
    assert converge_rules.loads(CLOSURE_RULESET, plugins=False).name == "closure"
    assert gc.isenabled() is enabled
    assert len(converge_rules.read_facts(ruleset, facts)) == 1
    assert gc.isenabled() is enabled
    with pytest.raises(converge_rules.CheckError):
        converge_rules.loads("this is not a ruleset", plugins=False)
    assert gc.isenabled() is enabled
    facts.write_text('{"Edge": {"src": 1, "src": 2}}\n', encoding="utf-8")
    with pytest.raises(converge_rules.InputError):
        converge_rules.read_facts(ruleset, facts)
    assert gc.isenabled() is enabled


@pytest.mark.parametrize("enabled", [True, False])
def test_load_read_and_run_leave_the_collector_as_found_when_they_raise(
    enabled: bool, tmp_path: Path
) -> None:
    """load, loads, read_facts and run pause the collector (session 25): one that
    raises (a bad ruleset, a bad facts file, a bad argument) leaves it as it was."""
    bad = tmp_path / "bad.cvg"
    bad.write_text("ruleset bad\nfact A { x: nosuchtype }\n", encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"A": {"x": 1}}\n{"A": {"x": 1, "x": 2}}\n', encoding="utf-8")
    good = converge_rules.loads("ruleset good\nfact A { x: int }\n", plugins=False)
    calls: list[Callable[[], object]] = [
        lambda: converge_rules.load(bad, plugins=False),
        lambda: converge_rules.loads("ruleset bad\nfact A {", plugins=False),
        lambda: converge_rules.read_facts(good, facts),
        lambda: converge_rules.read_facts(good, tmp_path / "missing.jsonl"),
        lambda: converge_rules.run(good, "in.jsonl"),  # type: ignore[arg-type]
        lambda: converge_rules.run(object(), []),  # type: ignore[arg-type]
    ]
    for call in calls:
        if enabled:
            gc.enable()
        else:
            gc.disable()
        with pytest.raises(Exception):  # noqa: B017 (each raises its own error)
            call()
        assert gc.isenabled() is enabled
