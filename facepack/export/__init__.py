"""Export: Keras models -> static TF.js bundles (manifest.json + one folder per model) and an npm package.

Entry points: ``build_bundle`` (bundle.py), ``build_npm_package`` (npm.py); the CLI is
convert/to_tfjs.py. The MTCNN nets are rebuilt from the `mtcnn` package (mtcnn_nets.py);
Keras 3 models reach tf_keras through bridge.py.
"""

from facepack.export.bundle import ParityError, atomic_replace, build_bundle

__all__ = ["build_bundle", "atomic_replace", "ParityError"]
