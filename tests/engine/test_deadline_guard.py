"""The guards that cut the engine's own work (goals; resolvers and invariants in the
merge) at the job's deadline."""

from __future__ import annotations

import time

import pytest

from converge_rules.engine.deadline_guard import WATCHDOG, JobDeadline, Watchdog, cut_at, watching


def spin() -> None:
    while True:  # computes for ever, in Python
        pass


def test_a_block_still_computing_at_the_deadline_is_cut() -> None:
    with pytest.raises(JobDeadline), cut_at(0.2):
        spin()


def test_a_block_that_ends_in_time_is_left_alone_and_nothing_is_raised_later() -> None:
    with cut_at(0.2):
        pass
    time.sleep(0.4)  # past the timer's moment: no stray exception arrives


def test_an_exception_on_its_way_out_is_not_replaced() -> None:
    # a second Ctrl-C while the goals are cut must stay a KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt), cut_at(0.2):
        try:
            spin()
        except JobDeadline:
            raise KeyboardInterrupt from None


def test_the_watchdog_cuts_a_guarded_call_still_computing_at_the_deadline() -> None:
    watchdog = Watchdog(0.2)
    try:
        with pytest.raises(JobDeadline), watchdog.guarded("resolver 'r' decided"):
            spin()
        assert watchdog.doing == "resolver 'r' decided"
    finally:
        watchdog.close()


def test_the_watchdog_never_cuts_outside_a_guarded_call() -> None:
    # the merge between two plugin calls is never cut half way: the deadline passes
    # there, and the next guarded call is refused at once instead
    watchdog = Watchdog(0.1)
    try:
        with watchdog.guarded("first"):
            pass
        ends = time.monotonic() + 0.4
        while time.monotonic() < ends:  # computing, unguarded, across the deadline
            pass
        assert watchdog.expired
        with pytest.raises(JobDeadline), watchdog.guarded("second"):
            pytest.fail("a call past the deadline must not start")
        assert watchdog.doing == "second"
    finally:
        watchdog.close()


def test_a_guarded_call_that_ends_in_time_leaves_nothing_pending() -> None:
    watchdog = Watchdog(0.2)
    try:
        with watchdog.guarded("quick"):
            pass
        time.sleep(0.4)  # the timer fires with nothing guarded: no stray exception
        assert watchdog.doing == ""
    finally:
        watchdog.close()


def test_watching_sets_the_watchdog_for_the_block_only() -> None:
    assert WATCHDOG.get() is None
    with watching(5.0) as watchdog:
        assert WATCHDOG.get() is watchdog is not None
    assert WATCHDOG.get() is None
    with watching(None) as none:
        assert none is None and WATCHDOG.get() is None
