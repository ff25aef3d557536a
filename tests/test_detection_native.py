"""The C post-processing (custom_ops/detection) against the NumPy reference (detection.postprocess):
the same exp, priors, scores and boxes bit for bit, in the same order; hand cases; every status."""

import ctypes
import dataclasses

import numpy as np
import pytest

from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.detection import on_device
from rnnpool_tflm.detection.exp32 import exp32
from rnnpool_tflm.detection.heads import HeadLayout
from rnnpool_tflm.detection.postprocess import PostprocessConfig
from rnnpool_tflm.detection.priors import FACE_M4_PRIORS, FACE_QUANT_PRIORS, PriorConfig, make_priors
from rnnpool_tflm.runtime import detection_native as dn
from rnnpool_tflm.runtime.detection_native import DetectorSetup, HeadGeometry

FACE_M4_MAPS = ((30, 40), (30, 40), (15, 20), (15, 20))


def _face_m4_setup(config=on_device.DEVICE_CONFIG, image=(240, 320), maps=FACE_M4_MAPS) -> DetectorSetup:
    layout = HeadLayout(maps, num_classes=2, maxout_first=True)
    return on_device.setup_from(layout, make_priors(image, maps, FACE_M4_PRIORS), config)


def _random_outputs(setup: DetectorSetup, rng, spread: int):
    """int8 maps with values around a random zero point (spread: how far they wander)."""
    outputs, scales, zeros = [], [], []
    for shape in setup.output_shapes():
        zero = int(rng.integers(-40, 40))
        q = np.clip(zero + rng.integers(-spread, spread + 1, shape), -128, 127).astype(np.int8)
        outputs.append(q)
        scales.append(float(np.float32(rng.uniform(0.02, 0.2))))
        zeros.append(zero)
    return outputs, scales, zeros


def _assert_same(native, reference):
    assert len(native) == len(reference)
    np.testing.assert_array_equal(native.priors, reference.priors)  # same order
    np.testing.assert_array_equal(native.labels, reference.labels)
    np.testing.assert_array_equal(native.scores.view(np.uint32), reference.scores.view(np.uint32))
    np.testing.assert_array_equal(native.boxes.view(np.uint32), reference.boxes.view(np.uint32))


# -- exp and priors ---------------------------------------------------------------------------------------


def test_c_exp_equals_the_numpy_exp32_bit_for_bit_and_is_within_2_ulp_of_exp():
    rng = np.random.default_rng(0)
    edges = np.array(
        [
            0.0,
            -0.0,
            -87.0,
            np.nextafter(-87.0, -88, dtype=np.float32),
            88.0,
            np.nextafter(88.0, 89, dtype=np.float32),
            -1e-30,
            1e-30,
            np.inf,
            -np.inf,
            0.5,
            -0.5,
            np.float32(np.log(2) / 2),
            -np.float32(np.log(2) / 2),
        ],
        np.float32,
    )
    x = np.concatenate([rng.uniform(-90, 90, 20000).astype(np.float32), edges])
    np.testing.assert_array_equal(dn.expf(x).view(np.uint32), exp32(x).view(np.uint32))
    assert np.isnan(dn.expf(np.float32(np.nan))) and np.isnan(exp32(np.float32(np.nan)))
    assert exp32(np.float32(-87.5)) == 0.0 and exp32(np.float32(88.5)) == np.inf
    inside = x[(x >= -87) & (x <= 88)]
    truth = np.exp(inside.astype(np.float64))
    ulps = np.abs(exp32(inside).astype(np.float64) - truth) / np.spacing(truth.astype(np.float32))
    assert ulps.max() <= 2.0
    assert exp32(np.float32(0.0)) == 1.0


@pytest.mark.parametrize(
    "image,maps,config",
    [
        ((240, 320), FACE_M4_MAPS, FACE_M4_PRIORS),
        ((96, 128), ((12, 16), (12, 16), (6, 8), (6, 8)), FACE_M4_PRIORS),
        ((480, 640), ((120, 160), (60, 80), (30, 40), (15, 20), (8, 10), (4, 5)), FACE_QUANT_PRIORS),
    ],
)
def test_c_priors_are_the_reference_priors_bit_for_bit(image, maps, config):
    layout = HeadLayout(maps, num_classes=2, maxout_first=True)
    priors = make_priors(image, maps, config)
    setup = on_device.setup_from(layout, priors)
    np.testing.assert_array_equal(dn.priors(setup).view(np.uint32), priors.boxes.view(np.uint32))


