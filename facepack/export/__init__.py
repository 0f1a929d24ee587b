"""Export: Keras models -> static TF.js bundles (manifest.json + one folder per model) and an npm package.

Entry points: ``build_bundle`` (bundle.py), ``build_npm_package`` (npm.py); the CLI is
convert/to_tfjs.py. The MTCNN nets are rebuilt from the `mtcnn` package (mtcnn_nets.py);
Keras 3 models reach tf_keras through bridge.py (or become graph models, tfjs_io.py); the
manifest and its schema are in manifest.py / manifest_schema.json; node_check.py runs the
exported models in TF.js under Node.
"""

from facepack.export.bundle import ParityError, atomic_replace, build_bundle
from facepack.export.npm import build_npm_package

__all__ = ["build_bundle", "build_npm_package", "atomic_replace", "ParityError"]
