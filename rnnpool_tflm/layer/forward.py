"""The float FastGRNN cells in TensorFlow ops (what the Keras layer computes); the
sweep over patches that feeds them is layer.sweep's."""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import tensorflow as tf

from ..core.config import RNNPoolConfig
from .sweep import Cells


def hard_sigmoid(x):
    return tf.clip_by_value((x + 1.0) * 0.5, 0.0, 1.0)


def hard_tanh(x):
    return tf.clip_by_value(x, -1.0, 1.0)


TF_ACTIVATIONS: Dict[str, Callable] = {
    "sigmoid": tf.sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "tanh": tf.tanh,
    "hard_tanh": hard_tanh,
}


class FastGRNNParams:
    """The tensors of one FastGRNN cell as the layer hands them to the math."""

    def __init__(self, w, u, bias_gate, bias_update, zeta, nu):
        self.w, self.u = w, u
        self.bias_gate, self.bias_update = bias_gate, bias_update
        self.zeta, self.nu = zeta, nu


def run_fastgrnn(steps: Sequence[tf.Tensor], cell: FastGRNNParams, gate: Callable, update: Callable) -> tf.Tensor:
    """FastGRNN over pre-projected inputs ``steps[t] = x_t @ W`` of shape [N, h]."""
    zeta_s, nu_s = tf.sigmoid(cell.zeta), tf.sigmoid(cell.nu)
    h = None
    for pre_x in steps:
        pre = pre_x if h is None else pre_x + tf.matmul(h, cell.u)
        z = gate(pre + cell.bias_gate)
        h_tilde = update(pre + cell.bias_update)
        coef = zeta_s * (1.0 - z) + nu_s
        h = coef * h_tilde if h is None else z * h + coef * h_tilde
    return h


class FloatCells(Cells):
    """The float FastGRNNs: what the RNNPool layer computes unless a QuantizeConfig swaps in other cells."""

    def __init__(self, rnn1: FastGRNNParams, rnn2: FastGRNNParams, config: RNNPoolConfig):
        super().__init__(config)
        self.rnn1, self.rnn2 = rnn1, rnn2
        self.gate = TF_ACTIVATIONS[config.gate_activation]
        self.update = TF_ACTIVATIONS[config.update_activation]

    def project_pixels(self, x):
        return tf.tensordot(x, self.rnn1.w, axes=1)

    def project_summaries(self, summaries):
        return tf.tensordot(summaries, self.rnn2.w, axes=1)

    def run(self, rnn, steps):
        return run_fastgrnn(steps, self.rnn1 if rnn == 1 else self.rnn2, self.gate, self.update)

    def output(self, finals):
        return tf.concat(list(finals), axis=-1)


def rnnpool_forward(x: tf.Tensor, rnn1: FastGRNNParams, rnn2: FastGRNNParams, config: RNNPoolConfig) -> tf.Tensor:
    """[N, H, W, k] -> [N, out_rows, out_cols, 4*h2] in the order [rows fwd, rows bwd, cols fwd, cols bwd]."""
    return FloatCells(rnn1, rnn2, config).pool(x)
