/**
 * GRU with Keras 3's default reset_after=True (TF.js 4.22's GRUCell throws on it).
 *
 * Re-registers the class name 'GRU' (so Bidirectional(GRU) finds it too): reset_after=False
 * runs TF.js' own GRUCell unchanged; reset_after=True uses GRUCellResetAfter below. Weights as
 * tf_keras writes them: <layer>/gru_cell/kernel (D, 3u), recurrent_kernel (u, 3u), and a bias of
 * shape (2, 3u) (input bias, recurrent bias). Inference only: dropout is not applied.
 */
import * as tf from '@tensorflow/tfjs';

const BuiltinGRUCell = tf.layers.gruCell({ units: 1 }).constructor;

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

/** 'GRU' as tf_keras writes it, either reset_after value. */
export class GRU extends tf.RNN {
  static className = 'GRU';

  constructor(args) {
    const { cell, ...rest } = args;
    super({ ...rest, cell: args.resetAfter ? new GRUCellResetAfter(rest) : new BuiltinGRUCell(rest) });
  }

  // mirrors tfjs-layers recurrent.ts GRU.call: per-call masks and state only
  call(inputs, kwargs) {
    return tf.tidy(() => {
      const mask = kwargs == null ? null : kwargs.mask;
      const training = kwargs == null ? null : kwargs.training;
      const initialState = kwargs == null ? null : kwargs.initialState;
      return super.call(inputs, { mask, training, initialState });
    });
  }

  static fromConfig(cls, config) {
    return new cls(config);
  }
}
tf.serialization.registerClass(GRU);
