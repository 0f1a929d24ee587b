"""An attributes model (training/train_attributes.py) into a TF.js bundle, names and thresholds
in its manifest entry.

The model goes through the generic exporter (keras_export.export_model: layers path via the
tf_keras bridge, else graph path; checked in TF.js), then its entry is given what the JS stage
(static/facepack/attributes.js) reads, so no number is repeated in JavaScript (DESIGN.md
contract 1)::

    "attributes": {"role": "attributes", "input_size": S, "backbone": "...",
                   "attributes": {"names": [...40], "thresholds": [...40], "threshold_method": "f1",
                                  "crop_rule": "beauty"},
                   "run": {"source", "synthetic", "license"}, ...the exporter's fields}

With role "attributes" the manifest carries the face spec (crop margin, crop method, pad value).
The crop is the beauty crop (spec.BEAUTY["crop_margin"]): what the trainer's --crop face uses.

    python -m facepack.export.attributes runs/attributes/<run> static/models
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MODEL_NAME = "attributes"  # the manifest key and folder name
ROLE = "attributes"
CROP_RULE = "beauty"  # a key of facepack/pipeline.py:CROP_RULES (and static/facepack/crop.js:cropRules)


def export_attributes(model, out_dir, names, thresholds, *, threshold_method: str = "f1", synthetic: bool = True,
                      license: str = "unknown", source: str | None = None, backbone: str | None = None,
                      backends=("cpu", "wasm"), log=print) -> dict:
    """Export ``model`` ((N, S, S, 3) raw RGB -> (N, K) probabilities) into the bundle ``out_dir``
    (added to an existing bundle, others kept) and record ``names`` (K) and ``thresholds`` (K,
    probabilities) in its entry; returns the manifest. Raises ValueError naming the argument when
    names, thresholds and the model's K disagree; ExportError (keras_export) when the export fails.
    """
    from facepack.export import manifest as manifest_mod
    from facepack.export.keras_export import export_model

    k = int(model.output.shape[-1])
    names, thresholds = [str(n) for n in names], [float(t) for t in thresholds]
    if len(names) != k or len(thresholds) != k or len(set(names)) != k:
        raise ValueError(f"names ({len(names)}, unique {len(set(names))}) and thresholds ({len(thresholds)}) must "
                         f"match the model's {k} outputs")
    if not all(0.0 < t < 1.0 for t in thresholds):
        raise ValueError(f"thresholds must be probabilities in (0, 1), got {min(thresholds)}..{max(thresholds)}")
    old = Path(out_dir) / manifest_mod.MANIFEST_FILE
    build = json.loads(old.read_text()).get("build") if old.is_file() else None  # export_model drops it
    manifest = export_model(model, out_dir, name=MODEL_NAME, license=license, backends=backends, log=log)
    entry = dict(manifest["models"][MODEL_NAME])
    entry.update({
        "role": ROLE, "backbone": backbone,
        "attributes": {"names": names, "thresholds": thresholds, "threshold_method": threshold_method,
                       "crop_rule": CROP_RULE},
        "run": {"source": source or entry["run"]["source"], "synthetic": bool(synthetic), "license": license},
    })
    models = {**manifest["models"], MODEL_NAME: entry}
    updated = manifest_mod.build_manifest(models, created=manifest["created"])
    if build is not None:  # the face models' build key (bundle.py) is theirs: unchanged by this model
        updated["build"] = build
    tmp = Path(out_dir) / (manifest_mod.MANIFEST_FILE + ".tmp")
    manifest_mod.validate(updated)
    tmp.write_text(json.dumps(updated, indent=2) + "\n")
    os.replace(tmp, Path(out_dir) / manifest_mod.MANIFEST_FILE)
    return updated


def export_attributes_run(run_dir, out_dir, backends=("cpu", "wasm"), log=print) -> dict:
    """export_attributes for a finished run folder (run.json: names, thresholds, synthetic flag, dataset
    terms; the model in either run layout, facepack.runs.model_files). Raises ValueError naming the run
    when it is not an attributes run or its model files are incomplete."""
    import keras

    from facepack.runs import load_run, model_files

    run_dir = Path(run_dir)
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise ValueError(f"run {run_dir}: no run.json (a finished train_attributes.py run has run.json and its model "
                         "files: model.keras, or the sharded layout of facepack/runs.py)")
    model_files(run_dir)  # one line naming what is missing, before the model is loaded
    info = json.loads(info_path.read_text())
    if info.get("model") != "attributes":
        raise ValueError(f"run {run_dir}: run.json says model {info.get('model')!r}, expected 'attributes'")
    model, _ = load_run(run_dir, keras)
    a = info["attributes"]
    return export_attributes(model, out_dir, a["names"], a["thresholds"], threshold_method=a["threshold_method"],
                             synthetic=bool(info["synthetic"]),
                             license=f"weights: {info['weights'].get('licence')}; data: {info['dataset']['terms']}",
                             source=str(run_dir), backbone=info.get("backbone"), backends=backends, log=log)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m facepack.export.attributes", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a train_attributes.py run folder")
    p.add_argument("out", help="the bundle folder (e.g. static/models); the model is added to it")
    args = p.parse_args(argv)
    export_attributes_run(args.run, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
