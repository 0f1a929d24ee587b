"""Convert trained facepack models (or your own Keras 3 model) into static TF.js bundles.

Examples:
  python convert/to_tfjs.py                      # latest beauty + keypoint runs + MTCNN -> static/models/
  python convert/to_tfjs.py --only mtcnn         # rebuild only the MTCNN nets (other models kept)
  python convert/to_tfjs.py --beauty runs/beauty/20260101-120000 --quantize float16
  python convert/to_tfjs.py --keypoints shipped  # the shipped keypoint model, whatever runs/ holds
  python convert/to_tfjs.py --npm                # also build the npm package in dist/npm/
  python convert/to_tfjs.py --model my.keras --name mynet --npm   # your own Keras 3 model

The face models are written with the tensorflowjs converter as TF.js layers models (model.json +
weight shards), read back and compared with the Keras model on a probe batch, then run in TF.js
itself (Node, WASM backend) on the same batch; the max abs differences are recorded in
manifest.json and the conversion fails if one exceeds the tolerance for the precision.

--model is the same as the `facepack-export` console script (facepack.export.export_model): the
layers model, else the graph model (model.export), each accepted only when TF.js runs it on
--backends (default cpu,wasm) and matches Keras on probes from the model's input specs (and
--sample); else one line saying which layer/op failed where. See `facepack-export --help`.

Which models: --beauty/--keypoints RUN name one (a run folder or one of its model files: model.keras, or
model.config.json / model.weights.json / a model_NNNNN.weights.h5 shard; a run name under runs/<model>/, "latest" or
"shipped"); without them the newest run trained on real data that is not worse than the shipped model on its own
metric is used, else models/shipped (the choice and the reason are printed, and runs with a missing, cut-short or
empty model file are passed over by name; facepack/runs.py).

Nothing is converted when the bundle at --out was built from the same models, options, code and
tool versions (its manifest's build key); models whose key changed are rebuilt alone. --force
rebuilds everything. The npm package is likewise rebuilt only when its inputs changed.

The bundle is written to a temporary folder and swapped in with one atomic rename when complete:
a failed or killed conversion leaves the previous bundle in place. One export at a time per
folder (a lock; --lock-wait). The work is done by facepack.export; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from facepack import tfquiet  # noqa: E402
from facepack.export.cli import use_tensorflow_backend  # noqa: E402  (no TensorFlow import)

# Keras runs on TensorFlow here whatever KERAS_BACKEND the shell exports (jax for training, say);
# main() prints BACKEND_NOTE when it overrode one.
BACKEND_NOTE = use_tensorflow_backend()

tfquiet.install()  # TensorFlow's cuDNN/cuBLAS "factory" lines at import are dropped (facepack/tfquiet.py)

DEFAULT_OUT = ROOT / "static" / "models"
DEFAULT_NPM = ROOT / "dist" / "npm"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="convert/to_tfjs.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None,
                   help=f"bundle folder to (re)write (default {DEFAULT_OUT.relative_to(ROOT)}/, or "
                        "dist/models-NAME/ with --model)")
    p.add_argument("--beauty", metavar="RUN", default=None,
                   help="beauty run: a folder (runs/beauty/<stamp>) or one of its model files (model.keras, "
                        "model.config.json, model.weights.json or a shard), a run name, 'latest' or 'shipped' "
                        "(default: the newest real-data run not worse than the shipped model, else shipped)")
    p.add_argument("--keypoints", metavar="RUN", default=None,
                   help="keypoint run, as --beauty")
    p.add_argument("--runs-root", type=Path, default=None, help="where to look for the latest runs (default runs/)")
    p.add_argument("--only", action="append", choices=["mtcnn", "beauty", "keypoints"], default=None,
                   help="convert only these models (repeatable); the other models of an existing bundle "
                        "at --out are kept as they are")
    p.add_argument("--quantize", choices=["none", "float16", "uint8"], default="none",
                   help="weight precision of the beauty and keypoint models: float16 halves, uint8 quarters "
                        "the size (MTCNN stays float32); default none (float32)")
    p.add_argument("--model", type=Path, default=None, metavar="PATH.keras",
                   help="export your own Keras 3 model instead (bundle + manifest + parity; with --npm, a "
                        "package exposing load(dir, NAME).predict)")
    p.add_argument("--name", default=None, help="manifest name of --model (letters, digits, _ . -)")
    p.add_argument("--sample", type=Path, default=None, metavar="X.npz",
                   help="with --model: real inputs to check parity on too (arrays named after the inputs, or arr_0..)")
    p.add_argument("--custom-objects", default=None, metavar="MODULE.py",
                   help="with --model: your module defining (and registering) the model's custom layers")
    p.add_argument("--unsafe", action="store_true",
                   help="with --model: allow Lambda layers / Python code in the file (only for files you trust)")
    p.add_argument("--backends", default="cpu,wasm",
                   help="with --model: TF.js backends the export must match Keras on (cpu,wasm | none); default cpu,wasm")
    p.add_argument("--license", default=None,
                   help="with --model: licence of the weights for the manifest (default \"unknown, given by the user\")")
    p.add_argument("--npm", nargs="?", type=Path, const=DEFAULT_NPM, default=None, metavar="DIR",
                   help=f"also build the npm package in DIR (default {DEFAULT_NPM.relative_to(ROOT)}/) and pack it")
    p.add_argument("--npm-name", default=None, help="npm package name (default facepack, or NAME with --model)")
    p.add_argument("--npm-version", default="0.1.0", help="npm package version (default 0.1.0)")
    p.add_argument("--no-node-check", action="store_true",
                   help="skip running every converted model in TF.js under Node (WASM backend) and comparing it "
                        "with Keras (on by default; needs node and node_modules)")
    p.add_argument("--no-pack", action="store_true", help="with --npm: skip `npm pack` (no tarball)")
    p.add_argument("--force", action="store_true",
                   help="convert even when the bundle's build key says sources, options and versions are unchanged")
    p.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                   help="when another export is writing --out, wait up to SECONDS for it (default 0: fail at once)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if (args.model is None) != (args.name is None):
        raise SystemExit("error: --model and --name go together (got "
                         f"--model {args.model}, --name {args.name})")
    if BACKEND_NOTE:
        print(f"convert/to_tfjs.py: {BACKEND_NOTE}", file=sys.stderr, flush=True)
    out = args.out or (ROOT / "dist" / f"models-{args.name}" if args.model else DEFAULT_OUT)
    target = out  # what a failure leaves unchanged
    if args.model is not None:
        from facepack.export.cli import run

        if args.no_node_check:
            args.backends = "none"
        args.out = out
        code = run(args, prog="convert/to_tfjs.py", model_flag="--model")
        if code != 0 or args.npm is None:
            return code
    from facepack.export import bundle

    if args.lock_wait < 0:
        raise SystemExit(f"error: --lock-wait must be >= 0 seconds, got {args.lock_wait}")
    main_log = bundle.main_log
    try:
        with bundle.export_lock(out, args.lock_wait, main_log):  # the npm package copies this very bundle
            if args.model is None:
                bundle.build_bundle(out, beauty_run=args.beauty, keypoints_run=args.keypoints, quantize=args.quantize,
                                    models=args.only, runs_root=args.runs_root, keep_others=bool(args.only),
                                    node_check=not args.no_node_check, skip_unchanged=not args.force,
                                    lock_wait_s=args.lock_wait, log=main_log)
            if args.npm is not None:
                from facepack.export.npm import build_npm_package

                target = args.npm
                name = args.npm_name or (args.name or "facepack")
                key = bundle.npm_key(out, name, args.npm_version, not args.no_pack)
                if not args.force and bundle.npm_up_to_date(args.npm, key):
                    main_log(f"{args.npm} is up to date (same bundle, library and package options); npm build skipped")
                else:
                    tarball = build_npm_package(out, args.npm, name=name, version=args.npm_version,
                                                pack=not args.no_pack, log=main_log)
                    bundle.record_npm_key(args.npm, key, tarball)
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}\n{target} was left unchanged.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {target} was left unchanged.", file=sys.stderr)
        return 130
    except Exception:  # unexpected (a TensorFlow error...): the traceback, and the guarantee
        traceback.print_exc()
        print(f"error: conversion failed unexpectedly (traceback above); {target} was left unchanged.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
