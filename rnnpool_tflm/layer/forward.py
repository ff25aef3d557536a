"""Vectorised float RNNPool in TensorFlow ops (what the Keras layer runs).

All patches of the batch are processed at once; Python loops run only over
time steps. The work is organised like the C kernel:

* ``x @ W1`` once per pixel, shared by row sweeps, column sweeps and every
  patch that covers the pixel;
* RNN1 runs once per row segment (image row x patch column) and once per column
  segment (patch row x image column); overlapping patches (stride < patch)
  reuse those summaries instead of recomputing them;
* ``summary @ W2`` once per summary, shared by both RNN2 directions.

The result equals Algorithm 1 evaluated patch by patch.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import tensorflow as tf

from ..core.config import RNNPoolConfig


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


def run_fastgrnn(steps: Sequence[tf.Tensor], cell: FastGRNNParams, gate: Callable,
                 update: Callable) -> tf.Tensor:
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


def _run_batched(groups: List[List[tf.Tensor]], cell: FastGRNNParams, gate, update) -> List[tf.Tensor]:
    """Runs several independent sequence sets; sets of equal length share one loop."""
    results: List[tf.Tensor] = [None] * len(groups)
    by_length: Dict[int, List[int]] = {}
    for idx, steps in enumerate(groups):
        by_length.setdefault(len(steps), []).append(idx)
    for length, members in by_length.items():
        shapes = [tf.shape(groups[m][0]) for m in members]
        flat = [[tf.reshape(s, [-1, s.shape[-1]]) for s in groups[m]] for m in members]
        sizes = [tf.shape(f[0])[0] for f in flat]
        steps = [tf.concat([f[t] for f in flat], axis=0) for t in range(length)]
        final = run_fastgrnn(steps, cell, gate, update)
        for m, part, shape in zip(members, tf.split(final, sizes, axis=0), shapes):
            results[m] = tf.reshape(part, tf.concat([shape[:-1], [cell.u.shape[-1]]], axis=0))
    return results


def rnnpool_forward(x: tf.Tensor, rnn1: FastGRNNParams, rnn2: FastGRNNParams,
                    config: RNNPoolConfig) -> tf.Tensor:
    """[N, H, W, k] -> [N, out_rows, out_cols, 4*h2] in the order [rows fwd, rows bwd, cols fwd, cols bwd]."""
    geo = config.geometry(int(x.shape[1]), int(x.shape[2]))
    (r, c), (sr, sc) = config.patch_size, config.strides
    gate, update = TF_ACTIVATIONS[config.gate_activation], TF_ACTIVATIONS[config.update_activation]
    n_r, n_c = geo.out_rows, geo.out_cols
    used_rows, used_cols = (n_r - 1) * sr + r, (n_c - 1) * sc + c

    # Zero padding of x is zero padding of x @ W1, so project first, pad after.
    wx = tf.tensordot(x, rnn1.w, axes=1)
    wx = tf.pad(wx, [[0, 0], [geo.pad_top, geo.pad_bottom], [geo.pad_left, geo.pad_right], [0, 0]])
    wx = wx[:, :used_rows, :used_cols, :]

    # RNN1 segments: step t of row segment (y, j) is pixel (y, j*sc + t);
    # step t of column segment (i, x) is pixel (i*sr + t, x).
    row_steps = [wx[:, :, t:t + (n_c - 1) * sc + 1:sc, :] for t in range(c)]
    col_steps = [wx[:, t:t + (n_r - 1) * sr + 1:sr, :, :] for t in range(r)]
    row_summary, col_summary = _run_batched([row_steps, col_steps], rnn1, gate, update)

    # RNN2 inputs, projected once per summary: patch (i, j) reads row summaries
    # (i*sr + t, j) and column summaries (i, j*sc + t).
    row_proj = tf.tensordot(row_summary, rnn2.w, axes=1)
    col_proj = tf.tensordot(col_summary, rnn2.w, axes=1)
    rows = [row_proj[:, t:t + (n_r - 1) * sr + 1:sr, :, :] for t in range(r)]
    cols = [col_proj[:, :, t:t + (n_c - 1) * sc + 1:sc, :] for t in range(c)]
    outs = _run_batched([rows, rows[::-1], cols, cols[::-1]], rnn2, gate, update)
    return tf.concat(outs, axis=-1)
