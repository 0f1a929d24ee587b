"""Killing an export at every step leaves a complete, loadable bundle (real subprocesses, SIGKILL).

A writer (facepack/export/bundle.py: atomic_replace, build_bundle) pauses at a named point when
$FACEPACK_EXPORT_PAUSE_AT lists it; the test then kills it with SIGKILL and checks the folder:
  after-model   (build_bundle, a model written into the temp folder)   -> the old bundle
  before-swap   (the new bundle complete in the temp folder)           -> the old bundle
  after-swap    (RENAME_EXCHANGE done, old bundle not yet deleted)     -> the new bundle
  after-backup  (no exchange: between the two renames)                 -> no folder; the next
                writer restores the backup
Each time the next writer removes what the killed one left. A second writer while one runs
fails (or waits) with a message naming the first one's PID and command.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facepack.export import bundle as bundle_mod
from facepack.export import manifest as manifest_mod
from facepack.export.tfjs_io import HASHED_SHARD_RE, sha256

ROOT = Path(__file__).resolve().parent.parent
PAUSE_TIMEOUT_S = 120  # a writer must reach its pause point within this (the build_bundle one imports TF)

# A writer copying SRC into OUT model folder by model folder, its manifest stamped with TAG.
COPY_WRITER = r"""
import json, shutil, sys
from pathlib import Path
from facepack.export import manifest as manifest_mod
from facepack.export.bundle import atomic_replace, pause_point
src, out, tag = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
with atomic_replace(out) as tmp:
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        shutil.copytree(folder, tmp / folder.name)
        pause_point("after-model")
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["created"] = tag
    manifest_mod.write_manifest(tmp, manifest)
