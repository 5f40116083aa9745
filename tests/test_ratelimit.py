"""RateLimiter: allow, refuse, the window sliding, off switch, independent keys, bounded memory."""

from __future__ import annotations

import threading

import pytest

from csbot.service.ratelimit import RateLimiter


def test_docstring_example(clock):
    limiter = RateLimiter(2, 60, clock=clock)
    assert [limiter.hit("a"), limiter.hit("a"), limiter.hit("a")] == [0.0, 0.0, 60.0]
    clock.now += 30
    assert limiter.hit("a") == pytest.approx(30.0)
    clock.now += 30
    assert limiter.hit("a") == 0.0


def test_window_slides_and_refusals_are_not_counted(clock):
    limiter = RateLimiter(2, 60, clock=clock)
    assert limiter.hit("a") == 0.0          # t=0
    clock.now += 30
    assert limiter.hit("a") == 0.0          # t=30
    clock.now += 10
    assert limiter.hit("a") == pytest.approx(20.0)  # t=40: the t=0 attempt leaves at t=60
    for _ in range(5):                      # hammering does not push the wait further out
        assert limiter.hit("a") == pytest.approx(20.0)
    clock.now += 20
    assert limiter.hit("a") == 0.0          # t=60: only t=30 is left in the window
    clock.now += 1
    assert limiter.hit("a") == pytest.approx(29.0)  # t=61: t=30 leaves at t=90


def test_keys_are_independent(clock):
    limiter = RateLimiter(1, 10, clock=clock)
    assert limiter.hit("a") == 0.0
    assert limiter.hit("a") == pytest.approx(10.0)
    assert limiter.hit("b") == 0.0
    assert limiter.hit("b") == pytest.approx(10.0)


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_zero_or_below_turns_it_off(clock, limit):
    limiter = RateLimiter(limit, 60, clock=clock)
    assert all(limiter.hit("a") == 0.0 for _ in range(50))
    assert len(limiter) == 0


def test_idle_keys_are_forgotten(clock):
    limiter = RateLimiter(1, 10, clock=clock)
    for key in ("a", "b", "c"):
        limiter.hit(key)
    assert len(limiter) == 3
    clock.now += 10
    limiter.hit("d")
    assert len(limiter) == 1


def test_memory_is_bounded_by_max_keys(clock):
    limiter = RateLimiter(1, 60, clock=clock, max_keys=3)
    for i in range(100):
        assert limiter.hit(f"client-{i}") == 0.0
        assert len(limiter) <= 3
    # The most recent keys are still limited; the oldest were dropped and start afresh.
    assert limiter.hit("client-99") > 0
    assert limiter.hit("client-0") == 0.0


def test_threads_never_let_more_than_limit_in(clock):
    limiter = RateLimiter(50, 60, clock=clock)
    allowed = []

    def worker():
        allowed.extend(1 for _ in range(40) if limiter.hit("shared") == 0.0)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 50


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="per_seconds"):
        RateLimiter(5, 0)
    with pytest.raises(ValueError, match="max_keys"):
        RateLimiter(5, 60, max_keys=0)
