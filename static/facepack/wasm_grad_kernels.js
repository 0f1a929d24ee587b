/**
 * Gradient kernels the TF.js WASM backend lacks, registered for it when missing (guided.js needs
 * them to differentiate a beauty backbone with respect to its input crop):
 *
 * - DepthwiseConv2dNativeBackpropInput: the input gradient of tf.depthwiseConv2d (the layers
 *   DepthwiseConv2D layer). Plain JavaScript on the values read from the WASM heap; the same sums
 *   as the CPU backend's kernel (tfjs-backend-cpu DepthwiseConv2dNativeBackpropInput).
 */
import * as tf from '@tensorflow/tfjs';

const WASM = 'wasm';
const KERNEL = 'DepthwiseConv2dNativeBackpropInput';

/** dx[b, r, c, d1] = sum over the taps and the channel multiplier of dy * the flipped filter. */
function depthwiseConv2dNativeBackpropInput({ inputs, backend, attrs }) {
  const { dy, filter } = inputs;
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs;
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, strides, dilations, pad, dimRoundingMode, true);
  const { batchSize, filterHeight, filterWidth, inChannels, inHeight, inWidth, outChannels, outHeight, outWidth,
    strideHeight, strideWidth } = info;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw new Error(`${KERNEL} (wasm, facepack/wasm_grad_kernels.js): dilations ${dilations} are not supported; use the cpu backend`);
  }
  const dyValues = backend.readSync(dy.dataId);
  const fltValues = backend.readSync(filter.dataId);
  const [dyS0, dyS1, dyS2] = tf.util.computeStrides(dy.shape);
  const [fltS0, fltS1, fltS2] = tf.util.computeStrides(filter.shape);
  const [dxS0, dxS1, dxS2] = tf.util.computeStrides(info.inShape);
  const dx = new Float32Array(tf.util.sizeFromShape(info.inShape));
  const topPad = filterHeight - 1 - info.padInfo.top;
  const leftPad = filterWidth - 1 - info.padInfo.left;
  const chMul = outChannels / inChannels;
  for (let b = 0; b < batchSize; ++b) {
    for (let xR = 0; xR < inHeight; ++xR) {
      const xRCorner = xR - topPad;
      const yRMin = Math.max(0, Math.ceil(xRCorner / strideHeight));
      const yRMax = Math.min(outHeight, (filterHeight + xRCorner) / strideHeight);
      for (let xC = 0; xC < inWidth; ++xC) {
        const xCCorner = xC - leftPad;
        const yCMin = Math.max(0, Math.ceil(xCCorner / strideWidth));
        const yCMax = Math.min(outWidth, (filterWidth + xCCorner) / strideWidth);
        const dxOffset = dxS0 * b + dxS1 * xR + dxS2 * xC;
        for (let yR = yRMin; yR < yRMax; ++yR) {
          const wR = yR * strideHeight - xRCorner;
          for (let yC = yCMin; yC < yCMax; ++yC) {
            const wC = yC * strideWidth - xCCorner;
            const dyOffset = dyS0 * b + dyS1 * yR + dyS2 * yC;
            const fltOffset = fltS0 * (filterHeight - 1 - wR) + fltS1 * (filterWidth - 1 - wC);
            for (let d1 = 0; d1 < inChannels; ++d1) {
              let sum = 0;
              for (let dm = 0; dm < chMul; ++dm) sum += dyValues[dyOffset + d1 * chMul + dm] * fltValues[fltOffset + fltS2 * d1 + dm];
              dx[dxOffset + d1] += sum;
            }
          }
        }
      }
    }
  }
  return backend.makeOutput(info.inShape, 'float32', undefined, dx);
}

/** Register the kernels above for the WASM backend where TF.js has none (idempotent). */
export function registerWasmGradKernels() {
  if (!tf.getKernel(KERNEL, WASM)) tf.registerKernel({ kernelName: KERNEL, backendName: WASM, kernelFunc: depthwiseConv2dNativeBackpropInput });
}
