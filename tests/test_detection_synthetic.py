"""The built-in synthetic faces: valid boxes, determinism, variety, and the tf.data source."""

import numpy as np
import pytest
import tensorflow as tf

from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.detection.dataset import detection_batches, flip_horizontally, synthetic_source
from rnnpool_tflm.detection.priors import FACE_M4_PRIORS, make_priors
from rnnpool_tflm.detection.synthetic import SyntheticFaceConfig, synthetic_face_image, synthetic_faces


@pytest.fixture(scope="module")
def grey_set():
    return synthetic_faces(120, (240, 320, 1), seed=3)


def test_boxes_are_inside_the_image_and_have_area(grey_set):
    images, boxes = grey_set
    assert images.shape == (120, 240, 320, 1) and images.dtype == np.uint8
    for b in boxes:
        assert b.dtype == np.float32 and b.ndim == 2 and b.shape[1] == 4
        assert np.all(b >= 0.0) and np.all(b <= 1.0)
        assert np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])


def test_faces_of_many_sizes_counts_and_some_empty_images(grey_set):
    images, boxes = grey_set
    counts = np.array([len(b) for b in boxes])
    heights = np.concatenate([b[:, 3] - b[:, 1] for b in boxes])
    assert counts.min() == 0 and counts.max() == SyntheticFaceConfig().max_faces
    assert len(set(counts.tolist())) == SyntheticFaceConfig().max_faces + 1
    # default heights 0.07 .. 0.30 of the image (the rotated box a bit taller or wider)
    assert heights.min() < 0.09 and heights.max() > 0.25
    assert np.percentile(heights, 75) / np.percentile(heights, 25) > 1.5
    assert images.std() > 20  # not flat images


def test_the_same_seed_and_index_give_the_same_image():
    a_img, a_box = synthetic_face_image(7, 11)
    b_img, b_box = synthetic_face_image(7, 11)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_box, b_box)
    images, boxes = synthetic_faces(12, seed=7)
    np.testing.assert_array_equal(images[11], a_img)
    np.testing.assert_array_equal(boxes[11], a_box)
    c_img, _ = synthetic_face_image(8, 11)
    assert np.abs(c_img.astype(int) - a_img.astype(int)).mean() > 10


def test_faces_are_drawn_inside_their_boxes():
    # A face changes the image inside its box and nowhere else: compare with the same image
    # drawn without faces (same background and distractors, since faces are drawn after them).
    config = SyntheticFaceConfig(occlusion=0.0, noise=0.0, empty_fraction=0.0)
    no_faces = SyntheticFaceConfig(occlusion=0.0, noise=0.0, empty_fraction=0.0, max_faces=0)
    for index in range(5):
        with_faces, boxes = synthetic_face_image(1, index, (120, 160, 1), config)
        plain, none = synthetic_face_image(1, index, (120, 160, 1), no_faces)
        assert len(none) == 0 and len(boxes) > 0
        changed = np.abs(with_faces.astype(int) - plain.astype(int))[..., 0] > 2
        inside = np.zeros_like(changed)
        for x1, y1, x2, y2 in boxes * [160, 120, 160, 120]:
            inside[int(y1) : int(np.ceil(y2)) + 1, int(x1) : int(np.ceil(x2)) + 1] = True
        assert changed.any() and not (changed & ~inside).any()


def test_colour_images_and_configuration_errors():
    image, _ = synthetic_face_image(0, 1, (64, 96, 3))
    assert image.shape == (64, 96, 3)
    assert np.abs(image[..., 0].astype(int) - image[..., 2].astype(int)).mean() > 2
    with pytest.raises(RNNPoolError, match="1 or 3 channels"):
        synthetic_face_image(0, 0, (240, 320, 2))
    with pytest.raises(RNNPoolError, match="min_face"):
        SyntheticFaceConfig(min_face=0.5, max_face=0.2)
    with pytest.raises(RNNPoolError, match="count"):
        synthetic_faces(0)


# -- the tf.data side ------------------------------------------------------------------------------


def test_synthetic_source_pads_boxes_and_batches_encode_targets():
    shape = (48, 64, 1)
    source = synthetic_source(6, shape, seed=5)
    image, padded, count = next(iter(source.skip(2)))
    ref_image, ref_boxes = synthetic_face_image(5, 2, shape)
    np.testing.assert_array_equal(image.numpy(), ref_image)
    assert int(count) == len(ref_boxes) and padded.shape == (SyntheticFaceConfig().max_faces, 4)
    np.testing.assert_array_equal(padded.numpy()[: len(ref_boxes)], ref_boxes)

    priors = make_priors((48, 64), [(6, 8), (6, 8), (3, 4), (3, 4)], FACE_M4_PRIORS)
    images, targets = next(iter(detection_batches(source, priors, 3, channels=1)))
    assert images.shape == (3, 48, 64, 1) and images.dtype == tf.float32 and float(images.numpy().max()) <= 1.0
    assert targets["loc"].shape == (3, priors.count, 4) and targets["labels"].shape == (3, priors.count)


def test_detection_batches_accepts_dicts_and_rejects_wrong_image_shapes():
    priors = make_priors((48, 64), [(6, 8), (6, 8), (3, 4), (3, 4)], FACE_M4_PRIORS)
    faces = np.array([[0.2, 0.2, 0.5, 0.6]], np.float32)
    source = tf.data.Dataset.from_tensors({"image": np.zeros((48, 64, 1), np.float32), "boxes": faces})
    _, targets = next(iter(detection_batches(source, priors, 1, channels=1)))
    assert int(targets["labels"].numpy().sum()) >= 1
    wrong = tf.data.Dataset.from_tensors((np.zeros((48, 64, 3), np.float32), faces))
    with pytest.raises(RNNPoolError, match=r"\(48, 64, 3\) but the detector takes \(48, 64, 1\)"):
        detection_batches(wrong, priors, 1, channels=1)
    with pytest.raises(RNNPoolError, match="batch size"):
        detection_batches(source, priors, 0, channels=1)


def test_flip_mirrors_image_and_boxes():
    image = tf.reshape(tf.range(6, dtype=tf.float32), (1, 6, 1))
    flipped, boxes = flip_horizontally(image, tf.constant([[0.1, 0.2, 0.4, 0.9]]))
    assert flipped.numpy().ravel().tolist() == [5, 4, 3, 2, 1, 0]
    np.testing.assert_allclose(boxes.numpy(), [[0.6, 0.2, 0.9, 0.9]], rtol=1e-6)
