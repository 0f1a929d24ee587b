"""facepack/tfquiet.py: the first `import tensorflow` of a command-line tool drops TensorFlow's
cuDNN/cuBLAS "factory registered" lines from stderr and nothing else (a real predict.py run's
stderr is checked in tests/test_predict.py's kill test). The filter is a child process: it keeps
draining while the GIL is held, outlives a crash, and a process started inside cannot hold the
block open."""

import os
import subprocess
import sys
import time

from conftest import ROOT
from facepack.tfquiet import NOISE

NOISE_LINES = [
    "E0000 00:00:1796089472.778966   15445 cuda_dnn.cc:8579] Unable to register cuDNN factory: Attempting to "
    "register factory for plugin cuDNN when one has already been registered",
    "E0000 00:00:1796089472.782958   15445 cuda_blas.cc:1407] Unable to register cuBLAS factory: Attempting to "
    "register factory for plugin cuBLAS when one has already been registered",
    "W0000 00:00:1796089472.799828   15445 computation_placer.cc:177] computation placer already registered. "
    "Please check linkage and avoid linking the same target more than once.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
]
REAL_LINES = ["E0000 00:00:1.0 1 op_kernel.cc:1] OOM when allocating tensor", "Traceback (most recent call last):"]
GIL_BYTES = 400_000  # written to fd 2 with the GIL held: > 6 pipe buffers (64 KiB), a thread-based filter deadlocks
HANG_S = 60  # a run that takes this long has hung (each run below takes < 3 s)
HELPER_S = 3.0  # a process started inside the block sleeps this long, holding fd 2 (the pipe)
WAIT_S = 0.2  # tfquiet.WAIT_S for that test: the block must leave after about this, not after HELPER_S


def _run(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "KERAS_BACKEND": "tensorflow"},
                          capture_output=True, text=True, timeout=HANG_S)


def test_filter_drops_the_noise_lines_only():
    """Inside the filter, C-level writes to fd 2 and Python's sys.stderr: noise dropped, the rest kept in order."""
    code = ("import os, sys\nfrom facepack.tfquiet import filtered_stderr\n"
            f"noise, real = {NOISE_LINES!r}, {REAL_LINES!r}\n"
            "with filtered_stderr():\n"
            "    os.write(2, (noise[0] + '\\n' + real[0] + '\\n').encode())\n"
            "    print(noise[1], file=sys.stderr); print(real[1], file=sys.stderr)\n"
            "    os.write(2, (noise[2] + '\\n' + noise[3] + '\\nno newline at the end').encode())\n"
            "print('after', file=sys.stderr)\n")
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [REAL_LINES[0], REAL_LINES[1], "no newline at the endafter"]
    assert all(NOISE.search(line) for line in NOISE_LINES) and not any(NOISE.search(line) for line in REAL_LINES)


def test_a_crash_inside_the_block_keeps_its_last_lines():
    """The process aborts right after writing (as a CHECK failure in TensorFlow's C++ init does)."""
    code = ("import os\nfrom facepack.tfquiet import filtered_stderr\n"
            "with filtered_stderr():\n"
            f"    os.write(2, b{NOISE_LINES[0]!r} + b'\\nF0000 fatal: Check failed: x\\n')\n"
            "    os.abort()\n")
    proc = _run(code)
    assert proc.returncode != 0
    assert proc.stderr.splitlines() == ["F0000 fatal: Check failed: x"]


def test_writes_with_the_gil_held_do_not_hang():
    """libc write() through ctypes.PyDLL keeps the GIL, like C++ static initialisers during an import."""
    code = ("import ctypes, sys\nfrom facepack.tfquiet import filtered_stderr\n"
            f"libc, line = ctypes.PyDLL(None), b'x' * 99 + b'\\n'\n"
            "with filtered_stderr():\n"
            f"    for _ in range({GIL_BYTES // 100}):\n"
            "        libc.write(2, line, len(line))\n"
            "print('done', file=sys.stderr)\n")
    proc = _run(code)
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert lines[-1] == "done" and lines[:-1] == ["x" * 99] * (GIL_BYTES // 100)


def test_a_process_started_inside_does_not_hold_the_block():
    code = ("import subprocess, sys, time\nfrom facepack import tfquiet\n"
            f"tfquiet.WAIT_S = {WAIT_S}\n"
            "t = time.perf_counter()\n"
            "with tfquiet.filtered_stderr():\n"
            f"    subprocess.Popen(['sleep', '{HELPER_S}'])\n"
            "print(f'{time.perf_counter() - t:.3f}', file=sys.stderr)\n")
    t0 = time.perf_counter()
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stderr.strip()) < WAIT_S + 1.0 < HELPER_S
    assert time.perf_counter() - t0 >= HELPER_S  # the helper really held the pipe (stderr ended with it)


def test_installed_by_the_entry_points_not_by_library_imports():
    """Importing facepack.cli / facepack.training (tests, notebooks) leaves `import tensorflow` alone;
    run_cli installs the filter before it calls a tool's main; the scripts install it at import."""
    code = ("import sys\nsys.path[:0] = ['training', 'convert']\n"
            "from facepack import tfquiet\n"
            "on = lambda: any(isinstance(f, tfquiet._QuietTensorflowFinder) for f in sys.meta_path)\n"
            "import facepack.cli, facepack.training\n"
            "print('library', on())\n"
            "print('run_cli', facepack.cli.run_cli(lambda argv: 7 if on() else 1))\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, tfquiet._QuietTensorflowFinder)]\n"
            "for name in ('predict', 'evaluate', 'to_tfjs'):\n"
            "    __import__(name)\n"
            "    print(name, on(), 'tensorflow' in sys.modules)\n"
            "    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, tfquiet._QuietTensorflowFinder)]\n")
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["library False", "run_cli 7", "predict True False", "evaluate True False",
                                        "to_tfjs True False"]


def test_without_fd_2_the_block_runs_unfiltered():
    """A process started with stderr closed (a daemon): the import must not fail on the filter."""
    code = ("import os\nfrom facepack.tfquiet import filtered_stderr\nos.close(2)\n"
            "with filtered_stderr():\n    print('inside', flush=True)\n")
    proc = _run(code)
    assert proc.returncode == 0 and proc.stdout == "inside\n"
