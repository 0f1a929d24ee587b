/**
 * Recurrent layers with the Keras semantics TF.js 4.22 lacks:
 *
 * - GRU with Keras 3's default reset_after=True (TF.js' GRUCell throws on it): reset_after=False
 *   runs TF.js' own GRUCell unchanged; reset_after=True uses GRUCellResetAfter below. Weights as
 *   tf_keras writes them: <layer>/gru_cell/kernel (D, 3u), recurrent_kernel (u, 3u), and a bias
 *   of shape (2, 3u) (input bias, recurrent bias). Inference only: dropout is not applied.
 * - zero_output_for_mask: masked steps of a returned sequence are zeros (Keras; TF.js repeats the
 *   previous output). LSTM, GRU and SimpleRNN read it from their config, and Bidirectional sets
 *   it to return_sequences on both directions, as Keras' Bidirectional does.
 *
 * Re-registered class names: GRU, LSTM, SimpleRNN, Bidirectional.
 */
import * as tf from '@tensorflow/tfjs';

const BuiltinGRUCell = tf.layers.gruCell({ units: 1 }).constructor;
const BuiltinLSTM = tf.layers.lstm({ units: 1 }).constructor;
const BuiltinSimpleRNN = tf.layers.simpleRNN({ units: 1 }).constructor;
const BuiltinBidirectional = tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 1 }) }).constructor;

/**
 * The RNN output with masked steps zeroed (keras/src/backend/tensorflow/rnn.py, zero_output_for_mask):
 * `out` is the sequence (B, T, U), or [sequence, ...states]; `mask` (B, T) in input order (the
 * sequence of a go_backwards layer is in reversed order, and so is the mask applied to it).
 */
function zeroMaskedSteps(layer, out, mask) {
  if (!layer.zeroOutputForMask || !layer.returnSequences || mask == null) return out;
  const seq = Array.isArray(out) ? out[0] : out;
  let m = mask.cast(seq.dtype);
  if (layer.goBackwards) m = tf.reverse(m, 1);
  const zeroed = seq.mul(m.expandDims(-1));
  return Array.isArray(out) ? [zeroed, ...out.slice(1)] : zeroed;
}

function rnnCall(layer, call, inputs, kwargs) {
  return tf.tidy(() => {
    const mask = kwargs == null ? null : kwargs.mask;
    const training = kwargs == null ? null : kwargs.training;
    const initialState = kwargs == null ? null : kwargs.initialState;
    return zeroMaskedSteps(layer, call({ mask, training, initialState }), mask);
  });
}

/** mirrors keras/src/layers/rnn/gru.py:GRUCell.call with reset_after=True. */
export class GRUCellResetAfter extends BuiltinGRUCell {
  static className = 'GRUCellResetAfter';

  constructor(args) {
    super({ ...args, resetAfter: false });
    this.resetAfter = true;
  }

  build(inputShape) {
    const shape = Array.isArray(inputShape[0]) ? inputShape[0] : inputShape;
    const inputDim = shape[shape.length - 1];
    const u = this.units;
    this.kernel = this.addWeight('kernel', [inputDim, 3 * u], null, this.kernelInitializer, this.kernelRegularizer,
      true, this.kernelConstraint);
    this.recurrentKernel = this.addWeight('recurrent_kernel', [u, 3 * u], null, this.recurrentInitializer,
      this.recurrentRegularizer, true, this.recurrentConstraint);
    this.bias = this.useBias ? this.addWeight('bias', [2, 3 * u], null, this.biasInitializer, this.biasRegularizer,
      true, this.biasConstraint) : null;
    this.built = true;
  }

  call(inputs) {
    return tf.tidy(() => {
      const [x, hPrev] = inputs;
      let matrixX = tf.matMul(x, this.kernel.read());
      let matrixInner = tf.matMul(hPrev, this.recurrentKernel.read());
      if (this.bias) {
        const [inputBias, recurrentBias] = tf.unstack(this.bias.read());
        matrixX = matrixX.add(inputBias);
        matrixInner = matrixInner.add(recurrentBias);
      }
      const [xZ, xR, xH] = tf.split(matrixX, 3, -1);
      const [recZ, recR, recH] = tf.split(matrixInner, 3, -1);
      const z = this.recurrentActivation.apply(xZ.add(recZ));
      const r = this.recurrentActivation.apply(xR.add(recR));
      const hh = this.activation.apply(xH.add(r.mul(recH)));
      const h = z.mul(hPrev).add(tf.scalar(1).sub(z).mul(hh));
      return [h, h];
    });
  }

  getConfig() {
    return { ...super.getConfig(), resetAfter: true };
  }
}
tf.serialization.registerClass(GRUCellResetAfter);

/**
 * `Base` (an RNN layer class) with Keras' zero_output_for_mask read from and written to its config,
 * and each call run by rnnCall (per-call mask, training and initial state; masked steps zeroed).
 */
function withZeroOutputForMask(Base) {
  return class extends Base {
    constructor(args) {
      super(args);
      this.zeroOutputForMask = args.zeroOutputForMask ?? false;
    }

    // mirrors tfjs-layers recurrent.ts RNN.call: per-call masks and state only
    call(inputs, kwargs) {
      return rnnCall(this, (kw) => super.call(inputs, kw), inputs, kwargs);
    }

    getConfig() {
      return { ...super.getConfig(), zeroOutputForMask: this.zeroOutputForMask };
    }
  };
}

/** 'GRU' as tf_keras writes it, either reset_after value. */
export class GRU extends withZeroOutputForMask(tf.RNN) {
  static className = 'GRU';

  constructor(args) {
    const { cell, ...rest } = args;
    super({ ...rest, cell: args.resetAfter ? new GRUCellResetAfter(rest) : new BuiltinGRUCell(rest) });
  }

  static fromConfig(cls, config) {
    return new cls(config);
  }
}
tf.serialization.registerClass(GRU);

export class LSTM extends withZeroOutputForMask(BuiltinLSTM) {
  static className = 'LSTM';
}
tf.serialization.registerClass(LSTM);

export class SimpleRNN extends withZeroOutputForMask(BuiltinSimpleRNN) {
  static className = 'SimpleRNN';
}
tf.serialization.registerClass(SimpleRNN);

/** mirrors keras/src/layers/rnn/bidirectional.py: both directions get zero_output_for_mask = return_sequences. */
export class Bidirectional extends BuiltinBidirectional {
  static className = 'Bidirectional';

  constructor(args) {
    super(args);
    for (const layer of [this.forwardLayer, this.backwardLayer]) {
      if ('zeroOutputForMask' in layer) layer.zeroOutputForMask = this.returnSequences;
    }
  }
}
tf.serialization.registerClass(Bidirectional);