"""
BUILD_WRITER = r"""
import sys
from facepack.export import build_bundle
build_bundle(sys.argv[1], models=["mtcnn"], keep_others=True, log=None)
"""
OLD_TAG, NEW_TAG = "2001-01-01T00:00:00+00:00", "2002-02-02T00:00:00+00:00"


def start_writer(code: str, args: list, pause_at: str, no_exchange: bool = False) -> subprocess.Popen:
    """Start a writer subprocess and wait until it says it paused at ``pause_at``."""
    env = dict(os.environ, **{bundle_mod.PAUSE_ENV: pause_at, "PYTHONPATH": str(ROOT)})
    if no_exchange:
        env[bundle_mod.NO_EXCHANGE_ENV] = "1"
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline, seen = time.monotonic() + PAUSE_TIMEOUT_S, []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            line = proc.stderr.readline()
            seen.append(line)
            if f"paused at {pause_at}" in line:
                return proc
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise AssertionError(f"writer never paused at {pause_at}; its stderr:\n{''.join(seen)[-3000:]}")


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stderr.close()


def assert_complete(out: Path, created: str) -> None:
    """``out`` is a whole bundle: schema-valid manifest stamped ``created``, every listed file
    with its sha256, every model.json's shards present and named after their content, and the
    server reports it present with nothing missing."""
    import server

    manifest = manifest_mod.read_manifest(out)
    manifest_mod.validate(manifest)
    assert manifest["created"] == created
    manifest_mod.verify_files(out, manifest)
    for entry in manifest["models"].values():
        model_json = json.loads((out / entry["path"] / "model.json").read_text())
        for group in model_json["weightsManifest"]:
            for rel in group["paths"]:
                match = HASHED_SHARD_RE.match(rel)
                assert match and sha256(out / entry["path"] / rel).startswith(match.group("hash")), rel
    status = server.models_status(out)
    assert status["present"] and status["missing"] == [], status


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")
                  and p.name != f".{out.name}.lock")


@pytest.fixture()
def bundles(tiny_bundle, tmp_path) -> dict:
    """{"out": the installed (old) bundle, "new": another complete bundle to install}."""
    out, new = tmp_path / "static" / "models", tmp_path / "new"
    for folder, tag in ((out, OLD_TAG), (new, NEW_TAG)):
        shutil.copytree(tiny_bundle, folder)
        manifest = manifest_mod.read_manifest(folder)
        manifest["created"] = tag
        manifest_mod.write_manifest(folder, manifest)
    return {"out": out, "new": new}


def next_writer(out: Path) -> list[str]:
    """What the next writer does on taking the lock (restores/removes the killed one's leftovers)."""
    lines = []
    with bundle_mod.export_lock(out, log=lines.append):
        pass
    return lines


@pytest.mark.parametrize("point, expected", [("after-model", OLD_TAG), ("before-swap", OLD_TAG),
                                             ("after-swap", NEW_TAG)])
def test_kill_leaves_a_complete_bundle(bundles, point, expected):
    out = bundles["out"]
    proc = start_writer(COPY_WRITER, [bundles["new"], out, NEW_TAG], point)
    assert_complete(out, expected)  # while it is paused: what it will leave
    kill(proc)
    assert_complete(out, expected)
    assert leftovers(out) == [f".models.tmp-{proc.pid}"]
    assert next_writer(out) == [f"removed .models.tmp-{proc.pid} (left by a killed export, PID {proc.pid})"]
    assert leftovers(out) == []
    assert_complete(out, expected)


def test_kill_during_a_real_conversion_keeps_the_old_bundle(bundles, untrained_runs):
    out = bundles["out"]
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = start_writer(BUILD_WRITER, [out, untrained_runs["keypoints"]], "after-model")
    tmp = out.parent / f".models.tmp-{proc.pid}"
    assert (tmp / "keypoints" / "model.json").is_file()  # it really wrote a model
    kill(proc)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert_complete(out, OLD_TAG)
    assert next_writer(out) and leftovers(out) == []


def test_kill_between_the_two_renames_is_restored_by_the_next_writer(bundles):
    """Without RENAME_EXCHANGE (forced here) the swap is two renames; killed between them the
    folder is missing until the next writer (or main.sh start) restores the backup."""
    out = bundles["out"]
    proc = start_writer(COPY_WRITER, [bundles["new"], out, NEW_TAG], "after-backup", no_exchange=True)
    kill(proc)
    assert not out.exists()
    assert sorted(leftovers(out)) == [f".models.backup-{proc.pid}", f".models.tmp-{proc.pid}"]
    assert next_writer(out) == [
        f"restored {out} from .models.backup-{proc.pid} (left by a killed export, PID {proc.pid})",
        f"removed .models.tmp-{proc.pid} (left by a killed export, PID {proc.pid})"]
    assert_complete(out, OLD_TAG)
    assert leftovers(out) == []


def test_a_second_writer_fails_or_waits_naming_the_first(bundles):
    out = bundles["out"]
    proc = start_writer(COPY_WRITER, [bundles["new"], out, NEW_TAG], "before-swap")
    try:
        # its command line as /proc/<pid>/cmdline has it, on one line (whitespace runs collapsed) and cut at
        # 300 characters (the -c code is long)
        command = " ".join(f"{sys.executable} -c {COPY_WRITER} {bundles['new']} {out} {NEW_TAG}".split())
        command = command[:297] + "..."
        with pytest.raises(bundle_mod.ExportBusy, match=re.escape(f"{out} is being written by another export: "
                                                                  f"PID {proc.pid} ({command}), since ")):
            with bundle_mod.atomic_replace(out):
                pytest.fail("the lock was taken twice")
        said, t0 = [], time.monotonic()
        with pytest.raises(bundle_mod.ExportBusy, match=r"\(waited 0.5 s\)"):
            with bundle_mod.atomic_replace(out, lock_wait_s=0.5, log=said.append):
                pass
        assert time.monotonic() - t0 >= 0.5
        assert len(said) == 1 and said[0].startswith(f"waiting up to 0.5 s for PID {proc.pid} ({command}), since ")
        assert said[0].endswith(f", which is writing {out}")
    finally:
        kill(proc)
    with bundle_mod.atomic_replace(out) as tmp:  # free again; the killed one's temp folder goes
        shutil.copytree(bundles["new"], tmp, dirs_exist_ok=True)
    assert_complete(out, NEW_TAG)
    assert leftovers(out) == []
