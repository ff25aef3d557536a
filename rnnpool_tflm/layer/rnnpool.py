"""The RNNPool Keras layer (tf-keras / Keras 2 API)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..core.config import RNNPoolConfig
from ..core.keras import keras
from ..core.weights import FastGRNNWeights, RNNPoolWeights
from .forward import FastGRNNParams, FloatCells
from .sweep import Cells

# Weight names per cell, in the order they are created (and saved).
CELL_WEIGHTS = ("w", "u", "bias_gate", "bias_update", "zeta", "nu")


@keras.utils.register_keras_serializable(package="rnnpool_tflm")
class RNNPool(keras.layers.Layer):
    """RNNPool (Saha et al., NeurIPS 2020): pools r x c patches with two FastGRNNs.

    RNN1 (hidden h1) sweeps every row of a patch left to right and every
    column top to bottom; RNN2 (hidden h2) sweeps the row summaries forward and
    backward and the column summaries likewise. Each output pixel holds
    ``[rows fwd, rows bwd, cols fwd, cols bwd]``, 4*h2 channels, exactly as
    EdgeML's PyTorch ``RNNPool``.

    Args:
      patch_size: int or (rows, cols).
      strides: int or (rows, cols); defaults to patch_size.
      hidden_dims: int or (h1, h2).
      padding: "valid" (patches inside the input) or "same" (TensorFlow SAME).
      gate_activation: "sigmoid" or "hard_sigmoid" (clip((x+1)/2, 0, 1)).
      update_activation: "tanh" or "hard_tanh" (clip(x, -1, 1)).
      zeta_init, nu_init: FastGRNN scalars, used as sigmoid(zeta)*(1-z)+sigmoid(nu);
        EdgeML's RNNPool starts them at 100 and -100.
      train_zeta_nu: False freezes zeta and nu (the paper fixes them).
      kernel_initializer, recurrent_initializer, bias_initializer: for W, U and
        both biases. Defaults glorot_uniform / orthogonal / zeros train much
        faster here than EdgeML's normal(0, 0.1) / ones; initialisation does not
        change the numerics.
    """

    def __init__(
        self,
        patch_size,
        strides=None,
        hidden_dims=16,
        padding="valid",
        gate_activation="sigmoid",
        update_activation="tanh",
        zeta_init=100.0,
        nu_init=-100.0,
        train_zeta_nu=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rnnpool_config = RNNPoolConfig.create(
            patch_size, strides, hidden_dims, padding, gate_activation, update_activation
        )
        for name, value in (("zeta_init", zeta_init), ("nu_init", nu_init)):
            if not np.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        self.zeta_init, self.nu_init = float(zeta_init), float(nu_init)
        self.train_zeta_nu = bool(train_zeta_nu)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=4)
        # What RNN1 and RNN2 compute with (layer.sweep.Cells): float cells over the weights,
        # made in build. Like a Dense layer's kernel, it may be swapped from outside
        # (quantization-aware training installs the int8 kernel's simulation).
        self.cells: Cells = None

    # -- construction -------------------------------------------------------
    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 4:
            raise ValueError(f"RNNPool expects NHWC input of rank 4, got input shape {input_shape}")
        rows, cols, channels = input_shape[1], input_shape[2], input_shape[3]
        if rows is None or cols is None or channels is None:
            raise ValueError(f"RNNPool needs static rows, cols and channels, got input shape {input_shape}")
        self.rnnpool_config.geometry(rows, cols)  # raises if the patch does not fit
        h1, h2 = self.rnnpool_config.hidden_dims
        for idx, (n_in, n_h) in ((1, (channels, h1)), (2, (h1, h2))):
            self._add_cell(idx, n_in, n_h)
        self.cells = FloatCells(self.cell_params(1), self.cell_params(2), self.rnnpool_config)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={1: rows, 2: cols, 3: channels})
        super().build(input_shape)

    def _add_cell(self, idx: int, n_in: int, n_h: int) -> None:
        add = self.add_weight
        # A fresh initializer per weight: one unseeded instance reused would repeat its values.
        fresh = lambda init: keras.initializers.deserialize(keras.initializers.serialize(init))
        setattr(self, f"w{idx}", add(name=f"w{idx}", shape=(n_in, n_h), initializer=fresh(self.kernel_initializer)))
        setattr(self, f"u{idx}", add(name=f"u{idx}", shape=(n_h, n_h), initializer=fresh(self.recurrent_initializer)))
        setattr(
            self, f"bias_gate{idx}", add(name=f"bias_gate{idx}", shape=(n_h,), initializer=fresh(self.bias_initializer))
        )
        setattr(
            self,
            f"bias_update{idx}",
            add(name=f"bias_update{idx}", shape=(n_h,), initializer=fresh(self.bias_initializer)),
        )
        for scalar, init in (("zeta", self.zeta_init), ("nu", self.nu_init)):
            setattr(
                self,
                f"{scalar}{idx}",
                add(
                    name=f"{scalar}{idx}",
                    shape=(),
                    initializer=keras.initializers.Constant(init),
                    trainable=self.train_zeta_nu,
                ),
            )

    # -- computation --------------------------------------------------------
    def cell_params(self, idx: int) -> FastGRNNParams:
        return FastGRNNParams(*(getattr(self, f"{name}{idx}") for name in CELL_WEIGHTS))

    def call(self, inputs):
        return self.cells.pool(tf.cast(inputs, self.compute_dtype))

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        geo = self.rnnpool_config.geometry(input_shape[1], input_shape[2])
        return tf.TensorShape([input_shape[0], geo.out_rows, geo.out_cols, self.rnnpool_config.output_channels])

    # -- weights as NumPy -----------------------------------------------------
    def get_rnnpool_weights(self) -> RNNPoolWeights:
        """The float weights as plain NumPy (for references, quantization, export)."""

        def cell(idx):
            vals = [keras.backend.get_value(getattr(self, f"{n}{idx}")) for n in CELL_WEIGHTS]
            return FastGRNNWeights(vals[0], vals[1], vals[2], vals[3], float(vals[4]), float(vals[5]))

        return RNNPoolWeights(cell(1), cell(2))

    def set_rnnpool_weights(self, weights: RNNPoolWeights) -> None:
        if not self.built:
            raise ValueError("build the RNNPool layer (call it on an input) before setting weights")
        h1, h2 = self.rnnpool_config.hidden_dims
        weights.rnn1.validate("rnn1", int(self.w1.shape[0]), h1)
        weights.rnn2.validate("rnn2", h1, h2)
        for idx, cell in ((1, weights.rnn1), (2, weights.rnn2)):
            for name in CELL_WEIGHTS:
                var = getattr(self, f"{name}{idx}")
                keras.backend.set_value(var, np.asarray(getattr(cell, name), np.float32).reshape(var.shape))

    def get_config(self):
        cfg = self.rnnpool_config
        config = super().get_config()
        config.update(
            {
                "patch_size": list(cfg.patch_size),
                "strides": list(cfg.strides),
                "hidden_dims": list(cfg.hidden_dims),
                "padding": cfg.padding,
                "gate_activation": cfg.gate_activation,
                "update_activation": cfg.update_activation,
                "zeta_init": self.zeta_init,
                "nu_init": self.nu_init,
                "train_zeta_nu": self.train_zeta_nu,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def find_rnnpool_layers(model) -> list:
    """Every RNNPool layer of a (possibly nested) Keras model, in layer order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, RNNPool):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(find_rnnpool_layers(layer))
    return found
