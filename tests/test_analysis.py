"""rnnpool_tflm.analysis.counts: parameter and MAC counting, and the paper's appendix E.2 memory units."""

import itertools

import numpy as np
import pytest

from rnnpool_tflm.analysis.counts import analyze, layer_macs, layer_params, rnnpool_patch_macs
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.core.keras import keras
from rnnpool_tflm.layer.rnnpool import RNNPool

L = keras.layers


def _enumerated_patch_macs(r, c, k, h1, h2):
    """Algorithm 1 step by step: every FastGRNN step costs W x + U h (shared by both gates)."""
    rnn1_step, rnn2_step = k * h1 + h1 * h1, h1 * h2 + h2 * h2
    rnn1 = sum(rnn1_step for _row in range(r) for _t in range(c)) + sum(
        rnn1_step for _col in range(c) for _t in range(r)
    )
    rnn2 = sum(rnn2_step for _direction in range(2) for _t in range(r)) + sum(
        rnn2_step for _direction in range(2) for _t in range(c)
    )
    return rnn1 + rnn2


@pytest.mark.parametrize("r,c,k,h1,h2", [(6, 6, 32, 16, 16), (8, 8, 4, 16, 16), (6, 6, 8, 8, 8), (3, 5, 2, 4, 7)])
def test_rnnpool_patch_macs_is_algorithm_1_step_count(r, c, k, h1, h2):
    assert rnnpool_patch_macs(r, c, k, h1, h2) == _enumerated_patch_macs(r, c, k, h1, h2)


def _single(layer, shape):
    inputs = keras.Input(shape)
    outputs = layer(inputs)
    return keras.Model(inputs, outputs)


def test_layer_macs_and_params_by_hand():
    conv = _single(L.Conv2D(8, 3, strides=2, padding="same", use_bias=True), (10, 12, 3))
    a = analyze(conv)
    assert a.layers[1].macs == 5 * 6 * 8 * 3 * 3 * 3
    assert a.layers[1].params == 3 * 3 * 3 * 8 + 8
    dw = analyze(_single(L.DepthwiseConv2D(3, depth_multiplier=2, padding="valid", use_bias=False), (7, 9, 4)))
    assert dw.layers[1].macs == 5 * 7 * 8 * 9 and dw.layers[1].params == 9 * 4 * 2
    dense = analyze(_single(L.Dense(5), (7,)))
    assert dense.layers[1].macs == 35 and dense.layers[1].params == 40
    grouped = analyze(_single(L.Conv2D(8, 1, groups=4, use_bias=False), (4, 4, 8)))
    assert grouped.layers[1].macs == 16 * 8 * 2
    bn = _single(L.BatchNormalization(), (4, 4, 6))
    assert layer_params(bn.layers[1]) == 12  # gamma and beta; the moving statistics are not parameters
    assert bn.layers[1].count_params() == 24


@pytest.mark.parametrize("padding,size", [("valid", (23, 30)), ("same", (23, 30)), ("valid", (8, 8))])
def test_rnnpool_layer_macs_count_every_output_pixel(padding, size):
    layer = RNNPool((5, 4), (3, 2), (6, 7), padding=padding)
    model = _single(layer, size + (3,))
    geo = layer.rnnpool_config.geometry(*size)
    a = analyze(model)
    assert a.layers[1].output_shapes == ((geo.out_rows, geo.out_cols, 28),)
    assert a.layers[1].macs == geo.out_rows * geo.out_cols * rnnpool_patch_macs(5, 4, 3, 6, 7)
    assert a.layers[1].params == (3 * 6 + 36 + 12 + 2) + (6 * 7 + 49 + 14 + 2)
    assert layer_macs(layer, [(None,) + size + (3,)], [(None, geo.out_rows, geo.out_cols, 28)]) == a.layers[1].macs


def _mbconv(x, t, out, stride, name):
    c = int(x.shape[-1])
    y = L.Conv2D(c * t, 1, use_bias=False, name=f"{name}_e")(x)
    y = L.BatchNormalization(name=f"{name}_ebn")(y)
    y = L.ReLU(6.0, name=f"{name}_er")(y)
    y = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_d")(y)
    y = L.ReLU(6.0, name=f"{name}_dr")(y)
    y = L.Conv2D(out, 1, use_bias=False, name=f"{name}_p")(y)
    return L.Add(name=f"{name}_add")([x, y]) if stride == 1 and c == out else y


