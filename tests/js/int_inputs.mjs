/**
 * Node runner for tests/test_js_int_inputs_bitcast.py: generic.js' int32 check of integer inputs and
 * the graph ops Bitcast / BitwiseAnd of static/facepack/layers/ops.js (Keras 3's argmax), per backend.
 *
 *   node tests/js/int_inputs.mjs JOB.json  ->  {<backend>: {predict, errors, bitcast, intData}}
 *
 * JOB: {bundle, name, backends, x: rows (may hold -0.0), ids: rows, bitcast: {floats, ints}}.
 */
import { readFileSync } from 'node:fs';

import * as tf from '@tensorflow/tfjs';

import { useBackend } from '../../static/facepack/backend.js';
import { int32Data, load } from '../../static/facepack/generic.js';
import { bitcast, bitwiseAnd } from '../../static/facepack/layers/ops.js';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const attempt = (fn) => { try { fn(); return 'no error'; } catch (err) { return err.message; } };
const flat = (t) => Array.from(t.dataSync());
const results = {};
for (const backend of job.backends) {
  await useBackend(backend);
  if (tf.getBackend() !== backend) throw new Error(`backend ${backend} did not start (got ${tf.getBackend()})`);
  const net = await load(job.bundle, job.name);
  const rows = job.x.length;
  const x = { data: job.x.flat(), shape: [rows, job.x[0].length] };
  const ids = { data: job.ids.flat(), shape: [rows, job.ids[0].length] };
  const outs = net.predict({ x, ids });
  const predict = outs.map((t) => ({ dtype: t.dtype, shape: t.shape, data: flat(t) }));
  tf.dispose(outs);
  // the same ids as a BigInt64Array and as an Int32Array: same results
  const asBig = net.predict({ x, ids: { data: BigInt64Array.from(job.ids.flat().map(BigInt)), shape: ids.shape } });
  const asI32 = net.predict([x, { data: Int32Array.from(job.ids.flat()), shape: ids.shape }]);
  const sameBig = flat(asBig[3]).join() === predict[3].data.join() && flat(asI32[3]).join() === predict[3].data.join();
  tf.dispose([asBig, asI32]);
  const bad = (data, shape = [1, 4]) => attempt(() => tf.dispose(net.predict({ x: { data: job.x[0].concat(job.x[0]).slice(0, 5 * shape[0]), shape: [shape[0], 5] }, ids: { data, shape: [shape[0], 3] } })));
  const errors = {
    big: bad([5, 2 ** 40, 2 ** 31, 2, -(2 ** 35), 5], [2]),
    bigint: bad(BigInt64Array.from([1n, 2n, 3n, 4n, 2n ** 40n, 6n]), [2]),
    negative: bad([0, 1, -(2 ** 31) - 1], [1]),
    fraction: bad([[1, 2, 1.5]], [1]),
    nan: bad([1, NaN, 2], [1]),
    uint32: bad(Uint32Array.from([1, 2, 2 ** 32 - 1]), [1]),
    array_input: attempt(() => tf.dispose(net.predict([x, { data: [7, 8, 2 ** 33].concat(job.ids.flat().slice(3)), shape: ids.shape }]))),
    // limits pass; a float input is not checked (1.5 stays 1.5)
    limits: bad([-(2 ** 31), 2 ** 31 - 1, 0], [1]),
  };
  const floatX = net.predict({ x: { data: [1.5, 2.5, -0.5, 0.25, 3.75], shape: [1, 5] }, ids: { data: [1, 2, 3], shape: [1, 3] } });
  errors.float_kept = flat(floatX[0]).join();
  tf.dispose(floatX);
  net.dispose();
  // the ops directly
  const f = tf.tensor(job.bitcast.floats, [job.bitcast.floats.length], 'float32');
  const i = tf.tensor(job.bitcast.ints, [job.bitcast.ints.length], 'int32');
  const bc = {
    f2i: flat(bitcast(f, 'int32')),
    i2f_bits: flat(bitcast(bitcast(i, 'float32'), 'int32')),
    i2f: flat(bitcast(i, 'float32')).map((v) => (Number.isNaN(v) ? 'nan' : Object.is(v, -0) ? '-0' : v)),
    same: flat(bitcast(f, 'float32')).length,
    refuse64: attempt(() => bitcast(f, 'DT_INT64', 'DT_FLOAT', 'DT_INT64')),
    refuse8: attempt(() => bitcast(f, 'DT_UINT8', 'DT_FLOAT', 'DT_UINT8')),
    refuseU32: attempt(() => bitcast(f, 'DT_UINT32', 'DT_FLOAT', 'DT_UINT32')),
    refuseBool: attempt(() => bitcast(tf.tensor([true], [1], 'bool'), 'int32')),
    and: flat(bitwiseAnd(i, tf.scalar(-2147483648, 'int32'))),
  };
  tf.dispose([f, i]);
  results[backend] = { predict, sameBig, errors, bitcast: bc };
}
results.intData = {
  nested: Array.from(int32Data([[1, 2], [3, -4]], '"n"')),
  passthrough: int32Data(Int32Array.from([1, 2]), '"p"') instanceof Int32Array,
  scalar: Array.from(int32Data(7, '"s"')),
  string: attempt(() => int32Data(['1', 2], '"s"')),
};
process.stdout.write(JSON.stringify(results));