# -- C against the reference --------------------------------------------------------------------------------


@pytest.mark.parametrize("spread", [2, 12, 120])
def test_random_int8_maps_give_the_reference_boxes_in_the_same_order(spread):
    """spread 2: nearly equal logits (scores about 0.5 everywhere, ties, many boxes into NMS);
    120: the full int8 range."""
    setup = _face_m4_setup()
    rng = np.random.default_rng(spread)
    for _ in range(3):
        outputs, scales, zeros = _random_outputs(setup, rng, spread)
        native = on_device.native_detect(setup, outputs, scales, zeros)
        reference = on_device.reference_detect(setup, outputs, scales, zeros)
        assert len(native) > 5
        _assert_same(native, reference)


def test_the_host_default_configuration_and_float32_outputs_match_too():
    setup = _face_m4_setup(PostprocessConfig())  # nms_top_k 5000 > 3000 priors, top_k 750
    rng = np.random.default_rng(7)
    outputs, scales, zeros = _random_outputs(setup, rng, 30)
    _assert_same(
        on_device.native_detect(setup, outputs, scales, zeros),
        on_device.reference_detect(setup, outputs, scales, zeros),
    )
    real = [rng.normal(0, 2, o.shape).astype(np.float32) for o in outputs]
    native = on_device.native_detect(setup, real)
    assert len(native) > 5
    _assert_same(native, on_device.reference_detect(setup, real))


def test_three_classes_without_maxout_are_ordered_by_score_then_label_then_prior():
    maps = ((4, 4), (2, 2))
    layout = HeadLayout(maps, num_classes=3, maxout_first=False)
    priors = make_priors((32, 32), maps, PriorConfig(anchor_sizes=(8.0, 16.0)))
    setup = on_device.setup_from(layout, priors, PostprocessConfig(conf_threshold=0.2, top_k=12))
    rng = np.random.default_rng(3)
    outputs = [rng.integers(-4, 5, s).astype(np.float32) for s in setup.output_shapes()]
    for conf in outputs[1::2]:
        conf[..., 0] += 3.0  # most scores low: few boxes suppress others
    outputs[1][0, 0] = outputs[1][3, 3] = [0.0, 3.0, 3.0]  # priors 0 and 15: both classes score alike
    native = on_device.native_detect(setup, outputs)
    assert set(native.labels.tolist()) == {1, 2} and len(native) == 12
    rank = {
        (int(label), int(prior)): i for i, (label, prior) in enumerate(zip(native.labels, native.priors, strict=True))
    }
    first = rank[(1, 0)]  # equal scores: label 1 before label 2, then by prior
    assert [rank[(1, 15)], rank[(2, 0)], rank[(2, 15)]] == [first + 1, first + 2, first + 3]
    _assert_same(native, on_device.reference_detect(setup, outputs))


# -- hand cases -------------------------------------------------------------------------------------------


def _tiny():
    """16x16 image; head 0: 2x2 cells (stride 8, anchor 8, max-out), head 1: 1x1 (stride 16, anchor 16)."""
    maps = ((2, 2), (1, 1))
    setup = DetectorSetup(
        (16, 16), (HeadGeometry(2, 2, 8, 8.0), HeadGeometry(1, 1, 16, 16.0)), 2, True, (0.1, 0.2), 0.05, 0.3, 10, 10
    )
    loc0 = np.zeros((2, 2, 4), np.float32)
    conf0 = np.full((2, 2, 4), -4.0, np.float32)
    conf0[..., :3] = [-8.0, 4.0, -8.0]  # background = max of 3 = 4
    conf0[0, 1, 3] = conf0[1, 0, 3] = 6.0  # priors 1 and 2: faces, equal scores
    loc1 = np.zeros((1, 1, 4), np.float32)
    conf1 = np.array([[[0.0, 1.5]]], np.float32)  # prior 4: the whole image
    return maps, setup, [loc0, conf0, loc1, conf1]


