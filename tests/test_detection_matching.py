"""S3FD matching and the multibox loss on hand-worked cases."""

import math

import numpy as np
import pytest
import tensorflow as tf

from rnnpool_tflm.detection.loss import hard_negatives, multibox_loss, multibox_sums
from rnnpool_tflm.detection.matching import match_priors

V = (0.1, 0.2)
# Four priors tiling the unit square in quarters (centre-size form).
QUARTERS = np.array(
    [[0.25, 0.25, 0.5, 0.5], [0.75, 0.25, 0.5, 0.5], [0.25, 0.75, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]], np.float32
)


def _match(faces, valid=None, priors=QUARTERS):
    faces = np.asarray(faces, np.float32).reshape(-1, 4)
    valid = np.ones(len(faces), bool) if valid is None else np.asarray(valid)
    offsets, labels = match_priors(faces, valid, priors, V)
    return offsets.numpy(), labels.numpy()


def test_both_priors_above_threshold_are_positive_with_hand_offsets():
    # Face (0.1, 0, 0.9, 0.5): IoU 0.2 / 0.45 = 0.444 with priors 0 and 1, 0 with the others.
    offsets, labels = _match([[0.1, 0.0, 0.9, 0.5]])
    assert labels.tolist() == [1, 1, 0, 0]
    # centre (0.5, 0.25) size (0.8, 0.5) against prior 0: centre (0.25, 0.25) size (0.5, 0.5)
    np.testing.assert_allclose(offsets[0], [0.25 / 0.05, 0.0, math.log(1.6) / 0.2, 0.0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(offsets[1], [-0.25 / 0.05, 0.0, math.log(1.6) / 0.2, 0.0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(offsets[2:], 0.0)


@pytest.mark.parametrize("x2, second_positive", [(0.84, False), (0.86, True)])
def test_threshold_0_35_decides_a_prior_that_is_not_the_best(x2, second_positive):
    # Face (0, 0, x2, 0.5): IoU 0.5 / x2 with prior 0 (its best), x2 - 0.5 with prior 1.
    _, labels = _match([[0.0, 0.0, x2, 0.5]])
    assert labels.tolist() == [1, int(second_positive), 0, 0]


def test_each_face_keeps_its_best_prior_below_the_threshold():
    # Face (0.55, 0.55, 0.7, 0.7): IoU 0.0225 / 0.25 = 0.09 with prior 3, its best.
    offsets, labels = _match([[0.55, 0.55, 0.7, 0.7]])
    assert labels.tolist() == [0, 0, 0, 1]
    np.testing.assert_allclose(
        offsets[3], [(0.625 - 0.75) / 0.05, (0.625 - 0.75) / 0.05, math.log(0.3) / 0.2, math.log(0.3) / 0.2], rtol=1e-5
    )


def test_a_shared_best_prior_goes_to_the_later_face():
    big = [0.5, 0.5, 1.0, 1.0]  # equals prior 3
    small = [0.55, 0.55, 0.7, 0.7]  # best prior also 3
    offsets, labels = _match([big, small])
    assert labels.tolist() == [0, 0, 0, 1]
    np.testing.assert_allclose(offsets[3], _match([small])[0][3], rtol=1e-6)
    offsets, _ = _match([small, big])
    np.testing.assert_allclose(offsets[3], 0.0, atol=1e-6)


def test_padding_degenerate_boxes_and_empty_images_match_nothing():
    offsets, labels = _match([[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5]], valid=[True, False])
    assert labels.tolist() == [1, 0, 0, 0]
    np.testing.assert_allclose(offsets[0], 0.0, atol=1e-6)
    offsets, labels = _match([[0.5, 0.5, 0.5, 0.9]])  # zero width
    assert labels.tolist() == [0, 0, 0, 0] and np.all(offsets == 0)
    offsets, labels = _match(np.zeros((0, 4)))
    assert labels.tolist() == [0, 0, 0, 0] and np.all(offsets == 0) and offsets.shape == (4, 4)


def test_matching_runs_inside_tf_data():
    def element(i):
        faces = tf.constant([[0.1, 0.0, 0.9, 0.5], [0.0, 0.0, 0.0, 0.0]])
        return match_priors(faces, tf.range(2) < tf.cast(i + 1, tf.int32), QUARTERS, V)

    labels = [lab.numpy().tolist() for _, lab in tf.data.Dataset.range(2).map(element)]
    assert labels == [[1, 1, 0, 0], [1, 1, 0, 0]]


# -- loss ------------------------------------------------------------------------------------------


def _softplus(a):
    return math.log1p(math.exp(a))


def test_multibox_loss_by_hand():
    # One image, six priors: prior 0 positive; negatives' face logits a give background CE log(1 + e^a).
    labels = tf.constant([[1, 0, 0, 0, 0, 0]])
    a = [0.0, 2.0, -1.0, 3.0, 0.0, 1.0]
    conf = tf.constant([[[0.0, ai] for ai in a]], tf.float32)
    loc_true = tf.constant(np.random.default_rng(0).normal(size=(1, 6, 4)), tf.float32)
    delta = np.zeros((1, 6, 4), np.float32)
    delta[0, 0] = [0.5, 2.0, 0.0, -0.2]  # smooth L1: 0.125 + 1.5 + 0 + 0.02
    delta[0, 1:] = 5.0  # negatives' offsets never count
    loss, loc, cf = (float(v) for v in multibox_loss(loc_true, labels, loc_true + delta, conf))
    assert loc == pytest.approx(1.645, rel=1e-5)
    # positive: log 2; 3 mined negatives: the largest a (3, 2, 1)
    expected_conf = math.log(2) + _softplus(3.0) + _softplus(2.0) + _softplus(1.0)
    assert cf == pytest.approx(expected_conf, rel=1e-5)
    assert loss == pytest.approx(1.645 + expected_conf, rel=1e-5)


def test_mining_count_is_three_per_positive_per_image_capped_by_the_negatives():
    rng = np.random.default_rng(2)
    ce = tf.constant(rng.uniform(0.1, 5.0, (3, 20)), tf.float32)
    positive = np.zeros((3, 20), bool)
    positive[0, [3, 7]] = True  # 2 positives -> 6 negatives
    positive[1, :18] = True  # 18 positives -> 54 wanted, 2 available
    # image 2: no positives -> no negatives
    neg = hard_negatives(ce, tf.constant(positive)).numpy()
    assert neg.sum(axis=1).tolist() == [6, 2, 0]
    assert not np.any(neg & positive)
    top6 = np.argsort(-np.where(positive[0], -np.inf, ce.numpy()[0]), kind="stable")[:6]
    assert sorted(np.flatnonzero(neg[0])) == sorted(top6)


def test_mining_ties_take_the_lowest_indices():
    neg = hard_negatives(tf.ones((1, 8)), tf.constant([[False, True] + [False] * 6])).numpy()
    assert np.flatnonzero(neg[0]).tolist() == [0, 2, 3]


def test_loss_is_normalised_by_the_batch_positives():
    labels = tf.constant([[1, 0, 0, 0], [1, 1, 0, 0]])
    conf = tf.zeros((2, 4, 2))
    loc = tf.zeros((2, 4, 4))
    loc_sum, conf_sum, n = (float(v) for v in multibox_sums(loc, labels, loc + 1.0, conf))
    assert n == 3
    assert loc_sum == pytest.approx(3 * 4 * 0.5)
    # 3 positives and min(3 x positives, negatives) = 3 + 2 negatives, each CE log 2
    assert conf_sum == pytest.approx(8 * math.log(2), rel=1e-6)
    loss, _, _ = multibox_loss(loc, labels, loc + 1.0, conf)
    assert float(loss) == pytest.approx((6 + 8 * math.log(2)) / 3, rel=1e-6)
    zero, _, _ = multibox_loss(loc, tf.zeros((2, 4), tf.int32), loc + 1.0, conf)
    assert float(zero) == 0.0
