"""Host post-processing (decode, threshold, NMS, top-k), int8 outputs, and the simple AP."""

import numpy as np
import pytest

from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.detection.average_precision import average_precision
from rnnpool_tflm.detection.heads import HeadLayout
from rnnpool_tflm.detection.postprocess import PostprocessConfig, detect, detect_int8, nms, softmax
from rnnpool_tflm.detection.priors import PriorConfig, make_priors


def _nms(boxes, scores, thr=0.3, top_k=None, indices=None):
    boxes, scores = np.asarray(boxes, np.float32), np.asarray(scores, np.float32)
    indices = np.arange(len(scores)) if indices is None else np.asarray(indices)
    return nms(boxes, scores, indices, thr, top_k).tolist()


def test_nms_suppresses_overlaps_above_the_threshold_only():
    a, b, c = [0, 0, 1, 1], [0, 0, 1, 0.8], [2, 2, 3, 3]  # IoU(a, b) = 0.8
    assert _nms([b, a, c], [0.8, 0.9, 0.7]) == [1, 2]
    short = [0, 0, 1, 0.25]  # IoU(a, short) = 0.25 exactly
    assert _nms([a, short], [0.9, 0.8], thr=0.25) == [0, 1]  # not greater: kept
    assert _nms([a, short], [0.9, 0.8], thr=0.2) == [0]


def test_nms_is_greedy_a_suppressed_box_suppresses_nothing():
    # IoU(a, b) = IoU(b, c) = 1/3 > 0.3, IoU(a, c) = 0
    a, b, c = [0, 0, 2, 1], [1, 0, 3, 1], [2, 0, 4, 1]
    assert _nms([a, b, c], [0.9, 0.8, 0.7]) == [0, 2]


def test_nms_orders_ties_by_index_and_cuts_to_top_k():
    far = [[0, 0, 1, 1], [2, 0, 3, 1], [4, 0, 5, 1], [6, 0, 7, 1]]
    assert _nms(far, [0.5, 0.7, 0.5, 0.5], indices=[9, 3, 4, 1]) == [1, 3, 2, 0]
    assert _nms(far, [0.5, 0.7, 0.5, 0.5], top_k=2) == [1, 0]
    # equal scores, overlapping: the lower index wins
    assert _nms([[0, 0, 1, 1], [0, 0, 1, 1]], [0.5, 0.5], indices=[7, 2]) == [1]


def _tiny_detector():
    # 16x16 image, head 0: 2x2 cells (stride 8, anchor 8, max-out: 4 score channels), head 1: 1x1 (stride 16, anchor 16)
    layout = HeadLayout(((2, 2), (1, 1)), num_classes=2, maxout_first=True)
    priors = make_priors((16, 16), layout.feature_maps, PriorConfig(anchor_sizes=(8.0, 16.0)))
    loc0 = np.zeros((1, 2, 2, 4), np.float32)
    conf0 = np.full((1, 2, 2, 4), -4.0, np.float32)
    conf0[..., :3] = [[-8.0, 4.0, -8.0]]  # background (max of 3) = 4
    loc1 = np.zeros((1, 1, 1, 4), np.float32)
    conf1 = np.array([[[[0.0, 1.5]]]], np.float32)  # prior 4 (whole image): face
    conf0[0, 0, 1, 3] = 6.0  # prior 1 (top right quarter): face
    conf0[0, 1, 0, 3] = 6.0  # prior 2 (bottom left): face, tie with prior 1
    return layout, priors, [loc0, conf0, loc1, conf1]


