/**
 * EinsumDense (TF.js 4.22's public API has none; its WASM backend has no Einsum kernel), as one
 * matMul: the input transposed to [free input axes, contracted axes], the kernel to [contracted,
 * free kernel axes], the product reshaped and transposed to the output's letters. Equations
 * without "..." whose every letter is a free input axis, a free kernel axis or contracted
 * (no letter shared by input, kernel AND output, none summed away) - the ones Dense-like layers use.
 */
import * as tf from '@tensorflow/tfjs';

/** Analysis of "in,kernel->out": letters of each part, and the three letter groups. */
export function parseEquation(equation) {
  const m = /^([a-z]+),([a-z]+)->([a-z]+)$/.exec(String(equation).replace(/\s+/g, ''));
  if (!m) throw new Error(`EinsumDense: equation ${JSON.stringify(equation)} is not supported (letters only, no "...")`);
  const [, inp, ker, out] = m;
  const contracted = [...inp].filter((c) => ker.includes(c) && !out.includes(c));
  const freeIn = [...inp].filter((c) => out.includes(c) && !ker.includes(c));
  const freeKer = [...ker].filter((c) => out.includes(c) && !inp.includes(c));
  const bad = [...inp, ...ker].filter((c) => !contracted.includes(c) && !freeIn.includes(c) && !freeKer.includes(c));
  if (bad.length || freeIn.length + freeKer.length !== out.length) {
    throw new Error(`EinsumDense: equation ${equation} needs letters (${[...new Set(bad)].join('')}) shared by input, kernel and output or summed away; not supported`);
  }
  return { inp, ker, out, contracted, freeIn, freeKer };
}

const prod = (xs) => xs.reduce((a, b) => a * b, 1);

/** mirrors keras/src/layers/core/einsum_dense.py (inference). */
export class EinsumDense extends tf.layers.Layer {
  static className = 'EinsumDense';

  constructor(config) {
    super(config);
    this.equation = config.equation;
    this.partialOutputShape = [].concat(config.outputShape);
    this.biasAxes = config.biasAxes ?? null;
    this.activation = tf.layers.activation({ activation: config.activation ?? 'linear' });
    this.activationName = config.activation ?? 'linear';
    this.eq = parseEquation(this.equation);
  }

  /** letter -> size, from the input shape and the output shape Keras was given (batch excluded). */
  sizes(inputShape) {
    const { inp, out } = this.eq;
    const size = {};
    [...inp].forEach((c, i) => { size[c] = inputShape[i]; });
    const full = [inputShape[0], ...this.partialOutputShape];
    if (full.length !== out.length) throw new Error(`${this.name}: output_shape ${JSON.stringify(this.partialOutputShape)} does not match ${this.equation}`);
    [...out].forEach((c, i) => { if (size[c] == null && full[i] != null) size[c] = full[i]; });
    return size;
  }

  build(inputShape) {
    const size = this.sizes(inputShape);
    const { ker, out } = this.eq;
    this.kernel = this.addWeight('kernel', [...ker].map((c) => size[c]), 'float32', tf.initializers.glorotUniform({}));
    if (this.biasAxes) {
      const first = Math.min(...[...this.biasAxes].map((c) => out.indexOf(c)));
      const shape = [...out.slice(first)].map((c) => (this.biasAxes.includes(c) ? size[c] : 1));
      this.bias = this.addWeight('bias', shape, 'float32', tf.initializers.zeros());
    }
    this.built = true;
  }

  computeOutputShape(inputShape) {
    const size = this.sizes(inputShape);
    return [...this.eq.out].map((c, i) => (i === 0 ? inputShape[0] : size[c]));
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const { inp, ker, out, contracted, freeIn, freeKer } = this.eq;
      const kernel = this.kernel.read();
      const dim = (letters, shape, c) => shape[letters.indexOf(c)];
      const xT = x.transpose([...freeIn, ...contracted].map((c) => inp.indexOf(c)));
      const kT = kernel.transpose([...contracted, ...freeKer].map((c) => ker.indexOf(c)));
      const inDims = freeIn.map((c) => dim(inp, x.shape, c));
      const kDims = freeKer.map((c) => dim(ker, kernel.shape, c));
      const cDim = prod(contracted.map((c) => dim(inp, x.shape, c)));
      const y2 = tf.matMul(xT.reshape([prod(inDims), cDim]), kT.reshape([cDim, prod(kDims)]));
      const order = [...freeIn, ...freeKer];
      let y = y2.reshape([...inDims, ...kDims]).transpose([...out].map((c) => order.indexOf(c)));
      if (this.bias) y = y.add(this.bias.read());
      return this.activation.apply(y);
    });
  }

  getConfig() {
    return { ...super.getConfig(), equation: this.equation, outputShape: this.partialOutputShape,
      biasAxes: this.biasAxes, activation: this.activationName };
  }
}
tf.serialization.registerClass(EinsumDense);
