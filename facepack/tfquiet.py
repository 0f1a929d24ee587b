"""TensorFlow's start-up noise, dropped from stderr for the command-line tools.

Importing TensorFlow 2.19 on a machine without a GPU writes lines such as

    E0000 00:00:... cuda_dnn.cc:8579] Unable to register cuDNN factory: Attempting to register factory ...
    E0000 00:00:... cuda_blas.cc:1407] Unable to register cuBLAS factory: ...
    W0000 00:00:... computation_placer.cc:177] computation placer already registered. ...

They come from XLA's absl logging before absl is initialised, so TF_CPP_MIN_LOG_LEVEL (set by
every entry point, and honoured by TensorFlow's own logging) does not hide them. ``install()`` -
called by the entry points only (facepack.cli.run_cli before it calls a tool's ``main``,
predict.py, training/evaluate.py, convert/to_tfjs.py), never by importing a library module -
makes the first ``import tensorflow`` (direct or through Keras) run with file descriptor 2 going
into a pipe read by a small child process (``filtered_stderr``). The child drops the complete
lines that match NOISE and copies every other line to the real stderr as soon as its newline
arrives (a last line without one: at the end of the import). Being a separate process it keeps
draining the pipe while the importing thread holds the GIL, and it still delivers what it was
given when the importing process crashes (abort, segfault). After the import fd 2 is the real
stderr again; the child is waited for at most WAIT_S seconds (longer only when a process started
during the import still holds the pipe: the child then ends with that process).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import subprocess
import sys
from contextlib import contextmanager

# Known harmless lines TensorFlow/XLA print while importing on a CPU-only machine.
NOISE = re.compile(
    r"Unable to register cu(DNN|BLAS|FFT) factory: Attempting to register factory for plugin"
    r"|computation placer already registered"
    r"|All log messages before absl::InitializeLog\(\) is called are written to STDERR")
WAIT_S = 2.0  # seconds the end of the block waits for the filter to pass on the last lines

# The filter process: argv[1] is the pattern; stdin the pipe; stdout the real stderr. It ignores
# Ctrl-C (the parent decides), so that a write to fd 2 never meets a closed pipe.
_FILTER = r"""
import os, re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
drop = re.compile(sys.argv[1].encode())
for line in sys.stdin.buffer:
    if not drop.search(line):
        view = memoryview(line)
        while view:
            view = view[os.write(1, view):]
"""


@contextmanager
def filtered_stderr(pattern: re.Pattern = NOISE):
    """Within the block, lines written to file descriptor 2 (C++ logs and Python alike) whose text
    matches ``pattern`` (searched in the line's bytes) are dropped; the rest reach the real stderr
    line by line, in order, from a child process (see the module doc). Without fd 2, without a
    Python executable to start (an embedded interpreter) or when it fails to start, the block runs
    unfiltered."""
    sys.stderr.flush()
    try:
        real = os.dup(2)
    except OSError:  # no fd 2 (a daemon): nothing to filter
        yield
        return
    try:
        if not sys.executable:
            raise OSError("no sys.executable")
        child = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER, pattern.pattern],
                                 stdin=subprocess.PIPE, stdout=real, stderr=real)
    except OSError:
        os.close(real)
        yield
        return
    os.dup2(child.stdin.fileno(), 2)
    child.stdin.close()  # fd 2 is now the pipe's only write end in this process
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's write end: the child reads EOF, passes the rest on, exits
        os.close(real)
        try:
            child.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            pass  # a process started in the block holds the pipe; the filter ends when it does


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr():
            self.loader.exec_module(module)


class _QuietTensorflowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once (then leaves sys.meta_path) and loads it through _QuietLoader."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Set TF_CPP_MIN_LOG_LEVEL (default "3": TensorFlow's own INFO/WARNING/ERROR logs; errors
    still raise Python exceptions) and filter the first ``import tensorflow`` (NOISE). Idempotent;
    nothing to do once TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorflowFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorflowFinder())