def test_hand_case_scores_boxes_ties_and_nms():
    _, setup, outputs = _tiny()
    found = on_device.native_detect(setup, outputs)
    # softmax by hand: 1 / (1 + e^-2) and 1 / (1 + e^-1.5); ties (priors 1, 2) by prior index
    high, low = 1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(-1.5))
    assert found.priors.tolist() == [1, 2, 4]
    np.testing.assert_allclose(found.scores, [high, high, low], rtol=1e-6)
    # zero offsets: the priors themselves, (x1, y1, x2, y2)
    np.testing.assert_array_equal(found.boxes, [[0.5, 0, 1, 0.5], [0, 0.5, 0.5, 1], [0, 0, 1, 1]])
    # IoU(whole image, a quarter) = 0.25: suppressed below that threshold only
    strict = dataclasses.replace(setup, nms_iou=0.2)
    assert on_device.native_detect(strict, outputs).priors.tolist() == [1, 2]
    assert on_device.native_detect(dataclasses.replace(setup, nms_iou=0.25), outputs).priors.tolist() == [1, 2, 4]
    assert on_device.native_detect(dataclasses.replace(setup, top_k=1), outputs).priors.tolist() == [1]
    # nms_top_k 1: only the best candidate (prior 1) enters NMS
    assert on_device.native_detect(dataclasses.replace(setup, nms_top_k=1), outputs).priors.tolist() == [1]
    assert len(on_device.native_detect(dataclasses.replace(setup, conf_threshold=0.9), outputs)) == 0


def test_hand_case_offsets_move_and_scale_the_box():
    _, setup, outputs = _tiny()
    outputs[2] = np.array([[[1.0, -2.0, 5.0, 0.0]]], np.float32)  # prior 4: cx + 0.1*1, cy - 0.2, w * e^1
    found = on_device.native_detect(setup, outputs)
    box = found.boxes[found.priors.tolist().index(4)]
    w = np.e ** (5.0 * 0.2)
    np.testing.assert_allclose(box, [0.6 - w / 2, 0.3 - 0.5, 0.6 + w / 2, 0.3 + 0.5], rtol=1e-6)


def test_int8_outputs_dequantize_with_their_own_scale_and_zero_point():
    _, setup, outputs = _tiny()
    scales, zeros = [0.25, 0.5, 0.25, 0.125], [-3, 10, 0, 7]
    q = [
        np.clip(np.round(o / s) + z, -128, 127).astype(np.int8) for o, s, z in zip(outputs, scales, zeros, strict=True)
    ]
    _assert_same(on_device.native_detect(setup, q, scales, zeros), on_device.native_detect(setup, outputs))


# -- sizes and statuses -----------------------------------------------------------------------------------


def test_scratch_size_is_the_documented_formula():
    # Face-M4 (3000 priors, 2 classes), nms_top_k 200: A(8*200) + A(16*200) + A(200) = 5000
    assert dn.scratch_bytes(_face_m4_setup()) == 5000
    # K = min(nms_top_k, priors) = 5 priors, 3 classes: A(8*5*2) + A(16*5) + A(5) = 80 + 80 + 8
    setup = DetectorSetup(
        (8, 8), (HeadGeometry(2, 2, 4, 4.0), HeadGeometry(1, 1, 8, 8.0)), 3, False, (0.1, 0.2), 0.05, 0.3, 5000, 10
    )
    assert dn.scratch_bytes(setup) == 168


def _status(name: str) -> int:
    return dn.status_codes()[name]


