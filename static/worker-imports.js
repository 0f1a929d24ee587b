/**
 * Import an ES module graph inside a Web Worker with the page's import map.
 *
 * Browsers apply <script type="importmap"> to the document only: a module worker cannot resolve
 * the bare specifiers ('@tensorflow/tfjs') that the facepack library and the vendored TF.js
 * bundles use. createImporter(imports, baseUrl)(url) fetches the graph of static imports itself, rewrites
 * every specifier (bare ones through the map, relative ones to the module that was loaded for
 * it) and imports each rewritten module from a blob: URL (the page's CSP allows blob: scripts).
 * A module that needs no rewrite is imported from its own URL (so the 4 MB tf.fesm.js stays an
 * ordinary, cached HTTP module). One URL is one module instance, as with native imports.
 *
 * Only static `import ... from '...'`, `import '...'` and `export ... from '...'` statements at
 * the start of a line are rewritten; dynamic import() is left alone (the library uses it only on
 * Node paths). Import cycles are refused with an error naming the modules.
 */

// A static import/export-from statement starting a line: [1] lead-in, [3] the specifier.
const STATIC_IMPORT = /^([ \t]*(?:import|export)\b(?:[^'";]*?\bfrom)?[ \t]*)(['"])([^'"\n]+)\2/gm;

/**
 * @param {string} specifier as written in the module
 * @param {string} parentUrl absolute URL of the importing module
 * @param {Object<string, string>} imports the import map's "imports"
 * @param {string} baseUrl URL the import map's addresses are relative to (the page)
 * @returns {string} absolute URL
 */
export function resolveSpecifier(specifier, parentUrl, imports, baseUrl) {
  if (Object.prototype.hasOwnProperty.call(imports, specifier)) return new URL(imports[specifier], baseUrl).href;
  if (/^(\.{0,2}\/)/.test(specifier)) return new URL(specifier, parentUrl).href;
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier)) return specifier;
  throw new Error(`${parentUrl}: cannot resolve the bare specifier "${specifier}" (it is not in the page's import map)`);
}

/**
 * An importer that applies `imports` to the whole static graph of what it imports. One importer
 * shares one module instance per URL across calls (import the library and TF.js through the same
 * importer, or TF.js would be loaded twice, as two separate engines).
 * @param {Object<string, string>} imports the page's import map ({specifier: address})
 * @param {string} baseUrl the page's URL (import map addresses are relative to it)
 * @returns {(url: string) => Promise<object>} import(url or mapped specifier) -> module namespace
 */
export function createImporter(imports, baseUrl) {
  const loaded = new Map(); // absolute URL -> Promise<URL to import it from>
  const sources = new Map(); // absolute URL -> Promise<source text>

  const source = (url) => {
    if (!sources.has(url)) {
      sources.set(url, fetch(url).then((response) => {
        if (!response.ok) throw new Error(`${url}: HTTP ${response.status} (a module of the analysis worker)`);
        return response.text();
      }));
    }
    return sources.get(url);
  };

  const load = (url, chain) => {
    if (chain.includes(url)) throw new Error(`import cycle: ${[...chain, url].join(' -> ')} (the worker loader needs an acyclic graph)`);
    if (!loaded.has(url)) {
      loaded.set(url, (async () => {
        const text = await source(url);
        const found = [...text.matchAll(STATIC_IMPORT)];
        if (!found.length) return url;
        const targets = await Promise.all(found.map((m) => load(resolveSpecifier(m[3], url, imports, baseUrl), [...chain, url])));
        let i = 0;
        const rewritten = text.replace(STATIC_IMPORT, (all, lead, quote) => `${lead}${quote}${targets[i++]}${quote}`);
        return URL.createObjectURL(new Blob([`${rewritten}\n//# sourceURL=${url}\n`], { type: 'text/javascript' }));
      })());
    }
    return loaded.get(url);
  };

  return async (specifier) => import(await load(resolveSpecifier(specifier, baseUrl, imports, baseUrl), []));
}
