/**
 * The page's drawing worker: owns the view canvas (transferControlToOffscreen, app.js) and draws
 * the photo or camera frame with its result (overlay.js). Drawing here, not on the page's thread:
 * a canvas draw can wait for the GPU process, which the WebGL analysis keeps busy for seconds
 * (measured 11-26 s of blocked main thread on SwiftShader when app.js drew itself).
 *
 * Messages (page -> worker):
 *   {type: 'init', canvas}                              the OffscreenCanvas of #view
 *   {type: 'spec', spec}                                the manifest's spec (where accessories.js finds the eye and brow points)
 *   {type: 'photo', slot, id, pixels | bitmap}           slot 'photo' or 'camera': RGBA {width, height, data} or an ImageBitmap
 *   {type: 'result', slot, id, faces, overlays}          the result for the slot's image `id` (overlays: RGBA per face or null)
 *   {type: 'guided', slot, id, overlays}                 guided Grad-CAM RGBA per face for the slot's result `id`
 *   {type: 'draw', slot, seq, width, height, view, photoWidth, photoHeight, heatmaps, guided, accessories, unit, zoomedIn}
 *                                                        draw that slot at this canvas size and photo->canvas view
 *                                                        (guided: the guided Grad-CAM instead of Grad-CAM, once given;
 *                                                        accessories: ACCESSORIES names drawn from each face's keypoints)
 * Replies: {type: 'drawn', seq, labels, drewResult} (labels as overlay.js:drawFaces places them).
 */
import { drawAccessories } from './facepack/accessories.js'; // import-free module: a plain import works here
import { drawFaces } from './overlay.js';

const state = { canvas: null, ctx: null, spec: null, slots: { photo: {}, camera: {} } }; // slot: {image, id, result}

/** RGBA bytes -> an OffscreenCanvas holding them (CPU canvas). */
function fromPixels(px) {
  const canvas = new OffscreenCanvas(px.width, px.height);
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(px.data), px.width, px.height), 0, 0);
  return canvas;
}

function draw(msg) {
  const { canvas } = state;
  if (canvas.width !== msg.width || canvas.height !== msg.height) {
    canvas.width = msg.width;
    canvas.height = msg.height;
    state.ctx = canvas.getContext('2d');
  }
  const ctx = state.ctx ?? (state.ctx = canvas.getContext('2d'));
  const { view } = msg;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  let labels = [];
  let drewResult = false;
  const slot = state.slots[msg.slot];
  if (slot.image) {
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = msg.zoomedIn ? 'low' : 'high';
    ctx.drawImage(slot.image, view.dx, view.dy, msg.photoWidth * view.scale, msg.photoHeight * view.scale);
    if (slot.result && slot.result.id === slot.id) { // only ever the image's own result
      if (msg.accessories?.length && state.spec) { // under the marks: the faces' boxes and points stay visible
        ctx.save();
        ctx.setTransform(view.scale, 0, 0, view.scale, view.dx, view.dy); // photo pixels -> canvas
        drawAccessories(ctx, slot.result.faces.filter((f) => f.keypoints?.length), msg.accessories, state.spec);
        ctx.restore();
      }
      const overlays = msg.guided && slot.result.guided ? slot.result.guided : slot.result.overlays;
      labels = drawFaces(ctx, slot.result.faces, view, { overlays, heatmaps: msg.heatmaps, unit: msg.unit });
      drewResult = true;
    }
  }
  self.postMessage({ type: 'drawn', seq: msg.seq, labels, drewResult });
}

self.addEventListener('message', (event) => {
  const msg = event.data;
  switch (msg.type) {
    case 'init':
      state.canvas = msg.canvas;
      break;
    case 'spec':
      state.spec = msg.spec;
      break;
    case 'photo': {
      const slot = state.slots[msg.slot];
      slot.image?.close?.();
      slot.image = msg.bitmap ?? fromPixels(msg.pixels);
      if (slot.id !== msg.id) slot.result = null;
      slot.id = msg.id;
      break;
    }
    case 'result':
      state.slots[msg.slot].result = msg.faces
        ? { id: msg.id, faces: msg.faces, overlays: msg.overlays.map((o) => o && (o instanceof ImageBitmap ? o : fromPixels(o))) }
        : null;
      break;
    case 'guided': {
      const { result } = state.slots[msg.slot];
      if (result && result.id === msg.id) result.guided = msg.overlays.map((o) => o && fromPixels(o));
      break;
    }
    case 'draw':
      draw(msg);
      break;
    default:
      throw new Error(`view worker: unknown message type ${JSON.stringify(msg.type)}`);
  }
});
