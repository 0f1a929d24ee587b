/**
 * Node runner for tests/test_keypoints_mirror.py: the keypoint stage (static/facepack/pipeline.js
 * describeFaces with the keypoint model only) on given faces, with mirrorKeypoints true and false,
 * and the option's resolution (options.js:resolveAnalyzeOptions) and errors.
 *
 *   node tests/js/keypoints_mirror.mjs JOB.json  ->  one JSON document on stdout
 *
 * JOB: {bundle, images: [{name, path, width, height, faces: [{box, score, landmarks5}]}]}.
 * Output: {backend, results: [{name, mirror: [faces], plain: [faces]}], defaults: {spec, flipped},
 *          errors: [message per bad value], permutation, tensors_left}.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';

import { useBackend } from '../../static/facepack/backend.js';
import { loadManifest } from '../../static/facepack/io.js';
import { resolveAnalyzeOptions } from '../../static/facepack/options.js';
import { describeFaces, disposeModelSets, loadModelSets, mirrorPermutation } from '../../static/facepack/pipeline.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const backend = await useBackend('wasm');
const manifest = await loadManifest(job.bundle);
const { spec } = manifest;
const sets = await loadModelSets(job.bundle, manifest, ['keypoints']);
const before = tf.memory().numTensors;
const results = [];
for (const item of job.images) {
  const data = Float32Array.from(new Uint8Array(readFileSync(item.path)));
  const image = tf.tensor3d(data, [item.height, item.width, 3]);
  const out = { name: item.name };
  for (const [key, mirrorKeypoints] of [['mirror', true], ['plain', false]]) {
    const faces = item.faces.map((f) => ({ ...f }));
    out[key] = await describeFaces(sets, spec, image, faces, { heatmaps: false, mirrorKeypoints });
  }
  image.dispose();
  results.push(out);
}
const tensorsLeft = tf.memory().numTensors - before;
disposeModelSets(sets);
const flippedSpec = { ...spec, keypoints: { ...spec.keypoints, mirror_average: !spec.keypoints.mirror_average } };
const defaults = {
  spec: resolveAnalyzeOptions({}, spec).mirrorKeypoints,
  flipped: resolveAnalyzeOptions({}, flippedSpec).mirrorKeypoints,
  given: resolveAnalyzeOptions({ mirrorKeypoints: !spec.keypoints.mirror_average }, spec).mirrorKeypoints,
};
const errors = ['yes', 1, 0].map((value) => {
  try {
    resolveAnalyzeOptions({ mirrorKeypoints: value }, spec);
    return null;
  } catch (err) {
    return err.message;
  }
});
process.stdout.write(JSON.stringify({
  backend, results, defaults, errors, permutation: mirrorPermutation(spec, sets.keypoints.model.entry.points_format),
  tensors_left: tensorsLeft,
}));
