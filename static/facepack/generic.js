/**
 * Any exported model of a bundle, by its manifest name, with nothing face-specific around it:
 *
 *   const net = await load('./models', 'keypoints');
 *   const out = net.predict(tf.zeros([1, 96, 96, 3]));   // tf.Tensor | tf.Tensor[] (caller disposes)
 *   net.dispose();
 *
 * The backend is whatever TF.js is using (see backend.js: useBackend).
 */
import * as tf from '@tensorflow/tfjs';

import { loadManifest, loadModel, manifestEntry, runModel } from './io.js';

/**
 * @param {string} dirOrUrl bundle root: a folder path (Node) or URL
 * @param {string} name a key of manifest.json "models"
 * @returns {Promise<{name: string, entry: object, manifest: object, model: object,
 *   predict: (input: tf.Tensor|{data: ArrayLike<number>, shape: number[]}) => tf.Tensor|tf.Tensor[],
 *   dispose: () => void}>}
 */
export async function load(dirOrUrl, name) {
  const manifest = await loadManifest(dirOrUrl);
  const entry = manifestEntry(manifest, name);
  const loaded = await loadModel(dirOrUrl, entry);
  let disposed = false;
  return {
    name,
    entry,
    manifest,
    model: loaded.model,
    /** Outputs for `input` (a tensor, or {data, shape} float32): one tensor, or an array for several outputs. */
    predict(input) {
      if (disposed) throw new Error(`model "${name}" was disposed`);
      return tf.tidy(() => {
        const x = input instanceof tf.Tensor ? input : tf.tensor(input.data, input.shape, 'float32');
        const outs = runModel(loaded, x);
        return outs.length === 1 ? outs[0] : outs;
      });
    },
    dispose() {
      if (!disposed) loaded.model.dispose();
      disposed = true;
    },
  };
}
