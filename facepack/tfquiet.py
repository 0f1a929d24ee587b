"""TensorFlow's start-up noise, dropped from stderr for the command-line tools.

Importing TensorFlow 2.19 on a machine without a GPU writes lines such as

    E0000 00:00:... cuda_dnn.cc:8579] Unable to register cuDNN factory: Attempting to register factory ...
    E0000 00:00:... cuda_blas.cc:1407] Unable to register cuBLAS factory: ...
    W0000 00:00:... computation_placer.cc:177] computation placer already registered. ...

They come from XLA's absl logging before absl is initialised, so TF_CPP_MIN_LOG_LEVEL (set by
every entry point, and honoured by TensorFlow's own logging) does not hide them. ``install()``
(called by the entry points: facepack/cli.py and facepack/training.py on import, predict.py,
training/evaluate.py, convert/to_tfjs.py) makes the first ``import tensorflow`` - direct or
through Keras - run with file descriptor 2 going through a filter that drops exactly the lines
matching NOISE and forwards every other byte at once (so a real error, even a crash inside the
import, still shows). After the import stderr is untouched.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import threading
from contextlib import contextmanager

# Known harmless lines TensorFlow/XLA print while importing on a CPU-only machine.
NOISE = re.compile(
    r"Unable to register cu(DNN|BLAS|FFT) factory: Attempting to register factory for plugin"
    r"|computation placer already registered"
    r"|All log messages before absl::InitializeLog\(\) is called are written to STDERR")


@contextmanager
def filtered_stderr(pattern=NOISE):
    """Within the block, lines written to file descriptor 2 (C++ logs and Python alike) that match
    ``pattern`` are dropped; the rest is forwarded to the real stderr as it arrives."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()

    def forward():
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not pattern.search(line.decode("utf-8", "replace")):
                        os.write(real, line + b"\n")
        if pending and not pattern.search(pending.decode("utf-8", "replace")):
            os.write(real, pending)

    thread = threading.Thread(target=forward, name="facepack-stderr-filter", daemon=True)
    thread.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the thread reads EOF and ends
        thread.join()
        os.close(real)


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