def test_units_follow_appendix_e2():
    inputs = keras.Input((16, 16, 3), name="img")
    x = L.Conv2D(8, 3, strides=2, padding="same", name="stem")(inputs)  # 8x8x8
    x = L.ReLU(name="stem_relu")(x)
    x = _mbconv(x, 4, 8, 1, "mb1")  # residual MBConv
    x = _mbconv(x, 2, 12, 2, "mb2")  # 4x4x12, no residual
    y = L.Conv2D(12, 3, padding="same", name="r_a")(x)  # plain residual block
    y = L.ReLU(name="r_relu")(y)
    y = L.Conv2D(12, 3, padding="same", name="r_b")(y)
    x = L.Add(name="r_add")([x, y])
    x = L.Conv2D(40, 1, name="last")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    outputs = L.Dense(3, name="fc")(x)
    a = analyze(keras.Model(inputs, outputs), bytes_per_element=4)

    by_name = {u.name: u for u in a.units}
    kinds = [(u.kind, u.layers) for u in a.units]
    assert kinds[0] == ("layer", ("stem", "stem_relu"))
    mb1 = next(u for u in a.units if "mb1_e" in u.layers)
    assert mb1.kind == "mbconv" and mb1.layers == ("mb1_e", "mb1_ebn", "mb1_er", "mb1_d", "mb1_dr", "mb1_p", "mb1_add")
    assert mb1.cost_elements == 8 * 8 * 8 * 2
    mb2 = next(u for u in a.units if "mb2_e" in u.layers)
    assert mb2.kind == "mbconv" and mb2.cost_elements == 8 * 8 * 8 + 4 * 4 * 12
    res = next(u for u in a.units if "r_add" in u.layers)
    assert res.kind == "residual" and set(res.layers) == {"r_a", "r_relu", "r_b", "r_add"}
    assert res.cost_elements == 4 * 4 * 12  # max(input, output), equal here
    pool = next(u for u in a.units if "last" in u.layers)
    assert pool.kind == "pointwise+pool" and pool.cost_elements == 4 * 4 * 12 + 40
    assert by_name["fc"].cost_elements == 40 + 3
    stem_cost = (16 * 16 * 3 + 8 * 8 * 8) * 4
    assert a.peak_bytes == max(stem_cost, 2 * 8 * 8 * 8 * 4) == stem_cost
    assert a.peak_unit.layers == ("stem", "stem_relu")
    # every layer but the input belongs to exactly one unit
    assert sorted(itertools.chain.from_iterable(u.layers for u in a.units)) == sorted(
        layer.name for layer in a.layers if layer.unit is not None
    )
    assert [layer.unit for layer in a.layers].count(None) == 1


