/**
 * Graph-model ops that the TF.js 4.22 converter runtime lacks or gets wrong, registered with
 * tf.registerOp (a registered op takes precedence over the converter's own mapping:
 * tfjs-converter operation_mapper.js mapNode, `getRegisteredOp(node.op) || this.opMappers[node.op]`):
 *
 *   Erfc             complementary error function (Keras 3's exact GELU exports as 0.5 x erfc(-x / sqrt 2)).
 *   Cumsum, Cumprod  the axis made non-negative first. TF (and keras.ops.cumsum(x, axis=-1)) allow
 *                    a negative axis; TF.js 4.22 passes it to the kernels unchanged (tfjs-core
 *                    ops/cumsum.js), whose backend_util.getAxesPermutation([-1], rank) is not
 *                    "inner-most" and returns the rank+1 permutation [0, .., rank-1, -1]: the cpu
 *                    kernel then returns a tensor of shape [undefined, ...] (a later MatMul fails
 *                    on it), the wasm kernel reads out of bounds ("memory access out of bounds").
 */
import * as tf from '@tensorflow/tfjs';

// Chebyshev fit of erfc from Numerical Recipes in C, 2nd ed. (Press et al. 1992), section 6.2,
// function erfcc: fractional error below 1.2e-7 everywhere.
const ERFCC = [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
  1.48851587, -0.82215223, 0.17087277];

/** erfc(x) elementwise, float32 (any backend: only elementwise ops). */
export function erfc(x) {
  return tf.tidy(() => {
    const z = tf.abs(x);
    const t = tf.div(1, tf.add(1, tf.mul(0.5, z)));
    let poly = tf.scalar(ERFCC[ERFCC.length - 1]);
    for (let i = ERFCC.length - 2; i >= 0; i -= 1) poly = tf.add(ERFCC[i], tf.mul(t, poly));
    const ans = tf.mul(t, tf.exp(tf.add(tf.neg(tf.square(z)), poly)));
    return tf.where(tf.greaterEqual(x, 0), ans, tf.sub(2, ans));
  });
}

/**
 * A cumulative op's axis as TF.js' kernels need it: in [0, rank). Throws naming the op when the
 * axis is out of range (as TF does).
 */
export function cumulativeAxis(op, axis, rank) {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} is out of range for a rank-${rank} tensor`);
  return a;
}

// mirrors the converter's reduction_executor.js 'Cumsum'/'Cumprod' cases, with the axis normalised
function cumulative(op, fn) {
  return (node) => {
    const [x, axisTensor] = node.inputs;
    const axis = cumulativeAxis(op, axisTensor.dataSync()[0], x.rank);
    return fn(x, axis, Boolean(node.attrs.exclusive), Boolean(node.attrs.reverse));
  };
}

/** Op names this module registers for graph models (tfjs_io.save_graph_model may skip the converter's op check for them). */
export const REGISTERED_OPS = ['Erfc', 'Cumsum', 'Cumprod'];

tf.registerOp('Erfc', (node) => erfc(node.inputs[0]));
tf.registerOp('Cumsum', cumulative('Cumsum', tf.cumsum));
tf.registerOp('Cumprod', cumulative('Cumprod', tf.cumprod));
