"""facepack-export (facepack/export/cli.py) as a user meets it: TensorFlow's start-up and grappler lines
dropped (facepack/tfquiet.py, as convert/to_tfjs.py and the training tools do), and a facepack run
folder refused with the command that exports it. Fast: no TensorFlow import."""

import json
import os
import subprocess
import sys

from conftest import ROOT

GRAPPLER_LINES = [
    "I0000 00:00:1796104882.794366   13946 devices.cc:67] Number of eligible GPUs (core count >= 8, compute "
    "capability >= 0.0): 0",
    "I0000 00:00:1796104882.806444   13946 single_machine.cc:374] Starting new session",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
]
REAL_LINES = ["E0000 00:00:1.0 1 op_kernel.cc:1] OOM when allocating tensor", "  graph-model: rejected (x)"]


def test_export_noise_drops_grappler_and_start_up_lines_only():
    from facepack.export.cli import export_noise

    pattern = export_noise()
    assert all(pattern.search(line) for line in GRAPPLER_LINES)
    assert not any(pattern.search(line) for line in REAL_LINES)


def test_entry_point_installs_the_filter_and_refuses_a_run_folder_by_its_command(tmp_path):
    """Importing the module installs nothing; main() installs tfquiet and the pkg_resources warning
    filter, and a training run folder (run.json) is refused in one line naming convert/to_tfjs.py."""
    run = tmp_path / "kprun"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"model": "keypoints"}))
    code = ("import sys, warnings\nfrom facepack import tfquiet\n"
            "on = lambda: any(isinstance(f, tfquiet._QuietTensorflowFinder) for f in sys.meta_path)\n"
            "from facepack.export import cli\nprint('import', on())\n"
            f"code = cli.main([{str(run)!r}, '--name', 'kp', '--out', {str(tmp_path / 'out')!r}])\n"
            "print('main', code, on(), 'tensorflow' in sys.modules)\n"
            "print('pkg_resources', any(f[0] == 'ignore' and f[1] is not None and "
            "f[1].pattern == cli.PKG_RESOURCES_WARNING for f in warnings.filters))\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines() == ["import False", "main 2 True False", "pkg_resources True"], proc.stderr
    assert proc.stderr.splitlines() == [
        f"facepack-export: error: MODEL {str(run)!r}: a facepack training run folder, not a .keras file; export it "
        f"with python convert/to_tfjs.py --keypoints {run}"], proc.stderr
