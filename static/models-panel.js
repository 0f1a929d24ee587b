/**
 * The "Models loaded" panel: one row per model of the bundle's manifest (backbone, precision,
 * size, training data, metrics, parity with Python), the synthetic-data notice and the terms of
 * every dataset and weight source. Used by app.js once the manifest is read.
 */
import { $, el, formatBytes } from './page-dom.js';

function describeMetrics(metrics) {
  const entries = Object.entries(metrics ?? {})
    .filter(([k, v]) => k !== 'command' && (typeof v === 'number' || typeof v === 'string'));
  if (!entries.length) return 'none recorded';
  return entries.map(([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toPrecision(4)) : v}`).join(', ');
}

/**
 * The metrics cell: the cross-validated headline first when the run has one (run.cv, from the
 * run's cv.json; facepack/export/sources.py:run_meta), then the run's own metrics; for keypoints
 * it says the NME is the model alone and whether the page mirror-averages (spec.keypoints.mirror_average),
 * with the mirror-averaged NME when the run records it (run.metrics_mirror).
 */
export function describeRunMetrics(name, run, manifest) {
  const parts = [];
  const cv = run.cv;
  if (cv && typeof cv.pc_mean === 'number') { // pc_std and folds may be missing (a hand-written cv.json): left out
    const spread = typeof cv.pc_std === 'number' ? ` ± ${cv.pc_std.toFixed(4)}` : '';
    const folds = Number.isInteger(cv.folds) ? ` (${cv.folds} folds)` : '';
    parts.push(`CV pc ${cv.pc_mean.toFixed(4)}${spread}${folds}; this run: `);
  }
  parts.push(describeMetrics(run.metrics));
  if (name === 'keypoints') {
    const mirrored = manifest.spec?.keypoints?.mirror_average === true;
    const m = run.metrics_mirror;
    parts.push(` (model alone; the page ${mirrored ? 'mirror-averages' : 'does not mirror-average'}`
      + `${mirrored && typeof m?.nme_mean === 'number' ? `: nme_mean ${Number(m.nme_mean.toPrecision(4))} mirror-averaged` : ''})`);
  }
  return parts.join('');
}

const CRITERION_LABELS = { max_abs_diff: 'max |Δ|', rel_rms: 'rel rms' };

/**
 * The parity cell: the number the export's check compared with its tolerance (parity.criterion,
 * facepack/export: 'max_abs_diff' or 'rel_rms'; max_abs_diff when absent), then the other one.
 */
export function describeParity(parity) {
  if (!parity || typeof parity.max_abs_diff !== 'number') return 'not checked';
  const criterion = parity.criterion ?? 'max_abs_diff';
  const value = parity[criterion];
  if (typeof value !== 'number' || typeof parity.tolerance !== 'number') return `not checked (no ${criterion} in the manifest)`;
  const ok = value <= parity.tolerance;
  const other = criterion === 'max_abs_diff' ? '' : `; max |Δ| ${parity.max_abs_diff.toExponential(1)}`;
  return `${ok ? '✓' : '✗'} ${CRITERION_LABELS[criterion] ?? criterion} ${value.toExponential(1)} `
    + `(tol ${Number(parity.tolerance.toPrecision(2))}${other})${parity.against ? ` vs ${parity.against}` : ''}`;
}

/**
 * The precision cell: the manifest's precision, and for a quantised model whose rule kept some
 * kernels float16 (its "quantization" block, facepack/export/quantize.py:prepare_beauty_uint8) how many.
 */
export function describePrecision(entry) {
  const precision = entry.precision ?? '–';
  const q = entry.quantization;
  if (!Array.isArray(q?.float16) || !q.float16.length) return precision;
  const kernels = q.float16.length + (Array.isArray(q.on_grid) ? q.on_grid.length : 0);
  return `${precision}, ${q.float16.length} of ${kernels} kernels float16`;
}

/** One row of the models table. */
function modelRow(name, entry, manifest) {
  const run = entry.run ?? {};
  const dataset = run.dataset ?? {};
  const synthetic = Boolean(run.synthetic ?? manifest.synthetic);
  const bytes = entry.bytes ?? (entry.files ?? []).reduce((sum, f) => sum + (f.bytes ?? 0), 0);
  const data = el('td', { text: dataset.name ?? run.source ?? 'unknown' });
  if (synthetic) data.append(el('span', { class: 'tag', text: 'synthetic' }));
  if (run.untrained) data.append(el('span', { class: 'tag', text: 'untrained' }));
  return el('tr', { dataset: { testid: 'model-row', model: name, synthetic: String(synthetic) } },
    el('th', { scope: 'row', text: name }),
    el('td', { text: entry.backbone ?? (name.startsWith('mtcnn') ? 'MTCNN' : '–') }),
    el('td', { text: describePrecision(entry) }),
    el('td', { text: entry.input_size ? `${entry.input_size} px` : 'any' }),
    el('td', { text: formatBytes(bytes) }),
    data,
    el('td', { dataset: { testid: 'model-metrics' }, text: describeRunMetrics(name, run, manifest) }),
    el('td', { text: describeParity(entry.parity) }));
}

/** Terms of every dataset and licence of every weight source in the bundle: {name: terms}. */
function bundleTerms(manifest) {
  const terms = new Map();
  for (const entry of Object.values(manifest.models)) {
    const run = entry.run ?? {};
    if (run.dataset?.name) terms.set(run.dataset.name, run.dataset.terms ?? 'not recorded');
    else if (run.source) terms.set(run.source, run.license ? `licence: ${run.license}` : 'not recorded');
  }
  return terms;
}

/** What is loaded: one row per model, the synthetic-data notice and the dataset terms. */
export function renderModels(manifest) {
  const entries = Object.entries(manifest.models);
  $('models-table').tBodies[0].replaceChildren(...entries.map(([name, entry]) => modelRow(name, entry, manifest)));
  const synthetic = entries.filter(([, e]) => Boolean(e.run?.synthetic ?? manifest.synthetic)).map(([n]) => n);
  const notice = $('synthetic-notice');
  notice.hidden = synthetic.length === 0;
  notice.textContent = synthetic.length
    ? `Trained on synthetic data: ${synthetic.join(', ')}. These models only show that the pipeline works; `
      + 'their scores and keypoints say nothing about real faces.'
    : '';
  const beauty = Object.values(manifest.models).find((e) => String(e.role ?? '').startsWith('beauty'));
  $('beauty-dataset').textContent = beauty?.run?.dataset?.name ?? 'no beauty model loaded';
  const terms = bundleTerms(manifest);
  $('terms').replaceChildren(...[...terms].map(([n, t]) => el('li', {}, el('strong', { text: `${n}: ` }), t)));
}
