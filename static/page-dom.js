/**
 * Small DOM helpers of the page (app.js, models-panel.js): elements, body[data-state], #message,
 * notices, number formats. No state of their own.
 */

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** "a command" rendered as <code>. */
export const code = (text) => el('code', { text });

export function setState(state) {
  document.body.dataset.state = state;
  // Switching backends disposes the models: not while they load or run.
  $('backend-select').disabled = state === 'loading' || state === 'busy';
}

/**
 * Show the outcome of the last action.
 * @param {'info'|'ok'|'warning'|'error'} kind
 * @param {string} messageCode stable identifier (data-code)
 * @param {...(string|Node)} parts text and nodes
 */
export function showMessage(kind, messageCode, ...parts) {
  const box = $('message');
  box.dataset.kind = kind;
  box.dataset.code = messageCode;
  box.dataset.seq = String(Number(box.dataset.seq ?? 0) + 1); // lets tests see a repeated message
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.replaceChildren(...parts);
}

/** A persistent notice (set-up problems, fallbacks); `id` replaces an earlier one with the same id. */
export function addNotice(id, kind, ...parts) {
  const existing = document.querySelector(`#notices [data-notice="${id}"]`);
  const item = el('li', { class: `notice notice-${kind}`, dataset: { notice: id, testid: `notice-${id}` } }, ...parts);
  if (existing) existing.replaceWith(item);
  else $('notices').append(item);
}

export function removeNotice(id) {
  document.querySelector(`#notices [data-notice="${id}"]`)?.remove();
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '?';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export const formatMs = (ms) => (Number.isFinite(ms) ? ms.toFixed(1) : '–');
export const formatScore = (score) => score.toFixed(1); // 0..100
export const formatScore1to5 = (score) => score.toFixed(2); // 1..5
