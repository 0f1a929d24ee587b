"""Copy the TF.js files the page needs from node_modules into static/vendor/ (no CDN, works offline).

Usage::

    python scripts/vendor_tfjs.py                 # node_modules/ -> static/vendor/
    python scripts/vendor_tfjs.py --out DIR --node-modules DIR

The page (static/index.html) maps the bare specifiers that facepack's ES modules import to these
copies with an import map:

    "@tensorflow/tfjs"              -> /vendor/tf.fesm.js   (the union bundle: core + webgl + cpu + layers + converter)
    "@tensorflow/tfjs-core"         -> /vendor/tf.fesm.js   (the WASM backend imports core: it must be the
                                                                 same module instance, or it registers itself
                                                                 with a second, unused engine)
    "@tensorflow/tfjs-backend-wasm" -> /vendor/tf-backend-wasm.fesm.js
    "fs", "path", "os", "perf_hooks", "worker_threads"
                                    -> /vendor/node-builtin-stub.js (Emscripten's Node-only code paths; the
                                                                 package's "browser" field maps them to false)

plus the three .wasm binaries the WASM backend fetches (``setWasmPaths('/vendor/')``). A
``vendor.json`` written beside them records the versions, sizes and sha256 of every file; the
server reads it to tell the page whether the set-up step has run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NODE_MODULES = PROJECT_ROOT / "node_modules"
DEFAULT_OUT = PROJECT_ROOT / "static" / "vendor"
VENDOR_INDEX = "vendor.json"
COMMAND = "python scripts/vendor_tfjs.py"

# (npm package, file inside the package, name under static/vendor/)
VENDOR_FILES = (
    ("@tensorflow/tfjs", "dist/tf.fesm.js", "tf.fesm.js"),
    ("@tensorflow/tfjs-backend-wasm", "dist/tf-backend-wasm.fesm.js", "tf-backend-wasm.fesm.js"),
    ("@tensorflow/tfjs-backend-wasm", "dist/tfjs-backend-wasm.wasm", "tfjs-backend-wasm.wasm"),
    ("@tensorflow/tfjs-backend-wasm", "dist/tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-simd.wasm"),
    ("@tensorflow/tfjs-backend-wasm", "dist/tfjs-backend-wasm-threaded-simd.wasm",
     "tfjs-backend-wasm-threaded-simd.wasm"),
)
# Node built-ins imported (but never used in a browser) by the WASM backend's Emscripten glue.
NODE_STUB_NAME = "node-builtin-stub.js"
NODE_STUB_SOURCE = (
    "// Written by scripts/vendor_tfjs.py. Stands in for the Node built-ins (fs, path, os, perf_hooks,\n"
    "// worker_threads) that tf-backend-wasm's Emscripten glue imports but only uses under Node;\n"
    "// @tensorflow/tfjs-backend-wasm's package.json \"browser\" field maps them to false likewise.\n"
    "export default {};\n"
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_version(node_modules: Path, package: str) -> str:
    manifest = node_modules / package / "package.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"--node-modules: expected {manifest} (run `npm ci` first), it does not exist")
    return json.loads(manifest.read_text())["version"]


def vendor_files() -> list[str]:
    """Names of every file the set-up step writes under static/vendor/ (the index excluded)."""
    return [dest for _, _, dest in VENDOR_FILES] + [NODE_STUB_NAME]


def vendor(out_dir: str | Path = DEFAULT_OUT, node_modules: str | Path = DEFAULT_NODE_MODULES) -> dict:
    """Copy the TF.js files into ``out_dir``; returns the index also written to ``vendor.json``."""
    out_dir, node_modules = Path(out_dir), Path(node_modules)
    out_dir.mkdir(parents=True, exist_ok=True)
    versions = {pkg: _package_version(node_modules, pkg) for pkg in sorted({p for p, _, _ in VENDOR_FILES})}
    if len(set(versions.values())) != 1:
        raise ValueError(f"--node-modules: the TF.js packages must share one version, got {versions}")
    files = []
    for package, inner, dest in VENDOR_FILES:
        src = node_modules / package / inner
        if not src.is_file():
            raise FileNotFoundError(f"--node-modules: expected {src} in {package} {versions[package]}, it is missing")
        shutil.copyfile(src, out_dir / dest)
        files.append({"path": dest, "source": f"{package}/{inner}", "bytes": src.stat().st_size,
                      "sha256": _sha256(out_dir / dest)})
    (out_dir / NODE_STUB_NAME).write_text(NODE_STUB_SOURCE)
    files.append({"path": NODE_STUB_NAME, "source": "scripts/vendor_tfjs.py",
                  "bytes": (out_dir / NODE_STUB_NAME).stat().st_size, "sha256": _sha256(out_dir / NODE_STUB_NAME)})
    index = {"versions": versions, "files": files}
    (out_dir / VENDOR_INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="destination folder (default: static/vendor/)")
    parser.add_argument("--node-modules", default=str(DEFAULT_NODE_MODULES),
                        help="node_modules folder holding @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    index = vendor(args.out, args.node_modules)
    if args.quiet:
        return 0
    total = sum(f["bytes"] for f in index["files"])
    print(f"vendored {len(index['files'])} files ({total / 1e6:.1f} MB) of TF.js "
          f"{next(iter(index['versions'].values()))} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
