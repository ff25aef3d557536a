"""A NumPy transcription of EdgeML's PyTorch RNNPool.forward, tensor op by tensor op.

Used only to test that weights loaded from an EdgeML state dict give EdgeML's
numbers: it mirrors EdgeML's unbind/cat layout juggling and its BaseRNN
bidirectional bookkeeping rather than the paper's algorithm, so a mismatch in
orientation or output order would show up.
"""

import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _cell(state, prefix, x, h):
    g = lambda k: np.asarray(state[f"{prefix}.cell.{k}"], np.float64)
    pre = x @ g("W") + h @ g("U")
    z = _sigmoid(pre + g("bias_gate"))
    c = np.tanh(pre + g("bias_update"))
    return z * h + (_sigmoid(g("zeta")) * (1.0 - z) + _sigmoid(g("nu"))) * c


def _base_rnn(state, prefix, inputs, hidden, bidirectional):
    """EdgeML BaseRNN, batch_first=False: inputs [T, B, D] -> hidden states [T, B, H or 2H]."""
    steps = inputs.shape[0]
    h = [np.zeros((inputs.shape[1], hidden)) for _ in range(2)]
    fwd, bwd = [], []
    for i in range(steps):
        h[0] = _cell(state, prefix, inputs[i], h[0])
        fwd.append(h[0])
        if bidirectional:
            h[1] = _cell(state, prefix, inputs[steps - i - 1], h[1])
            bwd.append(h[1])
    out = np.stack(fwd)
    return np.concatenate([out, np.stack(bwd)], -1) if bidirectional else out


def edgeml_rnnpool_forward(state, patches_nchw, h1, h2):
    """EdgeML RNNPool.forward(inputs=[B, k, r, c], batch_size=B) -> [B, 4*h2]."""
    b = patches_nchw.shape[0]
    # "across rows": unbind dim 3, cat dim 0 -> [c*B, k, r]; time = dim 2.
    row_timestack = np.concatenate([patches_nchw[:, :, :, j] for j in range(patches_nchw.shape[3])], 0)
    seq = np.stack([row_timestack[:, :, t] for t in range(row_timestack.shape[2])])
    final = _base_rnn(state, "cell_rnn", seq, h1, False)[-1]
    state_list = np.stack(np.split(final, final.shape[0] // b, axis=0))
    outputs_cols = _base_rnn(state, "cell_bidirrnn", state_list, h2, True)
    # "across columns": unbind dim 2, cat dim 0 -> [r*B, k, c]; time = dim 2.
    col_timestack = np.concatenate([patches_nchw[:, :, i, :] for i in range(patches_nchw.shape[2])], 0)
    seq = np.stack([col_timestack[:, :, t] for t in range(col_timestack.shape[2])])
    final = _base_rnn(state, "cell_rnn", seq, h1, False)[-1]
    state_list = np.stack(np.split(final, final.shape[0] // b, axis=0))
    outputs_rows = _base_rnn(state, "cell_bidirrnn", state_list, h2, True)
    return np.concatenate([outputs_rows[-1], outputs_cols[-1]], 1)
