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
 *   Bitcast          tf.bitcast: the same bits read as another dtype (TF.js 4.22 has no kernel). Keras 3's
 *                    TensorFlow argmax/argmin use it (signbit, for their -0.0 fix). Only the pairs
 *                    TF.js can hold with the same element size: float32 <-> int32, and a dtype to
 *                    itself; others (uint32 included: TF.js has no unsigned type) throw naming both.
 *   BitwiseAnd       the converter's own mapping reads its inputs under the wrong names (op_list
 *                    logical.js names them x, y; logical_executor.js reads a, b: "Argument 'x' passed
 *                    to 'bitwiseAnd' must be a Tensor ... but got 'null'"), and tf.bitwiseAnd does not
 *                    broadcast, as TF does (Keras' signbit ANDs with a scalar): broadcast, then AND.
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

// element size in bytes of the TensorFlow dtypes a Bitcast node may name (raw attr values, "DT_...")
const TF_DTYPE_BYTES = {
  DT_FLOAT: 4, DT_INT32: 4, DT_UINT32: 4, DT_HALF: 2, DT_BFLOAT16: 2, DT_INT16: 2, DT_UINT16: 2,
  DT_INT8: 1, DT_UINT8: 1, DT_BOOL: 1, DT_DOUBLE: 8, DT_INT64: 8, DT_UINT64: 8, DT_COMPLEX64: 8,
};
// the TF dtype -> the TF.js dtype holding the same 4-byte bits
const TF_DTYPE_JS = { DT_FLOAT: 'float32', DT_INT32: 'int32' };
const TYPED = { float32: Float32Array, int32: Int32Array };

/**
 * tf.bitcast of `x` (float32 or int32) to `to` ('float32' | 'int32'): the same 4-byte words read as
 * the other type, on any backend (reads the data, makes a new tensor). `from`/`to` name the TF
 * dtypes for the error when a pair has different element sizes or a type TF.js cannot hold.
 */
export function bitcast(x, to, from = x.dtype, toName = to) {
  const src = TF_DTYPE_JS[from] || (TYPED[from] ? from : null);
  const dst = TF_DTYPE_JS[to] || (TYPED[to] ? to : null);
  const bytes = (t) => TF_DTYPE_BYTES[t] || (TYPED[t] ? 4 : null);
  if (!src || !dst || src !== x.dtype) {
    const sizes = bytes(from) && bytes(toName) && bytes(from) !== bytes(toName)
      ? ` (element sizes ${bytes(from)} and ${bytes(toName)} bytes differ: TF would change the shape)` : '';
    throw new Error(`Bitcast from ${from} to ${toName} is not supported in TF.js${sizes}; `
      + 'only float32 <-> int32 reinterpret the same 4-byte words here');
  }
  if (src === dst) return tf.clone(x);
  const data = x.dataSync();
  const view = new TYPED[dst](data.buffer, data.byteOffset, data.length);
  return tf.tensor(TYPED[dst].from(view), x.shape, dst);
}

/** TF's BitwiseAnd on int32 tensors, with broadcasting (tf.bitwiseAnd needs equal shapes). */
export function bitwiseAnd(a, b) {
  return tf.tidy(() => {
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const wide = (t) => (tf.util.arraysEqual(t.shape, shape) ? t : tf.broadcastTo(t, shape));
    return tf.bitwiseAnd(wide(a), wide(b));
  });
}

/** Op names this module registers for graph models (tfjs_io.save_graph_model may skip the converter's op check for them). */
export const REGISTERED_OPS = ['Erfc', 'Cumsum', 'Cumprod', 'Bitcast', 'BitwiseAnd'];

tf.registerOp('Erfc', (node) => erfc(node.inputs[0]));
tf.registerOp('Cumsum', cumulative('Cumsum', tf.cumsum));
tf.registerOp('Cumprod', cumulative('Cumprod', tf.cumprod));
// attrs T (input) and type (output); the raw "DT_..." names (node.node.rawAttrs) keep the element
// size that the converter's parsed dtypes lose (it maps DT_INT64, DT_UINT8 ... all to 'int32')
tf.registerOp('Bitcast', (node) => {
  const raw = (node.node && node.node.rawAttrs) || {};
  const from = (raw.T && raw.T.type) || node.attrs.T || node.inputs[0].dtype;
  const to = (raw.type && raw.type.type) || node.attrs.type;
  return bitcast(node.inputs[0], TF_DTYPE_JS[to] || to, from, to);
});
tf.registerOp('BitwiseAnd', (node) => bitwiseAnd(node.inputs[0], node.inputs[1]));
