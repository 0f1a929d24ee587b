"""The npm package: the JS library (static/facepack/) + a bundle's models, installable and packed.

Layout of the package folder (templates in npm/):
  package.json   ESM; "exports" conditions node (import: node.js, require: node.cjs), browser /
                 import / default (index.js), types; dependencies pinned (TF.js, pure-JS decoders)
  index.js       browser entry (no `node:` import reachable, no top-level await): modelUrl required
  node.js        Node entry: models/ as the default, readImageFile / analyzer.analyzeFile (decode.js)
  node.cjs       CommonJS entry (require): node.js's API, every function async
  *.d.ts, *.d.cts  types (types.d.cts shared; model-specs.d.cts: each model's input/output names,
                 shapes and dtypes as literal types, generated here from the manifest)
  model-specs.js / .cjs  the same specs at runtime (MODEL_SPECS)
  bin/facepack-assets.cjs  copies models/ and the .wasm files into a web app's served folder
  example.mjs    the README example (face pipeline on a photo, or generic load/predict for --model)
  README.md      example, browser and bundler recipes, API, models table, data and licence terms
  lib/           copy of static/facepack/ (ES modules)
  models/        copy of the bundle (manifest.json + one folder per model)

The folder is written atomically (bundle.atomic_replace); ``npm pack`` then makes the tarball
next to it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from facepack.export import manifest as manifest_mod
from facepack.export.bundle import _log, atomic_replace

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = ROOT / "npm"
LIB_DIR = ROOT / "static" / "facepack"
TFJS_VERSION = "4.22.0"
NAME_RE = re.compile(r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*$")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
FACE_MODELS = {"mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"}
SCUT_TERMS = ("SCUT-FBP5500 (the beauty model's intended training data) is released by its authors for "
              "**non-commercial research only**; a beauty model trained on it, and this package when it "
              "contains one, inherit those terms. Do not use it to make decisions about people.")
MTCNN_TERMS = ("MTCNN weights: from the `mtcnn` 1.0.0 Python package (ipazc/mtcnn), MIT licence, originally "
               "trained by Zhang et al. (2016).")
FACE_API = """- `createFaceAnalyzer(modelConfig?)` -> `{analyze(input, options?), analyzeFile(path, options?) (Node),
  dispose(), backend, backendReason, manifest, models, modelSets}`.
  `modelConfig`: `modelUrl` (Node default: this package's `models/`; required in a browser), `backend`
  (`'auto'`, or `'wasm'`, `'webgl'`, `'cpu'`: a named one that cannot start throws), `models`
  (`['detector', 'beauty', 'keypoints']`, plus `'attributes'` when the bundle has that model), `wasmPaths`.
  `modelSets`: the loaded models by set (`{detector: {pnet, rnet, onet}, beauty: {features, head}, ...}`),
  owned by the analyzer, for running other stages on them without loading a second copy. `input`: `{data, width, height}` (RGB or RGBA
  bytes), a `tf.Tensor3D`, or in a browser an image, canvas, video, `ImageBitmap`, `ImageData` or
  `Blob`/`File`. `analyze` options:
  `maxFaces` (null: all), `minConfidence` and `minBoxSize` (null: the manifest's `spec.face_filter`;
  faces below either are dropped), `minFaceSize` (null: from the manifest), `heatmaps` (false).
  Each face: `{box: {x, y, width, height}, score, landmarks5, keypoints, beauty: {score, distribution}, heatmap?,
  attributes?}` in input-image pixels; `beauty.score` is on 0..100, `beauty.score_1to5` on the dataset's 1..5;
  `attributes` (`{name: {probability, on}}`) when the bundle has an attributes model.
- `createGuidedExplainer(modelUrl?, {manifest}?)` -> `{explain(input, faces), dispose()}`: guided backprop and
  guided Grad-CAM of the beauty score per face (`{square, crop_size, guided, guidedGradcam}`, maps 0..1
  over the beauty crop); ReLU backbones only (`err.code` `'guided-unavailable'` otherwise).
- `drawAccessories(ctx, faces, kinds, spec)`: sunglasses and/or a hat (`ACCESSORIES`) drawn on every
  face from its keypoints onto a 2D canvas context, in image pixels (`spec`: `analyzer.manifest.spec`).
- `readImageFile(path)` (Node) -> `{data, width, height}`: a JPEG or PNG decoded in pure JS, EXIF
  orientation applied.
- `loadModel(name, dirOrUrl?)` -> `{predict(input), dispose(), entry, manifest}`: any model of
  `models/manifest.json` by name (`mtcnn_pnet`, `mtcnn_rnet`, `mtcnn_onet`, `beauty_features`,
  `beauty_head`, `keypoints`).
- `readManifest(dirOrUrl?)`, `useBackend(name)`, `selectBackend(name)` (`{backend, reason}`),
  `MODELS_DIR` (Node), `MODEL_SPECS`."""
FACE_RUN = "Save as `example.mjs` (also shipped in the package) and run `node example.mjs photo.jpg`:"
FACE_INPUTS = """All inputs are raw RGB pixel values 0..255 (float32, NHWC); normalisation is inside the models.

Image files (`readImageFile`, `decodeImage`, `analyzer.analyzeFile`) that cannot be used are refused with a one-line
error naming the file, and `err.code`: `'not-image'` (not a PNG or JPEG), `'corrupt-image'` (damaged or truncated,
e.g. a JPEG cut short: refused as Python and the browsers do, not analysed half grey), `'image-too-large'` (over
108 megapixels), or the system's code for a file that cannot be read (`'ENOENT'`, `'EACCES'`, ...)."""
GENERIC_RUN = ("Save as `example.mjs` (also shipped in the package) and run `node example.mjs`: it feeds the model "
               "one made-up input per model input (by name, batch 1) and prints each output's name, shape and "
               "first values.")
GENERIC_API = """- `loadModel(name, dirOrUrl?)` -> `{predict(input), predictAsync(input), dispose(), entry, manifest,
  inputs, async}`. `input`: for one input a `tf.Tensor` or `{data, shape, dtype?}` (`dtype` defaults to
  that input's dtype in the manifest); for several, an object keyed by input name (or an array in the
  manifest's input order). `predict` is synchronous; `await predictAsync(input)` runs every model,
  graph models with control flow included (`async: true`, manifest `execution: "async"`, where
  `predict` throws). Both return a tensor (or an array of tensors, in the manifest's output order, for
  several outputs) that you dispose.
- `readManifest(dirOrUrl?)`, `useBackend(name)` (`'wasm'`, `'cpu'`, `'webgl'`, `'auto'`), `MODELS_DIR` (Node),
  `MODEL_SPECS` (each model's input/output names, shapes, dtypes; literal types in `model-specs.d.cts`).
- In a browser, serve the package's `models/` folder (and the `.wasm` files of
  `@tensorflow/tfjs-backend-wasm/dist/`: `npx facepack-assets <folder>` copies both) and pass its URL:
  `loadModel(name, url)`, `useBackend('wasm', {wasmPaths})`."""


def check_name_version(name: str, version: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 214:
        raise ValueError(f"--npm-name must be a lowercase npm package name (e.g. facepack or @me/faces), got {name!r}")
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise ValueError(f"--npm-version must be a semver version like 1.2.3, got {version!r}")


def _render(text: str, values: dict) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    left = re.findall(r"\{\{[A-Z_]+\}\}", text)
    if left:
        raise RuntimeError(f"npm template placeholders left unfilled: {sorted(set(left))}")
    return text


def _shape(spec_list) -> str:
    return ", ".join("[" + ", ".join("N" if i == 0 else ("?" if d is None else str(d))
                                     for i, d in enumerate(t["shape"])) + "]" for t in spec_list)


def models_table(manifest: dict) -> str:
    rows = []
    for name, m in manifest["models"].items():
        outs = ", ".join(f"{o['name']} {_shape([o])}" for o in m["outputs"])
        rows.append(f"| `{name}` | {_shape(m['inputs'])} | {outs} | {m['precision']} | "
                    f"{m.get('bytes', 0) / 1e6:.2f} MB | {m['parity']['max_abs_diff']:.2g} |")
    return "\n".join(rows)


def metrics_lines(manifest: dict) -> str:
    """One line per trained run (deduplicated): its test metrics as recorded in run.json."""
    seen, lines = set(), []
    for name, m in manifest["models"].items():
        run = m.get("run", {})
        numbers = {k: v for k, v in (run.get("metrics") or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        key = run.get("path") or name
        if numbers and key not in seen:
            seen.add(key)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in numbers.items())
            lines.append(f"- `{name}` ({m.get('backbone')}, {m.get('input_size')} px): {shown}")
    return ("Test metrics of the trained runs (from their run.json):\n\n" + "\n".join(lines)) if lines else ""


def terms(manifest: dict, face: bool) -> str:
    lines = []
    for name, m in manifest["models"].items():
        run = m.get("run", {})
        ds = run.get("dataset")
        if ds:
            lines.append(f"- `{name}`: trained on {ds.get('name')} - terms: {ds.get('terms')}"
                         + (" (synthetic data)" if run.get("synthetic") else ""))
        elif run.get("source"):
            lines.append(f"- `{name}`: {run['source']}" + (f", {run['license']} licence" if run.get("license") else ""))
    parts = ["\n".join(lines)]
    if face:
        parts += [SCUT_TERMS, MTCNN_TERMS]
    return "\n\n".join(p for p in parts if p)


# Manifests written before inputs[].token_ids (facepack before 2026-12-02) only say the range in
# the parity probe text ("tokens [2, 10] int32: token ids in [0, 50) ..."): read back from there.
_TOKEN_IDS = r"(?:^|: |; ){name} \[[^\]]*\] \w+: token ids in \[0, (\d+)\)"


def token_id_ranges(manifest: dict, model: str) -> dict:
    """{int input name: (min, max_exclusive)} of the token ids the export's probe used (the
    manifest's ``inputs[].token_ids``, keras_export.token_id_range); for a manifest written before
    that field, (0, the bound in the parity probe text: _TOKEN_IDS). Raises ValueError naming the
    model and input when a recorded range is not usable (manifest.token_ids_problem: not integers,
    or min >= max_exclusive)."""
    entry = manifest["models"][model]
    probe = (entry.get("parity") or {}).get("probe") or ""
    ranges = {}
    for spec in entry.get("inputs", []):
        if spec.get("dtype", "float32") not in ("int32", "int64"):
            continue
        if "token_ids" in spec:
            recorded = spec["token_ids"]
            problem = manifest_mod.token_ids_problem(recorded)
            if problem:
                raise ValueError(f"manifest.json: model {model!r}, input {spec.get('name')!r}: inputs[].token_ids "
                                 f"{json.dumps(recorded)[:120]}: {problem}")
            ranges[spec["name"]] = (recorded["min"], recorded["max_exclusive"])
            continue
        m = re.search(_TOKEN_IDS.format(name=re.escape(spec["name"])), probe)  # older manifests only
        if m:
            ranges[spec["name"]] = (0, int(m.group(1)))
    return ranges


def _topology(bundle_dir, manifest: dict, model: str):
    """(format, model.json as a dict) of ``model`` in the bundle, or (format, None) when unreadable."""
    entry = manifest["models"][model]
    if bundle_dir is None:
        return entry.get("format"), None
    path = Path(bundle_dir) / entry.get("path", model) / "model.json"
    try:
        return entry.get("format"), json.loads(path.read_text())
    except (OSError, ValueError):
        return entry.get("format"), None


def _layers(model_json) -> tuple[list, list, list]:
    """(layers, input layer names, output layer names) of a layers-model model.json (Functional or
    Sequential, the tf_keras config bridge.py writes); ([], [], []) for anything else."""
    config = (((model_json or {}).get("modelTopology") or {}).get("model_config") or {})
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else inner if isinstance(inner, list) else None
    if not isinstance(layers, list):
        return [], [], []
    if config.get("class_name") == "Sequential":
        names = [(l.get("config") or {}).get("name") for l in layers]
        # Sequential: the first layer reads the input (an InputLayer, or a layer with batch_input_shape)
        for prev, layer in zip([None] + names, layers):
            layer.setdefault("inbound_nodes", [[[prev, 0, 0, {}]]] if prev else [])
            layer.setdefault("name", (layer.get("config") or {}).get("name"))
        if layers and layers[0].get("class_name") != "InputLayer":
            inputs = ["__input__"]
            layers[0]["inbound_nodes"] = [[["__input__", 0, 0, {}]]]
        else:
            inputs = names[:1]
        return layers, inputs, names[-1:]
    pick = lambda key: [e[0] for e in inner.get(key) or [] if isinstance(e, list) and e]
    return layers, pick("input_layers"), pick("output_layers")


def _inbound_names(layer) -> list:
    """Names of the layers feeding ``layer`` (tf_keras inbound_nodes: [[[name, node, index, kwargs], ...]])."""
    names = []
    for node in layer.get("inbound_nodes") or []:
        for ref in node if isinstance(node, list) else []:
            if isinstance(ref, list) and ref and isinstance(ref[0], str):
                names.append(ref[0])
    return names


def _lookup_tokens(config: dict):
    """An IntegerLookup config's vocabulary without the special tokens (lookup.js's constructor:
    a vocabulary that starts with exactly the mask/OOV tokens has them stripped); None when the
    config holds no list of integers."""
    vocabulary = config.get("vocabulary")
    if not isinstance(vocabulary, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in vocabulary):
        return None
    num_oov = config.get("num_oov_indices", 1)
    mask = config.get("mask_token")
    specials = ([mask] if mask is not None and config.get("output_mode", "int") == "int" else []) \
        + [config.get("oov_token", -1)] * num_oov
    if vocabulary[:len(specials)] == specials:
        vocabulary = vocabulary[len(specials):]
    return vocabulary or None


def token_id_values(manifest: dict, model: str, bundle_dir) -> dict:
    """{int input name: {"values": [...], "count": n, "oov": bool, "layers": [...]}} for an int
    input that only IntegerLookup layers (not inverted) read directly (model.json's layers and
    inbound_nodes): the vocabulary entries valid for all of them (their intersection, ascending),
    ``oov`` false when one has num_oov_indices=0 (an id outside is refused). ``values`` holds at
    most 64 entries (``count`` all of them). Inputs read by other layers too, graph models, and
    vocabularies that are not inline integer lists are left out (TOKEN_ID_RANGE covers them)."""
    fmt, model_json = _topology(bundle_dir, manifest, model)
    if fmt != "layers-model" or model_json is None:
        return {}
    layers, input_names, _ = _layers(model_json)
    int_inputs = {s["name"] for s in manifest["models"][model].get("inputs", [])
                  if s.get("dtype", "float32") in ("int32", "int64")}
    out = {}
    for position, layer_name in enumerate(input_names):
        specs = manifest["models"][model].get("inputs", [])
        name = layer_name if layer_name in int_inputs else (specs[position]["name"] if position < len(specs) else None)
        if name not in int_inputs:
            continue
        readers = [l for l in layers if layer_name in _inbound_names(l)]
        if not readers or any(l.get("class_name") != "IntegerLookup" or (l.get("config") or {}).get("invert")
                              for l in readers):
            continue
        vocabularies = [_lookup_tokens(l.get("config") or {}) for l in readers]
        if any(v is None for v in vocabularies):
            continue
        common = set(vocabularies[0]).intersection(*vocabularies[1:])
        if not common:
            continue
        values = sorted(common)
        out[name] = {"values": values[:64], "count": len(values),
                     "oov": all((l.get("config") or {}).get("num_oov_indices", 1) > 0 for l in readers),
                     "layers": [(l.get("config") or {}).get("name") or l.get("name") for l in readers]}
    return out


_TF_DTYPES = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_INT64": "int32", "DT_BOOL": "bool",
              "DT_STRING": "string", "DT_HALF": "float32", "DT_DOUBLE": "float32", "DT_COMPLEX64": "complex64",
              "DT_INT8": "int32", "DT_UINT8": "int32", "DT_INT16": "int32", "DT_UINT16": "int32"}
# layers that hand their one input through with its dtype (TF.js: reshapes, no arithmetic)
_DTYPE_PRESERVING = {"Reshape", "Flatten", "Permute", "RepeatVector"}


def _layer_output_dtype(by_name: dict, name: str, depth: int = 0) -> str:
    """The dtype TF.js produces for layer ``name``'s output (measured in Node, lib/layers): IntegerLookup
    int32 in every mode (lookup.js), Hashing int32 in "int" mode (float32 otherwise), a reshape of
    one input that input's dtype; float32 for the rest."""
    layer = by_name.get(name)
    if layer is None or depth > 64:
        return "float32"
    cls, config = layer.get("class_name"), layer.get("config") or {}
    if cls == "IntegerLookup":
        return "int32"
    if cls == "Hashing":
        return "int32" if str(config.get("output_mode", "int")).lower() == "int" else "float32"
    if cls == "InputLayer":
        dtype = config.get("dtype", "float32")
        return "int32" if dtype in ("int32", "int64") else "bool" if dtype == "bool" else "float32"
    inbound = _inbound_names(layer)
    if cls in _DTYPE_PRESERVING and len(inbound) == 1:
        return _layer_output_dtype(by_name, inbound[0], depth + 1)
    return "float32"


def output_dtypes(manifest: dict, model: str, bundle_dir) -> list:
    """Each output's dtype (manifest order) as TF.js returns it: the manifest's outputs[].dtype when
    recorded; graph models: model.json's signature outputs (DT_INT32 -> int32, DT_BOOL -> bool, ...,
    by signature_key, else by the tensor name); layers models: the output layer's dtype
    (_layer_output_dtype). float32 where the bundle says nothing."""
    entry = manifest["models"][model]
    outputs = entry.get("outputs", [])
    fmt, model_json = _topology(bundle_dir, manifest, model)
    found = [None] * len(outputs)
    if model_json is not None and fmt == "graph-model":
        signature = ((model_json.get("signature") or {}).get("outputs") or {})
        by_tensor = {v.get("name"): v for v in signature.values() if isinstance(v, dict)}
        for i, spec in enumerate(outputs):
            key = spec.get("signature_key", spec["name"])
            sig = signature.get(key) or by_tensor.get(key) or by_tensor.get(f"{key}:0")
            if isinstance(sig, dict) and sig.get("dtype") in _TF_DTYPES:
                found[i] = _TF_DTYPES[sig["dtype"]]
    elif model_json is not None:
        layers, _, output_names = _layers(model_json)
        by_name = {l.get("name") or (l.get("config") or {}).get("name"): l for l in layers}
        for i, spec in enumerate(outputs):
            layer = output_names[i] if len(output_names) == len(outputs) else spec["name"]
            found[i] = _layer_output_dtype(by_name, layer)
    return [spec.get("dtype") or found[i] or "float32" for i, spec in enumerate(outputs)]


def token_id_bounds(manifest: dict, model: str) -> dict:
    """{int input name: exclusive bound of the token ids the export's probe used}: the
    ``max_exclusive`` of token_id_ranges (which raises for an unusable recorded range)."""
    return {name: high for name, (_, high) in token_id_ranges(manifest, model).items()}


def _dims(shape) -> str:
    return "[" + ", ".join("N" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + "]"


def _vocabulary_note(lookup: dict) -> str:
    """README words on the ids an input read by IntegerLookup layers takes (token_id_values)."""
    shown = ", ".join(str(v) for v in lookup["values"][:12]) + (", ..." if lookup["count"] > 12 else "")
    layers = ", ".join(f"`{n}`" for n in lookup["layers"])
    what = f"{lookup['count']} vocabular{'y entry' if lookup['count'] == 1 else 'y entries'} of IntegerLookup {layers}"
    if not lookup["oov"]:
        return (f"token ids: only the {what} ({shown}; model.json holds the vocabulary): num_oov_indices=0, "
                "any other id is refused")
    return f"token ids: the {what} ({shown}) map to their indices, any other id to the OOV index"


def generic_inputs_note(manifest: dict, bundle_dir=None) -> str:
    """The generic README's section on each model's inputs, outputs and which call runs it."""
    parts = []
    for model, entry in manifest["models"].items():
        ranges = token_id_ranges(manifest, model)
        lookups = token_id_values(manifest, model, bundle_dir)
        dtypes = output_dtypes(manifest, model, bundle_dir)
        lines = [f"### Inputs and outputs of `{model}`", ""]
        for spec in entry.get("inputs", []):
            dtype = spec.get("dtype", "float32")
            low, high = ranges.get(spec["name"], (0, 0))
            note = f" (token ids; the export checked ids in [{low}, {high}))" if spec["name"] in ranges else ""
            lookup = lookups.get(spec["name"])
            if lookup is not None:
                note = f" ({_vocabulary_note(lookup)})"
            lines.append(f"- input `{spec['name']}`: shape {_dims(spec['shape'])}, {dtype}{note}")
        for spec, dtype in zip(entry.get("outputs", []), dtypes):
            lines.append(f"- output `{spec['name']}`: shape {_dims(spec['shape'])}, {dtype}")
        lines.append("")
        lines.append("`N` is the batch size, `?` a free size. Give the inputs as an object keyed by these names "
                     "(or an array in this order); each a `tf.Tensor` or `{data, shape, dtype?}`.")
        if entry.get("execution") == "async":
            lines.append(f"`{model}` has control flow (manifest `execution: \"async\"`): run it with "
                         "`await net.predictAsync(inputs)`; `net.predict` throws for it.")
        else:
            lines.append(f"`{model}` runs with `net.predict(inputs)` (synchronous) or `await net.predictAsync(inputs)` "
                         "(the same outputs).")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def readme_values(manifest: dict, name: str, version: str, example: str, face: bool, bundle_dir=None) -> dict:
    synthetic = manifest.get("synthetic")
    models_example = ""
    if face:
        code = _render((TEMPLATES / "example-models.mjs").read_text(), {"NAME": name}).strip()
        models_example = "Any bundled model by name (no face pipeline around it):\n\n```js\n" + code + "\n```"
    browser = _render((TEMPLATES / "README.browser.md").read_text(), {"NAME": name}) if face else ""
    return {
        "NAME": name, "VERSION": version, "EXAMPLE": example.strip(), "API": FACE_API if face else GENERIC_API,
        "MODELS_EXAMPLE": models_example, "BROWSER": browser,
        "RUN": FACE_RUN if face else GENERIC_RUN,
        "INPUTS_NOTE": FACE_INPUTS if face else generic_inputs_note(manifest, bundle_dir),
        "MODELS_TABLE": models_table(manifest),
        "METRICS": metrics_lines(manifest),
        "SYNTHETIC_NOTE": ("**Note:** at least one model in this package was trained on synthetic data or is "
                           "untrained (manifest.json `synthetic: true`); its outputs are placeholders, not "
                           "meaningful predictions.") if synthetic else "",
        "TERMS": terms(manifest, face), "CREATED": manifest.get("created", ""),
        "VERSIONS": ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items()),
        "DESCRIPTION": ("Face detection (MTCNN), facial keypoints, a beauty score and its Grad-CAM, "
                        "client-side with TensorFlow.js.") if face else
                       f"The Keras model `{next(iter(manifest['models']))}` exported to TensorFlow.js by facepack.",
    }


# Templates copied with {{NAME}} filled in: (file in npm/, path in the package).
ENTRY_FILES = [("index.js", "index.js"), ("node.js", "node.js"), ("node.cjs", "node.cjs"), ("decode.js", "decode.js"),
               ("index.d.ts", "index.d.ts"), ("node.d.ts", "node.d.ts"), ("node.d.cts", "node.d.cts"),
               ("types.d.cts", "types.d.cts"), ("bin/facepack-assets.cjs", "bin/facepack-assets.cjs")]


def model_specs(manifest: dict, bundle_dir=None) -> dict:
    """{model: {inputs: [{name, shape, dtype}], outputs: [...]}} of the manifest (batch axis null);
    the outputs' dtypes from the bundle's model.json where the manifest has none (output_dtypes)."""
    def specs(items, dtypes=None):
        return [{"name": t["name"], "shape": [None if d is None else int(d) for d in t["shape"]],
                 "dtype": dtypes[i] if dtypes else t.get("dtype", "float32")} for i, t in enumerate(items)]
    return {name: {"inputs": specs(m["inputs"]), "outputs": specs(m["outputs"], output_dtypes(manifest, name, bundle_dir))}
            for name, m in manifest["models"].items()}


def _ts_literal(value) -> str:
    """A JSON value as a readonly TypeScript literal type."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "readonly [" + ", ".join(_ts_literal(v) for v in value) + "]"
    return "{ " + " ".join(f"readonly {json.dumps(k)}: {_ts_literal(v)};" for k, v in value.items()) + " }"


def write_model_specs(manifest: dict, folder: Path, bundle_dir=None) -> None:
    """model-specs.js (ESM), model-specs.cjs and model-specs.d.cts: MODEL_SPECS, one source."""
    specs = model_specs(manifest, bundle_dir)
    text = json.dumps(specs, indent=2)
    head = "// Generated by facepack/export/npm.py from models/manifest.json: each model's inputs and outputs.\n"
    (folder / "model-specs.js").write_text(f"{head}export const MODEL_SPECS = {text};\n")
    (folder / "model-specs.cjs").write_text(f"{head}'use strict';\nexports.MODEL_SPECS = {text};\n")
    (folder / "model-specs.d.cts").write_text(f"{head}export declare const MODEL_SPECS: {_ts_literal(specs)};\n")


def _copy_lib(lib_dir: Path, dest: Path) -> int:
    files = sorted(p for p in lib_dir.rglob("*.js") if p.is_file())
    if not any(p.name == "generic.js" for p in files):
        raise ValueError(f"the JS library at {lib_dir} has no generic.js (expected static/facepack/ from the repo)")
    for p in files:
        target = dest / p.relative_to(lib_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, target)
    return len(files)


def npm_pack(folder: Path, log=print) -> Path:
    """Run ``npm pack`` in ``folder``; the tarball goes next to the folder. Returns its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("--npm: `npm` is not on PATH; install Node.js or pass --no-pack")
    proc = subprocess.run([npm, "pack", "--json", "--pack-destination", str(folder.parent)], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"npm pack failed in {folder}: {proc.stderr[-2000:]}")
    info = json.loads(proc.stdout)[0]
    tarball = folder.parent / info["filename"]
    _log(log, f"packed {tarball} ({tarball.stat().st_size / 1e6:.2f} MB, {info['entryCount']} files)")
    return tarball


def build_npm_package(bundle_dir, npm_dir, name: str = "facepack", version: str = "0.1.0",
                      pack: bool = True, lib_dir: Path = LIB_DIR, log=print) -> Path | None:
    """Write the package folder ``npm_dir`` from the bundle at ``bundle_dir``; returns the tarball."""
    t0 = time.perf_counter()
    check_name_version(name, version)
    bundle_dir, npm_dir = Path(bundle_dir), Path(npm_dir)
    manifest = manifest_mod.read_manifest(bundle_dir)
    manifest_mod.verify_files(bundle_dir, manifest)
    face = FACE_MODELS <= set(manifest["models"])
    example_tpl = (TEMPLATES / ("example-face.mjs" if face else "example-generic.mjs")).read_text()
    values = {"NAME": name, "MODEL": next(iter(manifest["models"]))}
    example = _render(example_tpl, values if face else
                      {**values, "TOKEN_ID_RANGE": json.dumps({k: list(v) for k, v in token_id_ranges(manifest, values["MODEL"]).items()}),
                       "TOKEN_ID_VALUES": json.dumps({k: v["values"] for k, v in
                                                      token_id_values(manifest, values["MODEL"], bundle_dir).items()})})
    with atomic_replace(npm_dir) as tmp:
        count = _copy_lib(Path(lib_dir), tmp / "lib")
        shutil.copytree(bundle_dir, tmp / "models")
        (tmp / "example.mjs").write_text(example)
        for src, dest in ENTRY_FILES:
            (tmp / dest).parent.mkdir(parents=True, exist_ok=True)
            (tmp / dest).write_text(_render((TEMPLATES / src).read_text(), values))
        (tmp / "bin" / "facepack-assets.cjs").chmod(0o755)
        write_model_specs(manifest, tmp, bundle_dir)
        readme = readme_values(manifest, name, version, example, face, bundle_dir)
        text = _render((TEMPLATES / "README.template.md").read_text(), readme)
        (tmp / "README.md").write_text(re.sub(r"\n{3,}", "\n\n", text))
        pkg = json.loads(_render((TEMPLATES / "package.template.json").read_text(),
                                 {"NAME": name, "VERSION": version,
                                  "DESCRIPTION": readme["DESCRIPTION"].replace('"', "'")}))
        assert pkg["dependencies"]["@tensorflow/tfjs"] == pkg["dependencies"]["@tensorflow/tfjs-backend-wasm"] == TFJS_VERSION
        missing = [f for f in pkg["files"] if not (tmp / f).exists()]
        if missing:
            raise RuntimeError(f"npm/package.template.json lists files the package lacks: {missing}")
        (tmp / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    _log(log, f"wrote npm package {name}@{version} in {npm_dir} ({count} library files) "
              f"in {time.perf_counter() - t0:.1f} s")
    return npm_pack(npm_dir, log) if pack else None
