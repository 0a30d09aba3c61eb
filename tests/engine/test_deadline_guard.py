"""The guard that cuts the engine's own work (goals) at the job's deadline."""

from __future__ import annotations

import time

import pytest

from converge_rules.engine.deadline_guard import JobDeadline, cut_at


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
