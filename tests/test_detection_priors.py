"""S3FD priors, box coding and head flattening against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from rnnpool_tflm.analysis import zoo
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.detection import boxes as B
from rnnpool_tflm.detection.detectors import build_face_detector, detector_priors, face_detector_spec
from rnnpool_tflm.detection.heads import HeadLayout, flatten_heads, maxout_background
from rnnpool_tflm.detection.priors import FACE_M4_PRIORS, FACE_QUANT_PRIORS, PriorConfig, head_stride, make_priors

# -- priors ---------------------------------------------------------------------------------------


def test_face_m4_priors_at_qvga_by_hand():
    p = make_priors((240, 320), [(30, 40), (30, 40), (15, 20), (15, 20)], FACE_M4_PRIORS)
    assert p.strides == (8, 8, 16, 16)
    assert p.count == 30 * 40 * 2 + 15 * 20 * 2 == 3000
    assert p.variances == (0.1, 0.2)
    # head 0, cell (0, 0): centre (4, 4) px, anchor 8 px
    np.testing.assert_allclose(p.boxes[0], [4 / 320, 4 / 240, 8 / 320, 8 / 240], rtol=1e-6)
    # head 1, cell (0, 1): centre (12, 4) px, anchor 16 px
    np.testing.assert_allclose(p.boxes[1200 + 1], [12 / 320, 4 / 240, 16 / 320, 16 / 240], rtol=1e-6)
    # head 2, cell (2, 5): centre (5.5 * 16, 2.5 * 16) = (88, 40) px, anchor 32 px
    np.testing.assert_allclose(p.boxes[2400 + 2 * 20 + 5], [88 / 320, 40 / 240, 0.1, 32 / 240], rtol=1e-6)
    # the last prior: head 3, cell (14, 19): centre (312, 232) px, anchor 48 px
    np.testing.assert_allclose(p.boxes[-1], [312 / 320, 232 / 240, 0.15, 0.2], rtol=1e-6)
    assert [s.start for s in p.head_slices()] == [0, 1200, 2400, 2700]
    assert p.boxes.dtype == np.float32


def test_face_m4_model_gives_the_qvga_priors_and_other_sizes_work():
    model = build_face_detector("face_m4")
    layout, priors = detector_priors(model)
    assert layout.feature_maps == ((30, 40), (30, 40), (15, 20), (15, 20))
    assert layout.maxout_first and layout.num_classes == 2
    assert priors.strides == (8, 8, 16, 16) and priors.count == 3000
    small = build_face_detector("face_m4", (120, 160, 1))
    _, p = detector_priors(small)
    assert p.feature_maps == ((15, 20), (15, 20), (8, 10), (8, 10)) and p.strides == (8, 8, 16, 16)
    # ceil(15 / 2) = 8 cells of stride 16: the last centre lies past the image edge (no clipping)
    np.testing.assert_allclose(p.boxes[-1], [9.5 * 16 / 160, 7.5 * 16 / 120, 48 / 160, 48 / 120], rtol=1e-6)


def test_face_quant_heads_have_strides_4_to_128():
    model = build_face_detector("face_quant")
    layout, priors = detector_priors(model)
    assert layout.num_heads == 6 and layout.maxout_first
    assert priors.strides == (4, 8, 16, 32, 64, 128)
    assert priors.config == FACE_QUANT_PRIORS
    assert priors.feature_maps[0] == (120, 160) and priors.feature_maps[-1] == (4, 5)
    # head 5, cell (0, 0): centre (64, 64) px, anchor 512 px
    np.testing.assert_allclose(
        priors.boxes[priors.head_slices()[5].start], [64 / 640, 64 / 480, 512 / 640, 512 / 480], rtol=1e-6
    )


def test_prior_configuration_errors():
    with pytest.raises(RNNPoolError, match="different row and column strides"):
        head_stride((240, 320), (30, 20))
    with pytest.raises(RNNPoolError, match="2 heads but the prior configuration has 4"):
        make_priors((240, 320), [(30, 40), (15, 20)], FACE_M4_PRIORS)
    with pytest.raises(RNNPoolError, match="anchor sizes"):
        PriorConfig(anchor_sizes=(8.0, -1.0))
    with pytest.raises(RNNPoolError, match="unknown face detector"):
        face_detector_spec("face_m5")
    assert face_detector_spec("zoo:face-m4").priors == FACE_M4_PRIORS


# -- box coding ------------------------------------------------------------------------------------


def test_encode_by_hand():
    prior = np.array([[0.5, 0.5, 0.1, 0.1]], np.float32)
    face = np.array([[0.45, 0.5, 0.65, 0.7]], np.float32)  # centre (0.55, 0.6), size (0.2, 0.2)
    t = B.encode(face, prior, (0.1, 0.2))
    np.testing.assert_allclose(t[0], [0.05 / 0.01, 0.1 / 0.01, np.log(2) / 0.2, np.log(2) / 0.2], rtol=1e-5)
    np.testing.assert_allclose(
        B.decode(np.zeros((1, 4), np.float32), prior, (0.1, 0.2))[0], [0.45, 0.45, 0.55, 0.55], rtol=1e-6
    )


def test_encode_decode_round_trip_numpy_and_tensorflow():
    rng = np.random.default_rng(0)
    lo = rng.uniform(0.0, 0.7, (200, 2))
    faces = np.concatenate([lo, lo + rng.uniform(0.01, 0.3, (200, 2))], axis=1).astype(np.float32)
    priors = np.concatenate([rng.uniform(0, 1, (200, 2)), rng.uniform(0.02, 0.3, (200, 2))], 1).astype(np.float32)
    offsets = B.encode(faces, priors, (0.1, 0.2))
    np.testing.assert_allclose(B.decode(offsets, priors, (0.1, 0.2)), faces, rtol=1e-5, atol=1e-6)
    tf_offsets = B.encode(tf.constant(faces), tf.constant(priors), (0.1, 0.2), tnp)
    np.testing.assert_allclose(np.asarray(tf_offsets), offsets, rtol=1e-5, atol=1e-5)
    assert tf_offsets.dtype == tf.float32


def test_iou_by_hand():
    a = np.array([[0.0, 0.0, 0.5, 0.5]], np.float32)
    b = np.array([[0.0, 0.0, 0.5, 0.5], [0.25, 0.0, 0.75, 0.5], [0.5, 0.5, 1.0, 1.0], [0.2, 0.2, 0.2, 0.4]], np.float32)
    np.testing.assert_allclose(B.iou_matrix(a, b)[0], [1.0, 0.125 / 0.375, 0.0, 0.0], rtol=1e-6)


# -- heads -----------------------------------------------------------------------------------------


def test_flatten_follows_the_prior_order_and_maxout_matches_the_zoo():
    layout = HeadLayout(((2, 3), (1, 2)), num_classes=2, maxout_first=True)
    rng = np.random.default_rng(1)
    loc0 = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    loc1 = 100 + np.arange(1 * 2 * 4, dtype=np.float32).reshape(1, 1, 2, 4)
    conf0 = rng.normal(size=(1, 2, 3, 4)).astype(np.float32)
    conf1 = rng.normal(size=(1, 1, 2, 2)).astype(np.float32)
    loc, conf = flatten_heads([loc0, conf0, loc1, conf1], layout)
    assert loc.shape == (1, 8, 4) and conf.shape == (1, 8, 2)
    np.testing.assert_array_equal(loc[0, 4], [16, 17, 18, 19])  # head 0, row 1, col 1
    np.testing.assert_array_equal(loc[0, 7], [104, 105, 106, 107])  # head 1, row 0, col 1
    np.testing.assert_array_equal(conf[0, 0], [conf0[0, 0, 0, :3].max(), conf0[0, 0, 0, 3]])
    np.testing.assert_array_equal(maxout_background(conf0), zoo.maxout_background(conf0).numpy())
    tf_loc, tf_conf = flatten_heads([tf.constant(v) for v in (loc0, conf0, loc1, conf1)], layout, tnp)
    np.testing.assert_array_equal(np.asarray(tf_conf), conf)
    np.testing.assert_array_equal(np.asarray(tf_loc), loc)


def test_head_layout_from_shapes_and_errors():
    layout = HeadLayout.from_output_shapes([(30, 40, 4), (30, 40, 4), (15, 20, 4), (15, 20, 2)])
    assert layout == HeadLayout(((30, 40), (15, 20)), 2, True)
    assert layout.num_priors == 1500 and layout.conf_channels(0) == 4 and layout.conf_channels(1) == 2
    plain = HeadLayout.from_output_shapes([(30, 40, 4), (30, 40, 2), (15, 20, 4), (15, 20, 2)])
    assert not plain.maxout_first
    with pytest.raises(RNNPoolError, match="pairs"):
        HeadLayout.from_output_shapes([(30, 40, 4)])
    with pytest.raises(RNNPoolError, match="4 channels"):
        HeadLayout.from_output_shapes([(30, 40, 5), (30, 40, 4), (15, 20, 4), (15, 20, 2)])
    with pytest.raises(RNNPoolError, match="conf0 has 3 channels"):
        HeadLayout.from_output_shapes([(30, 40, 4), (30, 40, 3), (15, 20, 4), (15, 20, 2)])
    with pytest.raises(RNNPoolError, match="different feature maps"):
        HeadLayout.from_output_shapes([(30, 40, 4), (30, 41, 4), (15, 20, 4), (15, 20, 2)])
