"""Progress bars for the command-line tools (training/*.py, evaluate.py, predict.py).

On a terminal: tqdm, as before. In a log or a pipe (the stream is not a terminal) tqdm writes every
refresh with a carriage return and draws its final state twice (the loop's last refresh, then
close() again), which a log shows as two "100%" lines. There, ``progress`` writes whole lines
instead: the first, one per LOG_STEP_FRACTION of the total (or every LOG_STEP_SECONDS without a
total), and the final state exactly once.

    for item in progress(items, desc="predict", unit="file"):
        ...
    bar = progress(total=n, unit="frame"); bar.update(1); bar.close()
"""

from __future__ import annotations

import sys
import time

LOG_STEP_FRACTION = 0.1  # a log line per 10 % of the total
LOG_STEP_SECONDS = 30.0  # without a total: a line at most this often (seconds)


class LogProgress:
    """tqdm's iterate / update / close / context-manager API, written as whole lines (see module doc).

    iterable: wrapped (len() gives the total when ``total`` is None); total, initial: counts;
    desc, unit: as tqdm; file: the stream (default stderr). Other tqdm keywords are accepted and
    ignored (they only shape a terminal bar).
    """

    def __init__(self, iterable=None, total=None, initial: int = 0, desc: str | None = None, unit: str = "it",
                 file=None, **_terminal_only):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable) + initial
        self.iterable, self.total, self.n, self.desc, self.unit = iterable, total, initial, desc or "", unit
        self.file = file or sys.stderr
        self.start = time.perf_counter()
        self._printed_n = None
        self._printed_at = self.start
        self._closed = False
        self._write()

    def _line(self) -> str:
        elapsed = time.perf_counter() - self.start
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            return f"{head}{self.n}/{self.total} {self.unit} ({100.0 * self.n / self.total:.0f} %) in {elapsed:.1f} s"
        return f"{head}{self.n} {self.unit} in {elapsed:.1f} s"

    def _write(self) -> None:
        self._printed_n, self._printed_at = self.n, time.perf_counter()
        self.file.write(self._line() + "\n")
        self.file.flush()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.total:
            due = self.n - self._printed_n >= max(1, int(self.total * LOG_STEP_FRACTION)) or self.n >= self.total
        else:
            due = time.perf_counter() - self._printed_at >= LOG_STEP_SECONDS
        if due:
            self._write()

    def close(self) -> None:
        """Write the final state, unless the last line already shows it."""
        if not self._closed and self._printed_n != self.n:
            self._write()
        self._closed = True

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def progress(iterable=None, **kwargs):
    """tqdm(iterable, **kwargs) when the stream (kwargs "file", default stderr) is a terminal,
    else LogProgress(iterable, **kwargs)."""
    stream = kwargs.get("file") or sys.stderr
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        from tqdm import tqdm

        return tqdm(iterable, **kwargs)
    return LogProgress(iterable, **kwargs)
