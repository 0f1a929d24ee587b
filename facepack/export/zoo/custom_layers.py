"""A user's own Keras layer, registered for serialisation: the zoo's "custom registered layer" case.

The exporter gets this file as ``custom_objects`` (``--custom-objects custom_layers.py``), the way
a user hands over the module that defines their layers; loading the saved model without it fails.
"""

import keras


@keras.saving.register_keras_serializable(package="facepack_zoo")
class ScaledSoftsign(keras.layers.Layer):
    """y = scale * x / (1 + |x|) + shift, per channel (learned ``scale`` and ``shift`` of shape (C,))."""

    def build(self, input_shape):
        channels = input_shape[-1]
        self.scale = self.add_weight(name="scale", shape=(channels,), initializer="ones")
        self.shift = self.add_weight(name="shift", shape=(channels,), initializer="zeros")

    def call(self, x):
        return self.scale * x / (1.0 + keras.ops.abs(x)) + self.shift
