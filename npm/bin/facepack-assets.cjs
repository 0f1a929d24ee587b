#!/usr/bin/env node
'use strict';
/**
 * npx facepack-assets <folder>: copy what a browser app must serve next to its bundle -
 *   <folder>/models/  this package's models (manifest.json + one folder per model)  -> modelUrl
 *   <folder>/wasm/    the TF.js WASM backend's .wasm files                            -> wasmPaths
 * Run it before (Vite: into public/) or after (webpack, esbuild: into the output folder) the build.
 */
const fs = require('fs');
const path = require('path');

const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

function folderBytes(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).reduce((sum, e) => {
    const p = path.join(dir, e.name);
    return sum + (e.isDirectory() ? folderBytes(p) : fs.statSync(p).size);
  }, 0);
}

function main(argv) {
  if (argv.length !== 1 || argv[0].startsWith('-')) {
    process.stderr.write('usage: facepack-assets <folder>   (copies models/ and wasm/ into <folder>)\n');
    return 2;
  }
  const target = path.resolve(argv[0]);
  const models = path.join(__dirname, '..', 'models');
  fs.rmSync(path.join(target, 'models'), { recursive: true, force: true });
  fs.cpSync(models, path.join(target, 'models'), { recursive: true });
  const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  fs.mkdirSync(path.join(target, 'wasm'), { recursive: true });
  for (const name of WASM_FILES) fs.copyFileSync(path.join(wasmDir, name), path.join(target, 'wasm', name));
  const mb = (dir) => (folderBytes(dir) / 1e6).toFixed(1);
  process.stdout.write(`facepack-assets: ${target}/models (${mb(path.join(target, 'models'))} MB) -> modelUrl, `
    + `${target}/wasm (${mb(path.join(target, 'wasm'))} MB) -> wasmPaths\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
