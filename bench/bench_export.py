"""facepack's exporter next to the official tensorflowjs_converter on the same Keras 3 models.

    python bench/bench_export.py            # the whole zoo: 111 models (36 min on 2 shared cores at load 10)
    python bench/bench_export.py --quick    # the fast zoo rows only (those the default test run checks)
    python bench/bench_export.py --only lstm causal_conv1d

Models: facepack/export/zoo (one per issue-11 layer kind and per Keras layer family, a few
keras.applications with weights=None at small sizes, typical user models), each with seeded
non-trivial weights and its own inputs (token ids for Embedding, masked steps for Masking, ...).

Routes, each bundle then run in TF.js 4.22 under Node on the cpu AND wasm backends and compared
with Keras predict (match: max |keras - tfjs| / max |keras| < 1e-4 on both backends):
  facepack           facepack.export.export_model (path = the .keras file), run through the
                     facepack JS library (static/facepack/generic.js load -> predictAsync, with its
                     registered layers/kernels)
  keras              official converter, --input_format keras on the model saved as Keras 3 .h5
  keras_keras        --input_format keras_keras on the .keras file
  tf_saved_model     --input_format tf_saved_model on model.export()'s SavedModel (graph model)
  keras_saved_model  --input_format keras_saved_model on the same SavedModel
The official bundles run in plain TF.js (tf.loadLayersModel / tf.loadGraphModel, executeAsync),
as a user of the official converter has it: no facepack layers. Their graph models' outputs may
come in another order (the signature's output_0..): the best-matching order is taken. The
official converter is called through its Python API (tensorflowjs.converters.converter.convert,
the function behind the tensorflowjs_converter command, same arguments).

"official best": the first route (in the order above) that matches on both backends ("-": none).
JSON: bench/results/export.json; bundles under bench/results/export/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

OFFICIAL = ("keras", "keras_keras", "tf_saved_model", "keras_saved_model")
WORK = common.RESULTS_DIR / "export"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="only the zoo's fast rows (no applications, no per-activation models)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="these zoo rows only")
    p.add_argument("--no-official", action="store_true", help="skip the official converter (facepack only)")
    return p.parse_args(argv)


def _quiet():
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    warnings.simplefilter("ignore")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def official_inputs(prep, folder: Path) -> dict:
    """The files each official route reads: {"keras": .h5, "keras_keras": .keras, "tf_saved_model": dir, ...}."""
    folder.mkdir(parents=True, exist_ok=True)
    model, out = prep.model, {}
    for route, make in (("keras", lambda p: model.save(p)), ("keras_keras", lambda p: model.save(p))):
        path = folder / ("model.h5" if route == "keras" else "model.keras")
        try:
            make(path)
            out[route] = path
        except Exception as err:  # noqa: BLE001
            out[route] = f"save: {type(err).__name__}: {str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}"
    saved = folder / "saved_model"
    try:
        model.export(str(saved), format="tf_saved_model", verbose=False)
        out["tf_saved_model"] = out["keras_saved_model"] = saved
    except Exception as err:  # noqa: BLE001
        out["tf_saved_model"] = out["keras_saved_model"] = f"model.export: {type(err).__name__}: {str(err).strip()[:200]}"
    return out


def run_official(route: str, source, out_dir: Path) -> dict:
    """tensorflowjs_converter --input_format ROUTE SOURCE OUT_DIR (its Python API); never raises."""
    from facepack.export.zoo.harness import first_line

    if isinstance(source, str):
        return {"status": "failed", "message": source, "model_json": None}
    from tensorflowjs.converters import converter

    args = ["--input_format", route]
    # (keras_keras has no default output format: without one the converter refuses the pair)
    args += ["--output_format", "tfjs_graph_model" if route == "tf_saved_model" else "tfjs_layers_model"]
    if out_dir.exists():
        shutil.rmtree(out_dir)
    t0 = time.perf_counter()
    try:
        converter.convert(args + [str(source), str(out_dir)])
    except BaseException as err:  # noqa: BLE001 - SystemExit from argparse included
        return {"status": "failed", "message": first_line(err), "model_json": None, "seconds": time.perf_counter() - t0}
    model_json = out_dir / "model.json"
    if not model_json.is_file():
        return {"status": "failed", "message": "no model.json written", "model_json": None}
    return {"status": "exported", "message": "", "model_json": str(model_json), "seconds": time.perf_counter() - t0}


def cell(route_result: dict, verdicts: dict) -> str:
    """A table cell: ok | wrong/run error per backend | the conversion failure."""
    if route_result["status"] != "exported":
        message = re.sub(r"^ExportError: cannot export '[^']*' to TF.js: ", "", route_result["message"])
        return f"{route_result['status']}: {message[:60]}"
    if all(v["ok"] for v in verdicts.values()):
        return "ok"
    bad = []
    for backend, v in verdicts.items():
        if not v["ok"]:
            bad.append(f"{backend} " + (f"rel {v['rel']:.1g}" if v.get("rel") is not None else f"error: {v['error'][:50]}"))
    return "; ".join(bad)


def main(argv=None) -> dict:
    args = parse_args(argv)
    _quiet()
    import keras

    from facepack.export import zoo
    from facepack.export.zoo import harness

    rows = zoo.select(slow=False if args.quick else None, names=args.only)
    info = common.machine_info()
    import tensorflow as tf
    info["tensorflow"] = tf.__version__
    t0 = time.perf_counter()
    if WORK.exists():
        shutil.rmtree(WORK)
    preps, facepack, official = [], {}, {}
    for entry in rows:
        try:
            prep = harness.prepare(entry, keras, WORK / entry.name)
        except Exception:  # noqa: BLE001 - a zoo row that does not build is the zoo's bug
            traceback.print_exc()
            continue
        preps.append(prep)
        facepack[entry.name] = harness.export_facepack(prep, WORK / entry.name / "facepack")
        fp = facepack[entry.name]
        line = f"{entry.name}: facepack {fp['status']} {fp['format'] or fp['message'][:80]} ({fp['seconds']:.1f} s)"
        if not args.no_official:
            sources = official_inputs(prep, WORK / entry.name / "sources")
            official[entry.name] = {r: run_official(r, sources[r], WORK / entry.name / r) for r in OFFICIAL}
            line += "; official " + ", ".join(f"{r} {v['status']}" for r, v in official[entry.name].items())
        print(line, flush=True)
    t_export = time.perf_counter() - t0

    # --- TF.js: one node process per backend and library ------------------------------------
    fp_requests = harness.facepack_requests(preps, facepack, WORK / "_inputs")
    off_requests = []
    for prep in preps:
        for route, res in official.get(prep.entry.name, {}).items():
            if res["status"] == "exported":
                off_requests.append({"id": f"{prep.entry.name}.{route}", "modelJson": res["model_json"],
                                     "inputs": harness.input_specs(prep, WORK / "_inputs", prep.entry.name)})
    outs = {}
    for backend in harness.BACKENDS:
        outs[("facepack", backend)] = harness.run_batch(fp_requests, backend, "facepack", WORK / f"_node-facepack-{backend}")
        outs[("plain", backend)] = harness.run_batch(off_requests, backend, "plain", WORK / f"_node-plain-{backend}")
    t_node = time.perf_counter() - t0 - t_export

    # --- compare ----------------------------------------------------------------------------
    results, table = {}, []
    for prep in preps:
        name = prep.entry.name
        fp = facepack[name]
        fp_v = {b: harness.compare(prep.ref, outs[("facepack", b)][name]) for b in harness.BACKENDS} \
            if fp["status"] == "exported" else {}
        fp_outcome = harness.outcome(fp, fp_v)
        routes = {}
        for route, res in official.get(name, {}).items():
            verdicts = {b: harness.compare(prep.ref, outs[("plain", b)][f"{name}.{route}"], any_order=True)
                        for b in harness.BACKENDS} if res["status"] == "exported" else {}
            routes[route] = {**res, "backends": verdicts, "outcome": harness.outcome(res, verdicts) if verdicts else "failed",
                             "cell": cell(res, verdicts)}
        best = next((r for r in OFFICIAL if r in routes and routes[r]["outcome"] == "match"), None)
        results[name] = {"family": prep.entry.family, "case": prep.entry.case, "slow": prep.entry.slow,
                         "facepack": {**fp, "backends": fp_v, "outcome": fp_outcome, "cell": cell(fp, fp_v)},
                         "official": routes, "official_best": best}
        fp_cell = cell(fp, fp_v) if fp["status"] != "exported" else \
            "ok" if fp_outcome == "match" else f"wrong ({fp['format']}): {cell(fp, fp_v)}"
        table.append([name, fp_cell[:70], best or "-"] + [routes[r]["cell"][:45] if r in routes else "-" for r in OFFICIAL])

    def totals(kind):
        if kind == "facepack":
            outs_ = [r["facepack"] for r in results.values()]
            return {"models": len(outs_), "exported": sum(o["status"] == "exported" for o in outs_),
                    "match": sum(o["outcome"] == "match" for o in outs_),
                    "refused": sum(o["outcome"] == "refused" for o in outs_),
                    "wrong": sum(o["outcome"] == "wrong" for o in outs_),
                    "crashed": sum(o["outcome"] == "crashed" for o in outs_),
                    **{f"match_{b}": sum(bool(o["backends"]) and o["backends"][b]["ok"] for o in outs_)
                       for b in harness.BACKENDS}}
        per_route = [r["official"] for r in results.values() if r["official"]]
        if kind == "official_best":
            return {"models": len(per_route),
                    "exported": sum(any(v["status"] == "exported" for v in rs.values()) for rs in per_route),
                    "match": sum(any(v["outcome"] == "match" for v in rs.values()) for rs in per_route),
                    **{f"match_{b}": sum(any(v["backends"] and v["backends"][b]["ok"] for v in rs.values())
                                         for rs in per_route) for b in harness.BACKENDS}}
        rs = [r[kind] for r in per_route if kind in r]
        return {"models": len(rs), "exported": sum(v["status"] == "exported" for v in rs),
                "match": sum(v["outcome"] == "match" for v in rs),
                **{f"match_{b}": sum(bool(v["backends"]) and v["backends"][b]["ok"] for v in rs) for b in harness.BACKENDS}}

    summary = {"facepack": totals("facepack")}
    if official:
        summary["official_best"] = totals("official_best")
        summary.update({f"official_{r}": totals(r) for r in OFFICIAL})
    elapsed = {"total_s": time.perf_counter() - t0, "export_s": t_export, "tfjs_s": t_node}

    print()
    print(common.machine_line(info) + f", Keras {keras.__version__}, exporter: {harness.exporter_name()}")
    print(f"{len(preps)} zoo models; match = max|keras - tfjs| / max|keras| < {harness.REL_TOL:g} on TF.js cpu AND wasm")
    print(common.format_table(["model", "facepack", "official best"] + list(OFFICIAL), table))
    print()
    tot_rows = [[k, v["models"], v["exported"], v["match"], v.get("match_cpu"), v.get("match_wasm")]
                for k, v in summary.items()]
    print(common.format_table(["route", "models", "exported", "match (both)", "match cpu", "match wasm"], tot_rows))
    print(f"\n{elapsed['total_s']:.0f} s (export {t_export:.0f} s, TF.js {t_node:.0f} s)")
    data = {"machine": info, "args": vars(args), "keras": keras.__version__, "exporter": harness.exporter_name(),
            "rel_tol": harness.REL_TOL, "elapsed": elapsed, "totals": summary, "models": results}
    path = common.write_json("export", json.loads(json.dumps(data, default=str)))
    print(f"JSON: {path}")
    return data


if __name__ == "__main__":
    main()
