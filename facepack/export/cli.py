"""facepack-export: export any Keras 3 model to a TF.js bundle, checked in TF.js against Keras.

  facepack-export MODEL --name NAME [--out DIR] [--sample X.npz] [--custom-objects my_layers.py]
                  [--unsafe] [--quantize none|float16|uint8] [--backends cpu,wasm] [--license TEXT]

What it tries, in order (the first that passes is written):
  1. layers model: the model rebuilt in tf_keras and written by the tensorflowjs converter;
  2. graph model: model.export() -> SavedModel -> the converter (any traceable model: Lambda,
     custom and subclassed layers, raw ops; RNNs and masking run with executeAsync/predictAsync).
Each is accepted only when TF.js (in Node) loads it, runs it on every backend of --backends and
matches Keras model(x) on probe inputs made from the model's input specs (token ids in the range of
the layers reading them: an Embedding's input_dim, a CategoryEncoding's num_tokens, an
IntegerLookup's vocabulary and some ids outside it; masks, raw RGB 0..255 when the model starts with Rescaling/Normalization on
an image, looking through augmentation layers, else N(0, 1); inputs of variable size are probed
at two sizes) and on --sample when given. The criterion (printed): float32 weights
max |TF.js - Keras| <= 1e-4 * max |Keras| per output (outputs below 1e-3 in magnitude: 1e-7
absolute); --quantize float16 / uint8: rms(TF.js - Keras) / rms(Keras) over all outputs <= 0.01 /
0.1 (keras_export.QUANT_RMS_TOL; measured 3e-4 / 1.5e-2 on a 1M-parameter Dense model, 7e-4 / 4.6e-2
on ResNet50V2); a softmax classifier also gets its top-1 agreement recorded. If the quantised
weights miss it, the error says so: use the higher precision. If neither path passes, it prints
one line naming the layer/op, the backend and what to do, and leaves --out unchanged.

MODEL is a Keras 3 .keras file (a zip archive; legacy Keras .h5 files are accepted too).
SavedModel folders are not: load the model in Keras and model.save('m.keras').

Output: OUT/manifest.json (path taken, precision, probe, per-backend differences, licence, why a
path was rejected) + OUT/NAME/model.json + weight shards. Load it with
`load(OUT, NAME)` from static/facepack/generic.js (predict / predictAsync).
A bundle holds several models: exporting into an existing bundle adds (or replaces) NAME and keeps
its other models. An --out folder that is neither empty nor a facepack bundle (no manifest.json)
is refused, since the export replaces the folder.

Exit codes: 0 written; 2 refused or bad arguments (one line on stderr); 75 --out is being written
by another export (one line naming it; try again later); 1 unexpected error (traceback);
130 interrupted. In every failure --out is left unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from pathlib import Path

DEFAULT_OUT = "dist/models-NAME"
# Optional imports of TensorFlow (tf.lite -> jax), Keras 3 (plot utilities -> matplotlib, cv2;
# array slicing -> pandas) and tf_keras (data adapters -> pandas), each guarded by try/except
# ImportError there, that an export never uses: ~2-3 s of start-up. Blocked only while this CLI
# imports TensorFlow, Keras and tf_keras.
SKIPPED_AT_STARTUP = ("jax", "matplotlib", "pandas", "cv2")
PKG_RESOURCES_WARNING = r"pkg_resources is deprecated"  # a regex matched at the start of the warning's text
# Lines TensorFlow's grappler writes (absl, not silenced by TF_CPP_MIN_LOG_LEVEL) while the converter
# optimises a SavedModel on a CPU-only machine; dropped during the export with tfquiet.NOISE.
GRAPPLER_NOISE = (r"devices\.cc:\d+\] Number of eligible GPUs"
                  r"|single_machine\.cc:\d+\] Starting new session")


def use_tensorflow_backend(environ=None) -> str | None:
    """Set KERAS_BACKEND=tensorflow (the SavedModel export, the tensorflowjs converter and tf_keras
    need Keras on TensorFlow); call it before Keras is imported. Returns the line to print when the
    user had asked for another backend (KERAS_BACKEND=jax for training, say), else None. A .keras
    file saved under any backend loads under TensorFlow (tests/test_export_backend_env.py saves one
    under jax). Does nothing once Keras is imported: its backend is fixed for the process then (an
    API caller's export runs on that backend)."""
    environ = os.environ if environ is None else environ
    if "keras" in sys.modules:
        return None
    user = environ.get("KERAS_BACKEND", "").strip()
    environ["KERAS_BACKEND"] = "tensorflow"
    if user and user.lower() != "tensorflow":
        return (f"note: KERAS_BACKEND={user} is set, but the exporter runs Keras on TensorFlow (KERAS_BACKEND="
                f"tensorflow for this run); a .keras file saved under any backend loads fine")
    return None


def import_lean() -> None:
    """Import tensorflow, keras and tf_keras with SKIPPED_AT_STARTUP unavailable, then make
    those importable again (a user's --custom-objects module may import them itself)."""
    if "keras" in sys.modules:
        return
    blocked = [m for m in SKIPPED_AT_STARTUP if m not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # "import jax" raises ImportError
    try:
        import keras  # noqa: F401  (imports tensorflow)
        import tf_keras  # noqa: F401
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def build_parser(prog: str = "facepack-export") -> argparse.ArgumentParser:
    # mirrors facepack/export/keras_export.py:export_model (defaults are its own)
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, metavar="MODEL", help="the Keras 3 model file (.keras; legacy .h5 accepted)")
    p.add_argument("--name", required=True, help="manifest name and folder of the model (letters, digits, _ . -)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"bundle folder: new, empty, or a facepack bundle to add NAME to (its other models are "
                        f"kept); default {DEFAULT_OUT}/")
    p.add_argument("--sample", type=Path, default=None, metavar="X.npz",
                   help="real inputs to check parity on too: arrays named after the model's inputs, or arr_0.. "
                        "in input order, batch first (default: generated probes only)")
    p.add_argument("--custom-objects", default=None, metavar="MODULE.py",
                   help="a Python file (or module name) defining your custom layers; importing it registers them "
                        "(@keras.saving.register_keras_serializable); its classes are passed as custom_objects")
    p.add_argument("--unsafe", action="store_true",
                   help="allow Lambda layers and other Python code stored in the file (safe_mode=False); only for "
                        "files you trust (default: refused)")
    p.add_argument("--quantize", choices=["none", "float16", "uint8"], default="none",
                   help="weight precision (tensors >= 4096 values): float16 halves, uint8 quarters the size; "
                        "held to rms(TF.js - Keras) / rms(Keras) <= 0.01 (float16) / 0.1 (uint8), else refused; "
                        "default none (float32)")
    p.add_argument("--backends", default="cpu,wasm",
                   help="TF.js backends (Node) the export must run and match Keras on: comma-separated subset of "
                        "cpu,wasm, or 'none' to skip TF.js (layers path checked by tensorflowjs read-back only); "
                        "default cpu,wasm")
    p.add_argument("--license", default=None,
                   help="licence of the weights, recorded in the manifest (default \"unknown, given by the user\")")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    return p


def parse_backends(text: str) -> tuple:
    text = (text or "").strip()
    if text in ("", "none"):
        return ()
    return tuple(b.strip() for b in text.split(",") if b.strip())


def run(args, prog: str = "facepack-export", model_flag: str = "MODEL") -> int:
    """Export with parsed ``args`` (shared by convert/to_tfjs.py --model, whose ``model_flag`` is
    "--model"); returns the exit code. Argument errors exit 2 before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    backend_note = use_tensorflow_backend()
    # tensorflow_hub (imported by the tensorflowjs converter) warns at import that setuptools'
    # pkg_resources is deprecated: not the user's concern
    warnings.filterwarnings("ignore", message=PKG_RESOURCES_WARNING, category=UserWarning)
    from facepack.export.keras_export import CLI_FLAGS, ExportError, check_arguments
    from facepack.export.node_check import NodeSession, node_available

    flags = {**CLI_FLAGS, "model": f"{model_flag} "}
    backends = parse_backends(args.backends)
    out = args.out or Path("dist") / f"models-{args.name}"
    try:  # fast: no TensorFlow yet
        check_arguments(args.model, out, name=args.name, quantize=args.quantize, backends=backends)
    except ExportError as err:
        print(f"{prog}: error: {err.render(flags)}", file=sys.stderr)
        return 2
    if backend_note and not getattr(args, "quiet", False):
        print(f"{prog}: {backend_note}", file=sys.stderr, flush=True)
    # TF.js starts in Node now and overlaps TensorFlow's import (export_model checks the rest)
    session = NodeSession(backends) if backends and set(backends) <= {"cpu", "wasm"} and node_available()[0] else None
    try:
        return _run(args, prog, backends, session, flags)
    finally:
        if session is not None:
            session.close()


def export_noise():
    """tfquiet.NOISE plus GRAPPLER_NOISE: the pattern of the lines the export drops from stderr."""
    import re

    from facepack.tfquiet import NOISE

    return re.compile(f"{NOISE.pattern}|{GRAPPLER_NOISE}")


def _run(args, prog: str, backends: tuple, session, flags: dict) -> int:
    import_lean()
    from facepack import tfquiet
    from facepack.export.bundle import ExportBusy
    from facepack.export.keras_export import DEFAULT_LICENSE, ExportError, export_model

    out = args.out or Path("dist") / f"models-{args.name}"

    def log(message: str) -> None:
        if not getattr(args, "quiet", False):
            print(message, file=sys.stderr, flush=True)

    try:
        with tfquiet.filtered_stderr(export_noise()):
            export_model(args.model, out, name=args.name, sample=args.sample, custom_objects=args.custom_objects,
                         unsafe=args.unsafe, quantize=args.quantize, backends=backends,
                         license=args.license or DEFAULT_LICENSE, log=log, _node_session=session)
    except ExportError as err:
        print(f"{prog}: error: {err.render(flags)} ({out} left unchanged)", file=sys.stderr)
        return 2
    except ExportBusy as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: try again when the other export is done
    except KeyboardInterrupt:
        print(f"{prog}: interrupted: {out} left unchanged", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(f"{prog}: error: the export failed unexpectedly (traceback above); {out} left unchanged",
              file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    """The facepack-export entry point: installs facepack.tfquiet (TensorFlow's cuDNN/cuBLAS/
    "computation placer" start-up lines are dropped; convert/to_tfjs.py does the same), then ``run``."""
    from facepack import tfquiet

    tfquiet.install()
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
