"""Loading weights trained with EdgeML's PyTorch ``RNNPool`` (no torch needed).

EdgeML keeps RNN1 in ``cell_rnn`` and the shared bidirectional RNN2 in
``cell_bidirrnn``; each is a ``FastGRNN`` whose ``cell`` holds
``W [inputs, hidden]``, ``U [hidden, hidden]``, ``bias_gate [1, hidden]``,
``bias_update [1, hidden]``, ``zeta [1, 1]``, ``nu [1, 1]``, used as
``x @ W + h @ U`` — the same orientation as this package's layer, so weights
copy over unchanged (see docs/rnnpool.md). Low-rank cells (``W1``/``W2``,
``U1``/``U2``) are multiplied out to full rank.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..core.weights import FastGRNNWeights, RNNPoolWeights

CELLS = (("cell_rnn", "rnn1"), ("cell_bidirrnn", "rnn2"))


def _matrix(state: Mapping, base: str, name: str) -> np.ndarray:
    full = f"{base}.{name}"
    if full in state:
        return np.asarray(state[full], np.float32)
    low = (f"{base}.{name}1", f"{base}.{name}2")
    if all(k in state for k in low):
        return np.asarray(state[low[0]], np.float32) @ np.asarray(state[low[1]], np.float32)
    raise KeyError(f"state dict has no {full!r} (nor low-rank {low[0]!r}/{low[1]!r})")


def _scalar(state: Mapping, key: str) -> float:
    value = np.asarray(state[key], np.float64)
    if value.size != 1:
        raise ValueError(f"{key!r} must hold one value, got shape {value.shape}")
    return float(value.reshape(()))


def edgeml_state_dict_to_weights(state_dict: Mapping, prefix: str = "") -> RNNPoolWeights:
    """EdgeML RNNPool state dict (NumPy arrays or anything np.asarray accepts) -> float weights.

    ``prefix`` selects the RNNPool inside a bigger model's state dict, e.g. "rnn_model.".
    """
    cells = {}
    for edgeml_name, ours in CELLS:
        base = f"{prefix}{edgeml_name}.cell"
        try:
            cells[ours] = FastGRNNWeights(
                w=_matrix(state_dict, base, "W"),
                u=_matrix(state_dict, base, "U"),
                bias_gate=np.asarray(state_dict[f"{base}.bias_gate"], np.float32).reshape(-1),
                bias_update=np.asarray(state_dict[f"{base}.bias_update"], np.float32).reshape(-1),
                zeta=_scalar(state_dict, f"{base}.zeta"),
                nu=_scalar(state_dict, f"{base}.nu"),
            )
        except KeyError as exc:
            raise KeyError(f"not an EdgeML RNNPool state dict: {exc.args[0]}") from None
    weights = RNNPoolWeights(cells["rnn1"], cells["rnn2"])
    weights.validate()
    return weights


def load_edgeml_state_dict(layer, state_dict: Mapping, prefix: str = "") -> None:
    """Copies EdgeML RNNPool weights into a built ``rnnpool_tflm.layer.rnnpool.RNNPool``.

    Raises ValueError when the shapes do not match the layer (channels, h1, h2).
    """
    weights = edgeml_state_dict_to_weights(state_dict, prefix)
    if not layer.built:
        raise ValueError("build the RNNPool layer (call it on an input) before loading weights")
    channels = int(layer.w1.shape[0])
    if weights.channels != channels or tuple(weights.hidden_dims) != tuple(layer.rnnpool_config.hidden_dims):
        raise ValueError(
            f"EdgeML weights are for {weights.channels} channels, hidden {weights.hidden_dims}; "
            f"the layer has {channels} channels, hidden {layer.rnnpool_config.hidden_dims}"
        )
    layer.set_rnnpool_weights(weights)
