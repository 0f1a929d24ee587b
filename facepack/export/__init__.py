"""Export: Keras models -> static TF.js bundles (manifest.json + one folder per model) and an npm package.

Entry points: ``export_model`` (keras_export.py: any Keras 3 model, layers model or graph model,
checked in TF.js on cpu and wasm; console script ``facepack-export``, cli.py), ``build_bundle``
(bundle.py: the face models), ``build_npm_package`` (npm.py); convert/to_tfjs.py is the
mission's CLI over both. The MTCNN nets are rebuilt from the `mtcnn` package (mtcnn_nets.py);
Keras 3 models reach tf_keras through bridge.py (or become graph models, tfjs_io.py); the
manifest and its schema are in manifest.py / manifest_schema.json; node_check.py runs the
exported models in TF.js under Node.

Imports are lazy (PEP 562): ``import facepack.export`` loads neither TensorFlow nor tensorflowjs.
"""

_LAZY = {
    "export_model": "facepack.export.keras_export",
    "ExportError": "facepack.export.keras_export",
    "build_bundle": "facepack.export.bundle",
    "atomic_replace": "facepack.export.bundle",
    "ParityError": "facepack.export.bundle",
    "build_npm_package": "facepack.export.npm",
}

__all__ = ["export_model", "ExportError", "build_bundle", "build_npm_package", "atomic_replace", "ParityError"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'facepack.export' has no attribute {name!r}")
