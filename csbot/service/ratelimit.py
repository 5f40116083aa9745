"""A per-key sliding-window rate limiter: at most `limit` attempts in any `per_seconds`.

Each key (a client address, a user name) keeps the times of its allowed attempts in the last
window; an attempt is allowed while fewer than `limit` of them remain. A refused attempt is not
recorded, so a client that keeps hammering is let in again as soon as its oldest attempt ages out.

Example: RateLimiter(2, 60): hit("a") -> 0.0, hit("a") -> 0.0, hit("a") -> 60.0 (all at t=0);
at t=30 hit("a") -> 30.0; at t=60 hit("a") -> 0.0, because the first attempt left the window.

This module does not decide what a key is nor turn a refusal into an error or HTTP 429; the caller
does that (raising errors.RateLimited with `retry_after`). State lives in memory, per process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class RateLimiter:
    """Sliding-window limiter per key; `limit <= 0` turns it off. Forgets keys idle for a whole
    window, and keeps at most `max_keys` keys (dropping the longest-quiet first) so memory stays
    bounded when many different clients turn up."""

    def __init__(self, limit: int, per_seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000):
        if limit > 0 and per_seconds <= 0:
            raise ValueError(f"per_seconds must be above 0 when limit is {limit}; found {per_seconds}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1; found {max_keys}")
        self.limit = limit
        self.per_seconds = per_seconds
        self.clock = clock
        self.max_keys = max_keys
        self._lock = threading.Lock()
        # Ordered by each key's latest allowed attempt (oldest first), so idle keys sit at the
        # front and can be dropped without scanning the rest.
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, key: str) -> float:
        """Record an attempt by `key`: 0.0 when allowed, else seconds until one would be allowed.

        Example: RateLimiter(1, 10): hit("a") -> 0.0; 4 s later hit("a") -> 6.0; hit("b") -> 0.0
        """
        if self.limit <= 0:
            return 0.0
        now = self.clock()
        start = now - self.per_seconds  # attempts at or before this have left the window
        with self._lock:
            self._forget_idle(start)
            times = self._hits.get(key)
            if times is None:
                times = self._hits[key] = deque()
            while times and times[0] <= start:
                times.popleft()
            if len(times) >= self.limit:
                return times[0] - start
            times.append(now)
            self._hits.move_to_end(key)
            while len(self._hits) > self.max_keys:
                # A forgotten busy key starts afresh: under a flood of new keys that is the
                # price of bounded memory, and it only ever errs on the side of letting in.
                self._hits.popitem(last=False)
            return 0.0

    def _forget_idle(self, start: float) -> None:
        while self._hits:
            times = next(iter(self._hits.values()))
            if times and times[-1] > start:
                break
            self._hits.popitem(last=False)

    def __len__(self) -> int:
        """How many keys are remembered (for tests and the admin page)."""
        with self._lock:
            return len(self._hits)
