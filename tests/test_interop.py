"""EdgeML state dicts load into the Keras layer and reproduce EdgeML's outputs."""

import numpy as np
import pytest
from edgeml_numpy import edgeml_rnnpool_forward

from rnnpool_tflm.layer.interop import edgeml_state_dict_to_weights, load_edgeml_state_dict
from rnnpool_tflm.layer.rnnpool import RNNPool


def _edgeml_state(k, h1, h2, rng, prefix=""):
    state = {}
    for name, (n_in, n_h) in (("cell_rnn", (k, h1)), ("cell_bidirrnn", (h1, h2))):
        base = f"{prefix}{name}.cell."
        state[base + "W"] = rng.standard_normal((n_in, n_h)).astype(np.float32) * 0.5
        state[base + "U"] = rng.standard_normal((n_h, n_h)).astype(np.float32) * 0.5
        state[base + "bias_gate"] = rng.standard_normal((1, n_h)).astype(np.float32)
        state[base + "bias_update"] = rng.standard_normal((1, n_h)).astype(np.float32)
        state[base + "zeta"] = np.array([[rng.normal()]], np.float32)
        state[base + "nu"] = np.array([[rng.normal() - 2]], np.float32)
    return state


@pytest.mark.parametrize("patch, stride, k, h1, h2", [(8, 4, 4, 16, 16), (6, 4, 3, 5, 7)])
def test_loaded_layer_matches_edgeml_forward(patch, stride, k, h1, h2):
    rng = np.random.default_rng(0)
    state = _edgeml_state(k, h1, h2, rng, prefix="rnn_model.")
    x = rng.standard_normal((2, 2 * patch, 2 * patch + 3, k)).astype(np.float32)
    layer = RNNPool(patch, stride, (h1, h2))
    layer(x)
    load_edgeml_state_dict(layer, state, prefix="rnn_model.")
    got = layer(x).numpy()
    unprefixed = {key[len("rnn_model.") :]: v for key, v in state.items()}
    for i in range(got.shape[1]):
        for j in range(got.shape[2]):
            patch_nhwc = x[:, i * stride : i * stride + patch, j * stride : j * stride + patch, :]
            want = edgeml_rnnpool_forward(unprefixed, patch_nhwc.transpose(0, 3, 1, 2), h1, h2)
            np.testing.assert_allclose(got[:, i, j, :], want, atol=1e-5)


def test_low_rank_cells_are_multiplied_out():
    rng = np.random.default_rng(1)
    state = _edgeml_state(3, 4, 5, rng)
    w = state.pop("cell_rnn.cell.W")
    state["cell_rnn.cell.W1"], state["cell_rnn.cell.W2"] = w, np.eye(4, dtype=np.float32)
    np.testing.assert_array_equal(edgeml_state_dict_to_weights(state).rnn1.w, w)


def test_missing_key_and_wrong_shapes_are_reported():
    rng = np.random.default_rng(2)
    state = _edgeml_state(3, 4, 5, rng)
    del state["cell_bidirrnn.cell.nu"]
    with pytest.raises(KeyError, match="cell_bidirrnn.cell.nu"):
        edgeml_state_dict_to_weights(state)
    layer = RNNPool(2, hidden_dims=(4, 6))
    layer(np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"hidden \(4, 5\)"):
        load_edgeml_state_dict(layer, _edgeml_state(3, 4, 5, rng))
