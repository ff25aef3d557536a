"""The vectorised Keras layer equals the loop-by-loop float reference of Algorithm 1."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnpool_tflm.core.weights import RNNPoolWeights
from rnnpool_tflm.layer.rnnpool import RNNPool
from rnnpool_tflm.reference import rnnpool_float


@st.composite
def layer_cases(draw):
    r, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sr, sc = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    padding = draw(st.sampled_from(["valid", "same"]))
    rows = draw(st.integers(r if padding == "valid" else 1, 11))
    cols = draw(st.integers(c if padding == "valid" else 1, 11))
    return dict(
        patch=(r, c),
        strides=(sr, sc),
        padding=padding,
        rows=rows,
        cols=cols,
        channels=draw(st.integers(1, 32)),
        h1=draw(st.integers(1, 9)),
        h2=draw(st.integers(1, 9)),
        batch=draw(st.integers(1, 2)),
        activations=draw(
            st.sampled_from(
                [("sigmoid", "tanh"), ("hard_sigmoid", "hard_tanh"), ("sigmoid", "hard_tanh"), ("hard_sigmoid", "tanh")]
            )
        ),
        zeta=draw(st.floats(-3, 3)),
        nu=draw(st.floats(-4, 1)),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@settings(max_examples=60)
@given(layer_cases())
def test_layer_matches_algorithm1_reference(case):
    rng = np.random.default_rng(case["seed"])
    layer = RNNPool(
        case["patch"],
        case["strides"],
        (case["h1"], case["h2"]),
        padding=case["padding"],
        gate_activation=case["activations"][0],
        update_activation=case["activations"][1],
    )
    x = rng.standard_normal((case["batch"], case["rows"], case["cols"], case["channels"])).astype(np.float32)
    layer(x)  # build
    weights = RNNPoolWeights.random(
        case["channels"], case["h1"], case["h2"], rng, scale=1.0, zeta=case["zeta"], nu=case["nu"]
    )
    layer.set_rnnpool_weights(weights)
    got = layer(x).numpy()
    want = rnnpool_float(x, layer.get_rnnpool_weights(), layer.rnnpool_config)
    assert got.shape == want.shape == tuple(layer.compute_output_shape(x.shape))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_output_channels_are_rows_fwd_rows_bwd_cols_fwd_cols_bwd():
    """A patch whose rows are all equal has equal row summaries, so rows fwd == rows bwd;
    its columns differ, so the column directions differ."""
    rng = np.random.default_rng(3)
    layer = RNNPool(4, 4, (6, 5))
    row = rng.standard_normal((1, 1, 4, 3)).astype(np.float32)
    x = np.repeat(row, 4, axis=1)
    out = layer(x).numpy()[0, 0, 0]
    h2 = 5
    np.testing.assert_allclose(out[0:h2], out[h2 : 2 * h2], atol=1e-6)
    assert np.abs(out[2 * h2 : 3 * h2] - out[3 * h2 :]).max() > 1e-4