def _rnnpool_stem_model(with_branch: bool):
    inputs = keras.Input((40, 48, 1), name="img")
    x = L.Conv2D(4, 3, strides=2, padding="same", name="stem")(inputs)  # 20x24x4
    x = L.BatchNormalization(name="stem_bn")(x)
    outputs = []
    if with_branch:
        outputs.append(L.Conv2D(2, 3, strides=2, padding="same", name="branch")(x))  # 10x12x2
    x = RNNPool(4, 4, (6, 6), name="pool")(x)  # 5x6x24
    x = L.ZeroPadding2D(((0, 1), (0, 0)), name="pad")(x)  # 6x6x24
    x = _mbconv(x, 2, 16, 2, "mb")  # 3x3x16
    outputs.append(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("with_branch", [False, True])
def test_rnnpool_stem_is_one_patch_by_patch_unit(with_branch):
    a = analyze(_rnnpool_stem_model(with_branch), bytes_per_element=1)
    stem = a.units[0]
    assert stem.kind == "stem"
    expected = {"stem", "stem_bn", "pool", "pad"} | ({"branch"} if with_branch else set())
    assert set(stem.layers) == expected
    assert stem.cost_elements == 6 * 6 * 24  # its largest stored result, the padded pooled map
    assert not stem.reads_input or stem.input_elements == 40 * 48
    mb = a.units[-1]
    assert mb.kind == "mbconv" and mb.cost_elements == 6 * 6 * 24 + 3 * 3 * 16
    assert a.peak_bytes == 6 * 6 * 24 + 3 * 3 * 16
    resident = analyze(_rnnpool_stem_model(with_branch), bytes_per_element=1, resident_input=True)
    assert resident.peak_bytes == a.peak_bytes + 40 * 48
    assert resident.unit_bytes(resident.units[0]) == 6 * 6 * 24 + 40 * 48


def test_no_stem_when_a_residual_precedes_the_rnnpool():
    inputs = keras.Input((12, 12, 4))
    y = L.Conv2D(4, 3, padding="same")(inputs)
    x = L.Add()([inputs, y])
    x = RNNPool(4, 4, (3, 3), name="late_pool")(x)
    a = analyze(keras.Model(inputs, x))
    assert all(u.kind != "stem" for u in a.units)
    late = next(u for u in a.units if u.layers == ("late_pool",))
    assert late.kind == "layer" and late.cost_elements == 12 * 12 * 4 + 3 * 3 * 12


def test_qat_model_counts_like_its_float_model(tmp_path):
    from rnnpool_tflm.quantize.model import load_model, quantize_model

    model = _rnnpool_stem_model(False)
    float_a = analyze(model)
    qat = quantize_model(model)
    qat.save(tmp_path / "qat.keras")
    for qat_a in (analyze(qat), analyze(load_model(str(tmp_path / "qat.keras")))):
        assert qat_a.total_params == float_a.total_params
        assert qat_a.total_macs == float_a.total_macs
        assert qat_a.peak_bytes == float_a.peak_bytes
        assert [u.kind for u in qat_a.units] == [u.kind for u in float_a.units]
    plain = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(6, 3, strides=2, padding="same"),
            L.ReLU(),
            L.GlobalAveragePooling2D(),
            L.Dense(2),
        ]
    )
    plain_a, plain_qat_a = analyze(plain), analyze(quantize_model(plain))
    assert [(u.kind, u.cost_elements) for u in plain_qat_a.units] == [(u.kind, u.cost_elements) for u in plain_a.units]
    assert plain_qat_a.peak_bytes == (8 * 8 * 3 + 4 * 4 * 6) * 4


def test_bad_input_is_a_clear_error():
    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(RNNPoolError, match="functional or Sequential"):
        analyze(Sub())
    with pytest.raises(RNNPoolError, match="expected a Keras model"):
        analyze("model.keras")
    model = _single(L.Dense(2), (3,))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="bytes_per_element"):
            analyze(model, bytes_per_element=bad)
    shared = L.Dense(3)
    inputs = keras.Input((3,))
    with pytest.raises(RNNPoolError, match="called 2 times"):
        analyze(keras.Model(inputs, shared(shared(inputs))))
    dynamic = keras.Model(*(lambda i: (i, L.Conv2D(2, 1)(i)))(keras.Input((None, None, 3))))
    with pytest.raises(RNNPoolError, match="static shapes"):
        analyze(dynamic)


def test_as_dict_matches_the_totals():
    a = analyze(_rnnpool_stem_model(True), bytes_per_element=1)
    d = a.as_dict()
    assert d["params"] == a.total_params == sum(row["params"] for row in d["layers"])
    assert d["macs"] == a.total_macs and d["paper_peak_bytes"] == a.peak_bytes
    assert [row["activation_bytes"] for row in d["layers"]] == [layer.output_elements for layer in a.layers]
    assert np.isclose(max(u["bytes"] for u in d["units"]), a.peak_bytes)


def test_sequential_and_nested_models():
    seq = keras.Sequential(
        [
            keras.Input((10, 10, 2)),
            L.Conv2D(4, 3, strides=2, padding="same"),
            RNNPool(3, 2, (2, 2)),
            L.GlobalAveragePooling2D(),
            L.Dense(3),
        ]
    )
    a = analyze(seq, bytes_per_element=1)
    assert a.total_params == seq.count_params()
    assert [u.kind for u in a.units] == ["stem", "layer", "layer"]
    assert a.units[0].cost_elements == 2 * 2 * 8
    inner = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3)])
    outer_in = keras.Input((8, 8, 3))
    outer = keras.Model(outer_in, L.Dense(2)(inner(outer_in)))
    b = analyze(outer)
    assert [layer.macs for layer in b.layers] == [0, 6 * 6 * 4 * 27, 6 * 6 * 4 * 2]
    assert b.total_params == outer.count_params()
