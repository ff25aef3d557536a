"""Float RNNPool written straight from Algorithm 1 of the paper (the executable spec).

Deliberately naive: a Python loop over patches and time steps, float64
arithmetic, no sharing of work between patches. Everything faster is tested
against this.
"""

from __future__ import annotations

import numpy as np

from ..core.config import RNNPoolConfig
from ..core.weights import FastGRNNWeights, RNNPoolWeights
from .output_pad import replicate_pad


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACTIVATIONS = {
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip((x + 1.0) / 2.0, 0.0, 1.0),
    "tanh": np.tanh,
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
}


def fastgrnn(cell: FastGRNNWeights, xs, gate: str, update: str) -> np.ndarray:
    """Runs FastGRNN over the sequence xs (Algorithm 1, lines 1-9) from a zero state."""
    g, u_fn = ACTIVATIONS[gate], ACTIVATIONS[update]
    w, u = cell.w.astype(np.float64), cell.u.astype(np.float64)
    zeta_s, nu_s = _sigmoid(np.float64(cell.zeta)), _sigmoid(np.float64(cell.nu))
    h = np.zeros(cell.hidden)
    for x in xs:
        pre = np.asarray(x, np.float64) @ w + h @ u
        z = g(pre + cell.bias_gate)
        h_tilde = u_fn(pre + cell.bias_update)
        h = z * h + (zeta_s * (1.0 - z) + nu_s) * h_tilde
    return h


def rnnpool_patch(
    weights: RNNPoolWeights, patch: np.ndarray, gate: str = "sigmoid", update: str = "tanh"
) -> np.ndarray:
    """RNNPool operator on one r x c x k patch (Algorithm 1, lines 11-18) -> [4*h2]."""
    r, c, _ = patch.shape
    rows = [fastgrnn(weights.rnn1, patch[i, :, :], gate, update) for i in range(r)]
    cols = [fastgrnn(weights.rnn1, patch[:, j, :], gate, update) for j in range(c)]
    rnn2 = lambda seq: fastgrnn(weights.rnn2, seq, gate, update)
    return np.concatenate([rnn2(rows), rnn2(rows[::-1]), rnn2(cols), rnn2(cols[::-1])])


def rnnpool_float(x: np.ndarray, weights: RNNPoolWeights, config: RNNPoolConfig) -> np.ndarray:
    """RNNPoolLayer: the operator strided over an NHWC batch -> [N, out_rows, out_cols, 4*h2]
    (plus the config's output replicate padding, if any)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 4:
        raise ValueError(f"input must be NHWC (rank 4), got shape {x.shape}")
    geo = config.geometry(x.shape[1], x.shape[2])
    xp = np.pad(x, ((0, 0), (geo.pad_top, geo.pad_bottom), (geo.pad_left, geo.pad_right), (0, 0)))
    (r, c), (sr, sc) = config.patch_size, config.strides
    out = np.zeros((x.shape[0], geo.out_rows, geo.out_cols, config.output_channels))
    for n in range(x.shape[0]):
        for i in range(geo.out_rows):
            for j in range(geo.out_cols):
                patch = xp[n, i * sr : i * sr + r, j * sc : j * sc + c, :]
                out[n, i, j] = rnnpool_patch(weights, patch, config.gate_activation, config.update_activation)
    return replicate_pad(out, config.output_padding)
