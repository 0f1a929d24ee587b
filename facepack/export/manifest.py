"""The bundle's manifest.json: what it holds, how it is checked, and its JSON schema.

The JavaScript reads everything it needs from here (DESIGN.md contract 1): the spec, and for
each model its path, format, input/output shapes and names. ``validate`` checks a manifest
against ``manifest_schema.json`` with a tiny validator (type, required, properties,
additionalProperties, items, enum, minimum, pattern) so no jsonschema dependency is needed.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from facepack import spec

# TF.js computes integer tensors as int32 (no int64): the range token ids and int inputs must fit
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1

SCHEMA_PATH = Path(__file__).with_name("manifest_schema.json")
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
# the face pipeline settings a bundle needs once it holds a face model (role other than "user");
# a bundle of user models only (facepack-export) has "spec": {}
FACE_SPEC_KEYS = ("spec_version", "mtcnn", "beauty", "keypoints", "crop", "gradcam")


def versions() -> dict:
    """Versions of the libraries that produced the bundle (from the installed distributions:
    importing tensorflowjs would pull in TF Decision Forests and JAX just for a version)."""
    from importlib.metadata import PackageNotFoundError, version

    import facepack

    out = {}
    for key, dist in (("tensorflow", "tensorflow"), ("keras", "keras"), ("tf_keras", "tf_keras"),
                      ("tensorflowjs", "tensorflowjs")):
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            out[key] = "not installed"
    out["facepack"] = getattr(facepack, "__version__", "0.1.0")
    return out


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def tensor_specs(tensors, names=None) -> list[dict]:
    """[{name, shape}] of Keras tensors (None for variable dimensions)."""
    names = names or [t.name.split("/")[0].split(":")[0] for t in tensors]
    return [{"name": n, "shape": [None if d is None else int(d) for d in t.shape]} for n, t in zip(names, tensors)]


def build_manifest(models: dict, created: str | None = None) -> dict:
    """The manifest dict for ``models`` ({name: entry}); "synthetic" if any model's run is.
    "spec" is the face pipeline's (spec.spec_dict()) unless every model is a user model (role
    "user"): then {}."""
    synthetic = any(bool((m.get("run") or {}).get("synthetic")) for m in models.values())
    face = not models or any(m.get("role") != "user" for m in models.values())
    return {"format_version": FORMAT_VERSION, "spec": spec.spec_dict() if face else {}, "models": models,
            "synthetic": synthetic, "versions": versions(), "created": created or now_iso()}


def write_manifest(folder: str | Path, manifest: dict) -> Path:
    validate(manifest)
    path = Path(folder) / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise ValueError(f"--out {folder}: expected a bundle with {MANIFEST_FILE}, found none")
    return json.loads(path.read_text())


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


# --- a tiny JSON-schema validator (the subset manifest_schema.json uses) ------------------
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is_type(value, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def schema_errors(value, schema: dict, where: str = "$") -> list[str]:
    """Every violation of ``schema`` by ``value``, each naming the JSON path."""
    errors = []
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_is_type(value, t) for t in types):
            return [f"{where}: expected {' or '.join(types)}, got {type(value).__name__} {json.dumps(value)[:60]}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: expected one of {schema['enum']}, got {value!r}")
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        errors.append(f"{where}: expected >= {schema['minimum']}, got {value!r}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{where}: expected to match /{schema['pattern']}/, got {value!r}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: missing required key {key!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                errors += schema_errors(item, props[key], f"{where}.{key}")
            elif extra is False:
                errors.append(f"{where}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{where}[{i}]")
    if isinstance(value, list) and "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{where}: expected at least {schema['minItems']} items, got {len(value)}")
    return errors


def token_ids_problem(recorded) -> str | None:
    """What is wrong with one ``inputs[].token_ids`` (None: nothing): min and max_exclusive must be
    integers (not booleans, not 3.0) with min < max_exclusive (an empty range checks nothing
    and leaves npm's example no id to draw), inside int32 (TF.js has no int64); min may be negative
    (an IntegerLookup vocabulary with negative entries)."""
    if not isinstance(recorded, dict):
        return f"expected an object {{min, max_exclusive, source}}, got {json.dumps(recorded)[:60]}"
    bad = [f"{key} {json.dumps(recorded.get(key))[:30]}" for key in ("min", "max_exclusive")
           if not _is_type(recorded.get(key), "integer")]
    if bad:
        return f"{' and '.join(bad)}: expected integers"
    if not INT32_MIN <= recorded["min"] < recorded["max_exclusive"] <= INT32_MAX + 1:
        return (f"min {recorded['min']} and max_exclusive {recorded['max_exclusive']}: expected "
                f"-2**31 <= min < max_exclusive <= 2**31 (the range of token ids is empty or outside int32, "
                f"which TF.js computes ids in)")
    return None


def token_ids_errors(manifest: dict) -> list[str]:
    """Each model input whose ``token_ids`` is not a usable range (token_ids_problem), by name."""
    errors = []
    models = manifest.get("models") if isinstance(manifest, dict) else None
    for model, entry in (models or {}).items() if isinstance(models, dict) else ():
        inputs = entry.get("inputs") if isinstance(entry, dict) else None
        for i, spec in enumerate(inputs if isinstance(inputs, list) else []):
            if isinstance(spec, dict) and "token_ids" in spec:
                problem = token_ids_problem(spec["token_ids"])
                if problem:
                    errors.append(f"$.models.{model}.inputs[{i}].token_ids (model {model!r}, input "
                                  f"{spec.get('name')!r}): {problem}")
    return errors


def validate(manifest: dict) -> None:
    """Raise ValueError listing every schema violation of ``manifest`` (and every unusable
    ``inputs[].token_ids`` range, naming the input: token_ids_errors)."""
    errors = schema_errors(manifest, load_schema()) + token_ids_errors(manifest)
    models, settings = manifest.get("models"), manifest.get("spec")
    if isinstance(models, dict) and isinstance(settings, dict) and \
            any(isinstance(m, dict) and m.get("role") != "user" for m in models.values()):
        errors += [f"$.spec: missing required key {k!r} (a bundle with face models)" for k in FACE_SPEC_KEYS
                   if k not in settings]
    if errors:
        raise ValueError("manifest.json does not match facepack/export/manifest_schema.json:\n  " + "\n  ".join(errors))


def verify_files(folder: str | Path, manifest: dict | None = None) -> None:
    """Check that every file listed in the manifest exists with its size and sha256."""
    from facepack.export.tfjs_io import sha256

    folder = Path(folder)
    manifest = manifest or read_manifest(folder)
    for name, entry in manifest["models"].items():
        for f in entry["files"]:
            path = folder / f["path"]
            if not path.is_file():
                raise ValueError(f"model {name!r}: file {f['path']} is missing from {folder}")
            if path.stat().st_size != f["bytes"] or sha256(path) != f["sha256"]:
                raise ValueError(f"model {name!r}: file {f['path']} differs from the manifest (size or sha256)")