BAD_SETUPS = [
    ("DETECTION_ERR_BAD_IMAGE", dict(image_size=(0, 16))),
    ("DETECTION_ERR_BAD_IMAGE", dict(image_size=(16, 65537))),
    ("DETECTION_ERR_BAD_HEAD_COUNT", dict(heads=())),
    ("DETECTION_ERR_BAD_CLASSES", dict(num_classes=1)),
    ("DETECTION_ERR_BAD_CLASSES", dict(num_classes=33)),
    ("DETECTION_ERR_BAD_HEAD", dict(heads=(HeadGeometry(0, 2, 8, 8.0), HeadGeometry(1, 1, 16, 16.0)))),
    ("DETECTION_ERR_BAD_HEAD", dict(heads=(HeadGeometry(2, 2, 0, 8.0), HeadGeometry(1, 1, 16, 16.0)))),
    ("DETECTION_ERR_BAD_HEAD", dict(heads=(HeadGeometry(2, 17, 8, 8.0), HeadGeometry(1, 1, 16, 16.0)))),
    ("DETECTION_ERR_BAD_HEAD", dict(heads=(HeadGeometry(2, 2, 8, 0.0), HeadGeometry(1, 1, 16, 16.0)))),
    ("DETECTION_ERR_BAD_HEAD", dict(heads=(HeadGeometry(2, 2, 8, float("nan")), HeadGeometry(1, 1, 16, 16.0)))),
    ("DETECTION_ERR_BAD_HEAD", dict(heads=(HeadGeometry(2, 2, 8, float("inf")), HeadGeometry(1, 1, 16, 16.0)))),
    ("DETECTION_ERR_BAD_HEAD", dict(heads=(HeadGeometry(2, 2, 1 << 22, 8.0), HeadGeometry(1, 1, 16, 16.0)))),
    ("DETECTION_ERR_TOO_MANY_PRIORS", dict(image_size=(65536, 65536), heads=(HeadGeometry(2048, 2049, 1, 8.0),))),
    ("DETECTION_ERR_BAD_VARIANCE", dict(variances=(0.0, 0.2))),
    ("DETECTION_ERR_BAD_VARIANCE", dict(variances=(0.1, float("nan")))),
    ("DETECTION_ERR_BAD_THRESHOLD", dict(conf_threshold=-0.1)),
    ("DETECTION_ERR_BAD_THRESHOLD", dict(nms_iou=1.5)),
    ("DETECTION_ERR_BAD_THRESHOLD", dict(conf_threshold=float("nan"))),
    ("DETECTION_ERR_BAD_TOP_K", dict(nms_top_k=0)),
    ("DETECTION_ERR_BAD_TOP_K", dict(top_k=65537)),
]


@pytest.mark.parametrize("name,change", BAD_SETUPS)
def test_bad_dims_and_params_have_their_own_status(name, change):
    _, setup, outputs = _tiny()
    bad = dataclasses.replace(setup, **change)
    assert dn.validate(bad) == _status(name)
    with pytest.raises(dn.DetectionError) as caught:
        dn.run_detection(bad, outputs)
    assert caught.value.name == name
    dims, params = bad.c_structs()
    assert dn._lib().detection_scratch_bytes(ctypes.byref(dims), ctypes.byref(params)) == 0


def test_maxout_flag_and_too_many_heads():
    _, setup, _ = _tiny()
    dims, params = setup.c_structs()
    dims.maxout_first = 2
    assert dn._lib().detection_validate(ctypes.byref(dims), ctypes.byref(params)) == _status(
        "DETECTION_ERR_BAD_CLASSES"
    )
    dims.maxout_first, dims.num_heads = 1, 9
    assert dn._lib().detection_validate(ctypes.byref(dims), ctypes.byref(params)) == _status(
        "DETECTION_ERR_BAD_HEAD_COUNT"
    )
    with pytest.raises(RNNPoolError, match="at most 8 heads"):
        dataclasses.replace(setup, heads=setup.heads * 5).c_structs()


def _run_raw(setup, table, scratch_size=None, capacity=None, scratch_offset=0):
    dims, params = setup.c_structs()
    needed = dn._lib().detection_scratch_bytes(ctypes.byref(dims), ctypes.byref(params))
    scratch = np.zeros(needed + 16, np.uint8)
    base = scratch.ctypes.data + (-scratch.ctypes.data) % 8 + scratch_offset
    boxes = (dn.CBox * 16)()
    count = ctypes.c_int32(-1)
    status = dn._lib().detection_run(
        ctypes.byref(dims),
        ctypes.byref(params),
        table,
        base,
        needed if scratch_size is None else scratch_size,
        boxes,
        setup.top_k if capacity is None else capacity,
        ctypes.byref(count),
    )
    return status, count.value


