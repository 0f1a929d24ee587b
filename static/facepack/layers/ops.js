/**
 * Graph-model ops that the TF.js 4.22 converter runtime lacks, registered with tf.registerOp:
 *
 *   Erfc   complementary error function (Keras 3's exact GELU exports as 0.5 x erfc(-x / sqrt 2)).
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

/** Op names this module registers for graph models (tfjs_io.save_graph_model may skip the converter's op check for them). */
export const REGISTERED_OPS = ['Erfc'];

tf.registerOp('Erfc', (node) => erfc(node.inputs[0]));
