"""A worker pool with a bounded queue, used from the bot's asyncio event loop.

``workers`` threads run analyses (the models are loaded once and shared: FacePipeline's compiled
predictors are thread-safe once traced, and the MTCNN package call is serialised by
facepack/detect/mtcnn_detector.py's lock). At most ``workers + queue_size`` photos are admitted at a
time (downloading, waiting or running); ``try_reserve()`` is False beyond that and the bot answers
"busy" at once instead of letting a backlog grow. A slow photo holds one worker; the others go on.

    pool = AnalysisPool(workers=2, queue_size=16)
    if pool.try_reserve():
        try:
            result = await pool.run(fn, *args)
        finally:
            pool.release()

``try_reserve``/``release`` must be called from the event loop's thread (no lock needed there).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor


class AnalysisPool:
    """workers: threads running analyses (>= 1); queue_size: admitted photos beyond them (>= 0)."""

    def __init__(self, workers: int, queue_size: int):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 0:
            raise ValueError(f"--queue-size must be an integer >= 0, got {queue_size!r}")
        self.workers = workers
        self.capacity = workers + queue_size
        self.admitted = 0  # photos between try_reserve() and release()
        self.busy_replies = 0  # photos refused because the pool was full (since start)
        self.peak = 0  # most photos admitted at once (since start)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="facepack-bot")

    def try_reserve(self) -> bool:
        """Admit one photo if there is room; False (and counted) when full."""
        if self.admitted >= self.capacity:
            self.busy_replies += 1
            return False
        self.admitted += 1
        self.peak = max(self.peak, self.admitted)
        return True

    def release(self) -> None:
        if self.admitted <= 0:
            raise RuntimeError("AnalysisPool.release() without a matching try_reserve()")
        self.admitted -= 1

    async def run(self, fn, *args):
        """fn(*args) on a worker thread; returns (result, queue wait in ms)."""
        queued = time.perf_counter()

        def timed():
            wait_ms = (time.perf_counter() - queued) * 1e3
            return fn(*args), wait_ms

        return await asyncio.get_running_loop().run_in_executor(self._executor, timed)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
