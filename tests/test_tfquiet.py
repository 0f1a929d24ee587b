"""facepack/tfquiet.py: the first `import tensorflow` of a command-line tool drops TensorFlow's
cuDNN/cuBLAS "factory registered" lines from stderr and nothing else (a real predict.py run's
stderr is checked in tests/test_predict.py's kill test)."""

import os
import subprocess
import sys

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


def _run(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "KERAS_BACKEND": "tensorflow"},
                          capture_output=True, text=True, timeout=300)


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


def test_the_entry_points_install_it():
    for rel in ("predict.py", "training/evaluate.py", "convert/to_tfjs.py", "facepack/cli.py", "facepack/training.py"):
        assert "tfquiet.install()" in (ROOT / rel).read_text(), rel
