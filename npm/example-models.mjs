// models.mjs - any bundled model by name: raw RGB 0..255 in (NHWC float32), tensors out (you dispose)
import { loadModel } from '{{NAME}}';

/** @param {number} size */
const pattern = (size) => Float32Array.from({ length: size * size * 3 }, (_, i) => (i * 7) % 256);

const keypoints = await loadModel('keypoints');
const k = keypoints.entry.input_size ?? 96;
const points = keypoints.predict({ data: pattern(k), shape: [1, k, k, 3] }); // x0, y0, x1, ... in crop units
console.log(JSON.stringify({ keypoints: Array.from(await (Array.isArray(points) ? points[0] : points).data()) }));
keypoints.dispose();

// The beauty model is split for Grad-CAM: image -> feature map -> 101 probabilities (scores 0..100).
const features = await loadModel('beauty_features');
const head = await loadModel('beauty_head');
const b = features.entry.input_size ?? 224;
const fmap = features.predict({ data: pattern(b), shape: [1, b, b, 3] });
const probs = head.predict(fmap);
const p = Array.from(await (Array.isArray(probs) ? probs[0] : probs).data());
console.log(JSON.stringify({ beauty: p.reduce((sum, q, i) => sum + q * i, 0) }));
for (const t of [fmap, probs].flat()) t.dispose();
[features, head].forEach((m) => m.dispose());
