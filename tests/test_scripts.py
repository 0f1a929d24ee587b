"""scripts/main.sh: `--help` answers at once, before any setup, export or server start."""

import subprocess
import time

from conftest import ROOT

HELP_S = 5.0  # seconds: --help runs no setup (a fresh clone's pip install takes minutes); measured ~0.9 s
MAIN_FLAGS = ("--beauty RUN", "--keypoints RUN", "--force-export", "-h, --help")
SERVER_FLAGS = ("--host", "--port", "--models")  # server.py's own usage follows main.sh's


def test_main_sh_help_is_its_own_and_immediate():
    for argv in (["--help"], ["--port", "9", "-h"]):
        t0 = time.perf_counter()
        proc = subprocess.run(["bash", "scripts/main.sh", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        took = time.perf_counter() - t0
        assert proc.returncode == 0, proc.stderr
        assert took < HELP_S, f"{argv}: {took:.1f} s"
        out = proc.stdout
        assert out.startswith("usage: bash scripts/main.sh"), out[:200]
        assert all(flag in out for flag in MAIN_FLAGS), out
        assert "usage: server.py" in out and all(flag in out for flag in SERVER_FLAGS), out
        assert "setup: ok" not in out and "== " not in out, (out, proc.stderr)  # nothing ran (no setup, no export)
