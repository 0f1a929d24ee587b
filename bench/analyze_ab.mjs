/**
 * Whole analyze(), before vs after, in ONE Node process (WASM), interleaved call by call, with
 * this process's CPU time next to the wall clock: on a loaded shared machine the CPU ms stay
 * comparable where the wall clock does not (issue 14). Prints one JSON line per photo and column.
 *
 *   node bench/analyze_ab.mjs JOB.json
 *
 * JOB: {bundle, repeat, heatmaps?, columns: [{name, library?: path of another copy's index.js (default: this
 *       one), options?: analyze options}], images: [{name, path, width, height}]} (raw RGB,
 *       tests/jsharness.py:write_raw). Per column and photo: faces, and the fastest and median of
 *       the warm calls (the first dropped), wall and CPU ms, and `same_as_first`: whether the
 *       column's last result equals the first column's as JSON (every number, timings left out;
 *       with JOB.heatmaps the Grad-CAM maps too): an exact speed change keeps it true.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const columns = [];
for (const col of job.columns) {
  const lib = await import(col.library ? pathToFileURL(col.library).href : '../static/facepack/index.js');
  columns.push({ ...col, analyzer: await lib.createFaceAnalyzer({ modelUrl: job.bundle, backend: 'wasm' }) });
}
/** analyze()'s result as JSON without its timings (typed arrays as plain lists). */
const resultJson = (r) => JSON.stringify(r, (k, v) => (k === 'timings' ? undefined : ArrayBuffer.isView(v) ? Array.from(v) : v));
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
for (const item of job.images) {
  const input = { data: new Uint8Array(readFileSync(item.path)), width: item.width, height: item.height };
  const runs = Object.fromEntries(columns.map((c) => [c.name, { wall: [], cpu: [], faces: 0, json: null }]));
  for (let i = 0; i < job.repeat; i++) {
    for (const c of columns) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await c.analyzer.analyze(input, { heatmaps: job.heatmaps ?? false, ...(c.options ?? {}) });
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      if (i === 0) continue; // the first call of each photo warms up
      runs[c.name].wall.push(wall);
      runs[c.name].cpu.push((cpu.user + cpu.system) / 1000);
      runs[c.name].faces = r.faces.length;
      if (i === job.repeat - 1) runs[c.name].json = resultJson(r);
    }
  }
  const first = runs[columns[0].name].json;
  for (const [name, r] of Object.entries(runs)) {
    const round = (v) => Math.round(v);
    process.stdout.write(`${JSON.stringify({
      photo: item.name, column: name, faces: r.faces, wall_min: round(Math.min(...r.wall)), wall_median: round(median(r.wall)),
      cpu_min: round(Math.min(...r.cpu)), cpu_median: round(median(r.cpu)), same_as_first: r.json === first,
    })}\n`);
  }
}
for (const c of columns) c.analyzer.dispose();
