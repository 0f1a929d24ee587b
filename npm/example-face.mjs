// node example.mjs   (Node >= 18: WASM backend, models from this package, no native deps)
import { createFaceAnalyzer, loadModel, useBackend } from '{{NAME}}';

await useBackend('wasm');
const pattern = (size) => Float32Array.from({ length: size * size * 3 }, (_, i) => (i * 7) % 256);

// 1. Any bundled model by name: raw RGB 0..255 in (NHWC float32), tensors out (you dispose).
const keypoints = await loadModel('keypoints');
const k = keypoints.entry.input_size;
const points = keypoints.predict({ data: pattern(k), shape: [1, k, k, 3] }); // x0, y0, x1, ... in crop units
console.log(JSON.stringify({ keypoints: Array.from(await points.data()) }));
points.dispose();
keypoints.dispose();

// The beauty model is split for Grad-CAM: image -> feature map -> 101 probabilities (scores 0..100).
const features = await loadModel('beauty_features');
const head = await loadModel('beauty_head');
const b = features.entry.input_size;
const fmap = features.predict({ data: pattern(b), shape: [1, b, b, 3] });
const probs = head.predict(fmap);
const score = (await probs.data()).reduce((sum, p, i) => sum + p * i, 0);
console.log(JSON.stringify({ beauty: score }));
[fmap, probs].forEach((t) => t.dispose());
[features, head].forEach((m) => m.dispose());

// 2. The whole pipeline on decoded pixels {data, width, height} (RGB or RGBA bytes, e.g. from
//    `await sharp(file).raw().toBuffer({ resolveWithObject: true })`): detect, crop, score.
const analyzer = await createFaceAnalyzer();
const width = 80;
const height = 60;
const image = { data: new Uint8Array(width * height * 3).fill(128), width, height };
const { faces, backend } = await analyzer.analyze(image);
console.log(JSON.stringify({ backend, faces })); // a grey picture: no faces
analyzer.dispose();
