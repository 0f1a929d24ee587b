"""Milliseconds per face of keypoint bundles alone, in headless Chromium on the WASM backend (issue 19).

    python bench/bench_keypoints_speed.py DIR [DIR ...]     # DIR: a convert/to_tfjs.py --out folder

Each DIR's keypoints/model.json is loaded as the library loads it (tf.loadLayersModel, then
ops/fuse_layers.js fuseLayersModel, as static/facepack/pipeline.js:loadModelSets), warmed up on
zeros, then predict on one random 1 x S x S x 3 crop (0..255) --calls times with the result read
back (dataSync); the median and the 10th/90th percentiles in ms are printed as JSON. With
--mirror, also static/facepack/keypoints.js:keypointOutputs with the manifest's
spec.mirror_permutation (test-time mirror averaging: one batch of 2, the crop and its mirror,
averaged), interleaved call by call with the plain keypointOutputs ("mirror_*" keys).
The whole analyze (detector included) is bench/bench_speed.py's; this isolates the keypoint stage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

MODULE = """
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '/facepack/backend.js';
import { fuseLayersModel } from '/facepack/ops/fuse_layers.js';
import { keypointOutputs } from '/facepack/keypoints.js';
await useBackend('wasm');
const out = {threads: getThreadsCount(), models: []};
for (const url of %(urls)s) {
  const model = await tf.loadLayersModel(url);
  const fused = fuseLayersModel(model);
  const s = model.inputs[0].shape[1];
  const x = tf.randomUniform([1, s, s, 3], 0, 255);
  for (let i = 0; i < 5; i++) model.predict(x).dataSync();
  const ms = [];
  for (let i = 0; i < %(calls)d; i++) {
    const t0 = performance.now();
    const y = model.predict(x);
    y.dataSync();
    ms.push(performance.now() - t0);
    y.dispose();
  }
  const timed = {plain: [], mirror: []};
  if (%(mirror)s) {
    const manifest = await (await fetch(url.replace('keypoints/model.json', 'manifest.json'))).json();
    const perm = manifest.spec.mirror_permutation[manifest.models.keypoints.points_format];
    const loaded = {model, format: 'layers-model', entry: manifest.models.keypoints};
    for (let i = 0; i < 5; i++) await keypointOutputs(loaded, x, perm);
    for (let i = 0; i < %(calls)d; i++) {
      for (const [key, p] of [['plain', null], ['mirror', perm]]) {
        const t0 = performance.now();
        await keypointOutputs(loaded, x, p);
        timed[key].push(performance.now() - t0);
      }
    }
  }
  x.dispose();
  out.models.push({url, fused, input_size: s, ms, timed});
}
window.result = out;
"""


def main(argv=None) -> dict:
    import numpy as np

    from jsharness import chromium_page, page_html, static_server

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundles", nargs="+", type=Path, help="convert/to_tfjs.py --out folders")
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--mirror", action="store_true", help="also time keypointOutputs with and without mirror averaging")
    args = p.parse_args(argv)
    routes = {f"/b{i}/": b.resolve() for i, b in enumerate(args.bundles)}
    urls = [f"/b{i}/keypoints/model.json" for i in range(len(args.bundles))]
    html = page_html(MODULE % {"urls": json.dumps(urls), "calls": args.calls, "mirror": json.dumps(args.mirror)})
    with static_server(routes, {"/bench.html": html}) as base:
        with chromium_page(base + "/bench.html", timeout_ms=90_000) as page:
            from jsharness import wait_for_global

            res = wait_for_global(page, "result", timeout_ms=90_000)
    report = {"threads": res["threads"], "models": {}}
    for b, m in zip(args.bundles, res["models"]):
        ms = np.array(m["ms"])
        weights = sum(f.stat().st_size for f in (b / "keypoints").iterdir() if f.suffix == ".bin")
        report["models"][str(b)] = {"median_ms": round(float(np.median(ms)), 2),
                                    "p10_ms": round(float(np.percentile(ms, 10)), 2),
                                    "p90_ms": round(float(np.percentile(ms, 90)), 2),
                                    "fused_chains": m["fused"], "input_size": m["input_size"],
                                    "weight_bytes": weights}
        for key, values in m["timed"].items():
            if values:
                v = np.array(values)
                report["models"][str(b)].update({f"{key}_outputs_median_ms": round(float(np.median(v)), 2),
                                                 f"{key}_outputs_p90_ms": round(float(np.percentile(v, 90)), 2)})
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
