/**
 * Node runner for tests/test_js_per_face.py: static/facepack/pipeline.js:perFaceTargets and the
 * perFaceLimit option's checks (options.js:resolveAnalyzeOptions), on the faces the test sends.
 *
 *   node tests/js/per_face.mjs JOB.json  ->  {targets: [[indices of the faces kept], ...], errors: [message|null, ...]}
 *
 * JOB: {spec (manifest "spec"), faces: [{box, score}], limits: [number|null], bad: [values of perFaceLimit]}
 */
import { readFileSync } from 'node:fs';

import { resolveAnalyzeOptions } from '../../static/facepack/options.js';
import { perFaceTargets } from '../../static/facepack/pipeline.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const targets = job.limits.map((limit) => {
  const limitOpt = resolveAnalyzeOptions({ perFaceLimit: limit }, job.spec).perFaceLimit;
  return perFaceTargets(job.faces, limitOpt).map((f) => job.faces.indexOf(f));
});
const errors = job.bad.map((value) => {
  try {
    resolveAnalyzeOptions({ perFaceLimit: value }, job.spec);
    return null;
  } catch (err) {
    return err.message;
  }
});
process.stdout.write(JSON.stringify({ targets, errors }));