def test_detect_decodes_thresholds_and_orders_by_score_then_prior():
    layout, priors, outputs = _tiny_detector()
    (d,) = detect(outputs, layout, priors)
    assert d.priors.tolist() == [1, 2, 4]
    high = softmax(np.array([4.0, 6.0]))[1]
    np.testing.assert_allclose(d.scores, [high, high, softmax(np.array([0.0, 1.5]))[1]], rtol=1e-6)
    np.testing.assert_allclose(d.boxes, [[0.5, 0, 1, 0.5], [0, 0.5, 0.5, 1], [0, 0, 1, 1]], atol=1e-7)
    np.testing.assert_allclose(d.in_pixels((16, 16))[0], [8, 0, 16, 8], atol=1e-5)
    assert d.labels.tolist() == [1, 1, 1]
    # the whole-image box overlaps each quarter by 0.25: NMS at 0.2 drops it
    (d,) = detect(outputs, layout, priors, PostprocessConfig(nms_iou=0.2))
    assert d.priors.tolist() == [1, 2]
    (d,) = detect(outputs, layout, priors, PostprocessConfig(conf_threshold=0.85))
    assert d.priors.tolist() == [1, 2]
    (d,) = detect(outputs, layout, priors, PostprocessConfig(top_k=1))
    assert d.priors.tolist() == [1]


def test_detect_from_int8_outputs_equals_float_on_the_grid():
    layout, priors, outputs = _tiny_detector()
    scale, zero = 0.25, -3
    quantized = [np.clip(np.round(o / scale) + zero, -128, 127).astype(np.int8) for o in outputs]
    (from_int8,) = detect_int8(quantized, [scale] * 4, [zero] * 4, layout, priors)
    (from_float,) = detect(outputs, layout, priors)
    np.testing.assert_array_equal(from_int8.priors, from_float.priors)
    np.testing.assert_array_equal(from_int8.boxes, from_float.boxes)
    np.testing.assert_array_equal(from_int8.scores, from_float.scores)
    with pytest.raises(RNNPoolError, match="a scale and a zero point per output"):
        detect_int8(quantized, [scale], [zero], layout, priors)


def test_detect_rejects_outputs_that_do_not_fit_the_priors():
    layout, priors, outputs = _tiny_detector()
    other = make_priors((32, 32), ((4, 4), (2, 2)), PriorConfig(anchor_sizes=(8.0, 16.0)))
    with pytest.raises(RNNPoolError, match="cells but there are"):
        detect(outputs, layout, other)


# -- simple AP ------------------------------------------------------------------------------------

FACE1, FACE2 = [0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.8, 0.8]


def test_ap_perfect_and_all_misses():
    assert average_precision([[FACE1, FACE2]], [[0.9, 0.8]], [[FACE1, FACE2]]) == pytest.approx(1.0)
    assert average_precision([[[0.0, 0.6, 0.1, 0.7]]], [[0.9]], [[FACE1]]) == 0.0
    assert average_precision([np.zeros((0, 4))], [np.zeros(0)], [[FACE1]]) == 0.0


def test_ap_duplicates_are_false_positives_and_the_envelope_is_used():
    # ranked: TP (face 1), duplicate of face 1 (FP), TP (face 2) -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    ap = average_precision([[FACE1, FACE1, FACE2]], [[0.9, 0.8, 0.7]], [[FACE1, FACE2]])
    assert ap == pytest.approx(0.5 * 1.0 + 0.5 * (2 / 3))
    # the same detections spread over two images rank by score across images
    ap2 = average_precision([[FACE1, FACE1], [FACE2]], [[0.9, 0.8], [0.7]], [[FACE1], [FACE2]])
    assert ap2 == pytest.approx(ap)


def test_ap_iou_threshold_and_errors():
    shifted = [0.1, 0.15, 0.3, 0.35]  # IoU 0.03 / 0.05 = 0.6 with FACE1
    assert average_precision([[shifted]], [[0.5]], [[FACE1]], iou_threshold=0.5) == pytest.approx(1.0)
    assert average_precision([[shifted]], [[0.5]], [[FACE1]], iou_threshold=0.7) == 0.0
    with pytest.raises(RNNPoolError, match="at least one ground-truth face"):
        average_precision([[FACE1]], [[0.5]], [np.zeros((0, 4))])
    with pytest.raises(RNNPoolError, match="same images"):
        average_precision([[FACE1]], [[0.5]], [[FACE1], [FACE2]])