def test_bad_tensors_buffers_and_pointers_have_their_own_status():
    _, setup, outputs = _tiny()
    q = [np.zeros(o.shape, np.int8) for o in outputs]
    scales, zeros = [0.1] * 4, [0] * 4

    def table(**change):
        t, keep = dn.tensors_for(setup, q, scales, zeros)
        for field, value in change.items():
            setattr(t[1], field, value)
        return t, keep

    good, keep = table()
    assert _run_raw(setup, good) == (0, 5)  # all scores 0.5, the quarters and the whole image overlap by 0.25
    for name, change in [
        ("DETECTION_ERR_NULL_POINTER", dict(data=None)),
        ("DETECTION_ERR_BAD_TENSOR_TYPE", dict(type=5)),
        ("DETECTION_ERR_TENSOR_SIZE", dict(elements=15)),
        ("DETECTION_ERR_BAD_SCALE", dict(scale=0.0)),
        ("DETECTION_ERR_BAD_SCALE", dict(scale=float("inf"))),
        ("DETECTION_ERR_BAD_ZERO_POINT", dict(zero_point=128)),
    ]:
        bad, keep = table(**change)
        assert _run_raw(setup, bad) == (_status(name), 0), name
    assert _run_raw(setup, good, scratch_size=dn.scratch_bytes(setup) - 1)[0] == _status(
        "DETECTION_ERR_BUFFER_TOO_SMALL"
    )
    assert _run_raw(setup, good, capacity=setup.top_k - 1)[0] == _status("DETECTION_ERR_BUFFER_TOO_SMALL")
    assert _run_raw(setup, good, scratch_offset=2)[0] == _status("DETECTION_ERR_MISALIGNED")
    # float32 data must be 4-byte aligned
    floats = np.zeros(65, np.float32).view(np.uint8)[1 : 1 + 64]
    bad, keep = table(type=1, data=floats.ctypes.data)
    assert _run_raw(setup, bad)[0] == _status("DETECTION_ERR_MISALIGNED")
    dims, params = setup.c_structs()
    count = ctypes.c_int32(5)
    assert dn._lib().detection_run(None, ctypes.byref(params), good, None, 0, None, 0, ctypes.byref(count)) == _status(
        "DETECTION_ERR_NULL_POINTER"
    )
    assert count.value == 0
    assert dn._lib().detection_run(ctypes.byref(dims), ctypes.byref(params), good, None, 0, None, 0, None) == _status(
        "DETECTION_ERR_NULL_POINTER"
    )
    assert dn._lib().detection_prior(ctypes.byref(dims), 5, (ctypes.c_float * 4)()) == _status("DETECTION_ERR_BAD_HEAD")


def test_status_texts_cover_every_code():
    codes = dn.status_codes()
    assert codes["DETECTION_OK"] == 0 and len(codes) == 16
    assert all(dn._lib().detection_status_str(c).decode() != "unknown status" for c in codes.values())
    assert dn.status_name(99) == "unknown status 99"


def test_setup_refuses_anchors_that_are_not_float32_values():
    layout = HeadLayout(((2, 2),), num_classes=2, maxout_first=False)
    priors = make_priors((16, 16), ((2, 2),), PriorConfig(anchor_sizes=(8.1,)))
    with pytest.raises(RNNPoolError, match="float32 values"):
        on_device.setup_from(layout, priors)


# -- a converted Face-M4 on the synthetic faces ---------------------------------------------------------------


@pytest.mark.slow
def test_converted_face_m4_outputs_on_synthetic_faces_give_the_reference_boxes():
    """The int8 head outputs of a converted Face-M4 (face_models: 96x128, rescaled random heads)
    on synthetic faces: C and NumPy agree on every image, with the device's and the host's
    configurations."""
    import face_models

    from rnnpool_tflm.runtime import host

    tflite = face_models.face_m4_tflite()
    model = host.HostModel(tflite)
    images = face_models.synthetic_images()[0]
    x = host.quantize_inputs(model.input_details[0], images.astype(np.float32) / 255.0)
    outputs = model.run([x]).outputs
    scales = [d["scale"] for d in model.output_details]
    zeros = [d["zero_point"] for d in model.output_details]
    for config in (on_device.DEVICE_CONFIG, PostprocessConfig()):
        setup = on_device.tflite_setup(tflite, config)
        assert setup.image_size == (96, 128) and [h.stride for h in setup.heads] == [8, 8, 16, 16]
        for i in range(len(images)):
            one = [o[i] for o in outputs]
            native = on_device.native_detect(setup, one, scales, zeros)
            assert len(native) > 1
            _assert_same(native, on_device.reference_detect(setup, one, scales, zeros))
