"""Micro-batching: many threads each ask for one item, one worker answers them in batches.

A MiniLM forward pass over 16 short messages costs little more than over one, and on a 2-core
machine 16 threads each running their own pass fight over the cores. So the web server's
request threads hand their message to a `MicroBatcher`, whose single worker takes everything
that is waiting, runs the function once over the batch, and hands each caller its result.
It never waits to fill a batch: an idle server answers a lone message at once, and a busy one
batches what queued up during the previous pass.

This module knows nothing of models: it batches any `fn(list) -> list` of the same length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future


class MicroBatcher:
    """Call `fn` on batches of items submitted from any thread.

    Example: b = MicroBatcher(lambda xs: [x * 2 for x in xs]); b(21) -> 42
    """

    def __init__(self, fn: Callable[[list], list], *, max_batch: int = 32, name: str = "batcher"):
        self.fn = fn
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[object, Future]] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, daemon=True, name=name)
        self._worker.start()

    def __call__(self, item: object) -> object:
        future: Future = Future()
        self._queue.put((item, future))
        return future.result()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                results = self.fn([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
            except BaseException as exc:  # every caller of this batch gets the error, the worker lives on
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results):
                future.set_result(result)
