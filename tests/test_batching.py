"""MicroBatcher: concurrent callers share one call of the batch function, and each gets its own result."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from csbot.dialogue.batching import MicroBatcher


def test_a_lone_call_goes_straight_through():
    batcher = MicroBatcher(lambda xs: [x * 2 for x in xs])
    assert batcher(21) == 42


def test_callers_waiting_during_a_pass_share_the_next_one_and_get_their_own_results():
    sizes, gate = [], threading.Event()

    def double(xs):
        sizes.append(len(xs))
        gate.wait(5)  # the first pass is slow, so the others queue up behind it
        return [x * 2 for x in xs]

    batcher = MicroBatcher(double)
    with ThreadPoolExecutor(9) as pool:
        first = pool.submit(batcher, 0)
        while not sizes:
            threading.Event().wait(0.01)
        rest = [pool.submit(batcher, i) for i in range(1, 9)]
        while batcher._queue.qsize() < 8:
            threading.Event().wait(0.01)
        gate.set()
        assert first.result() == 0 and [f.result() for f in rest] == [i * 2 for i in range(1, 9)]
    assert sizes == [1, 8]


def test_an_error_reaches_every_caller_of_that_batch_and_the_worker_lives_on():
    def picky(xs):
        if "bad" in xs:
            raise ValueError("bad item")
        return [x.upper() for x in xs]

    batcher = MicroBatcher(picky)
    with pytest.raises(ValueError, match="bad item"):
        batcher("bad")
    assert batcher("good") == "GOOD"


def test_a_batch_function_returning_the_wrong_number_of_results_is_an_error():
    batcher = MicroBatcher(lambda xs: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        batcher("x")
