// example.mjs - run: node example.mjs photo.jpg   (Node >= 20.16; WASM backend, no native dependencies)
import { createFaceAnalyzer } from '{{NAME}}';

const photo = process.argv[2] ?? 'photo.jpg'; // a JPEG or PNG file
const analyzer = await createFaceAnalyzer(); // models from this package; backend 'auto' (WASM in Node)
const { faces, backend, timings } = await analyzer.analyzeFile(photo);
for (const face of faces) {
  const { x, y, width, height } = face.box;
  console.log(`face at (${x.toFixed(0)}, ${y.toFixed(0)}) ${width.toFixed(0)}x${height.toFixed(0)} px, `
    + `beauty ${face.beauty?.score.toFixed(1)}/100 (${face.beauty?.score_1to5.toFixed(2)} on 1..5), `
    + `${face.keypoints?.length} keypoints`);
}
console.log(JSON.stringify({ photo, backend, reason: analyzer.backendReason, ms: timings.total, faces }));
analyzer.dispose();
