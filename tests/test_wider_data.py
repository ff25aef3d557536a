"""WIDER FACE reader and tf.data pipeline on a tiny fake WIDER tree: the skip/clip rules and their
report, resize and channel conversion, and S3FD augmentation whose boxes stay on the faces."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.detection.face_augment import (
    AugmentConfig,
    crop_to_window,
    project_boxes,
    sample_anchor_window,
    sample_crop_window,
)
from rnnpool_tflm.detection.wider_annotations import parse_annotations
from rnnpool_tflm.detection.wider_data import WiderReport, clean_faces, pad_and_batch, read_wider, wider_dataset

INPUT = (48, 64)  # small model input keeps the tests fast; the code has no size assumption


def _faces_image(width, height, boxes_xywh, mode="RGB"):
    """Black image with each face a white rectangle: a box that misses its face shows up as dark."""
    pixels = np.zeros((height, width, 3), np.uint8)
    for x, y, w, h in boxes_xywh:
        pixels[max(y, 0) : max(y + h, 0), max(x, 0) : max(x + w, 0)] = 255
    return Image.fromarray(pixels).convert(mode)


def _save(image, path, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


GT = """\
0--Parade/0_big.jpg
2
100 50 60 60 0 0 0 0 0 0
300 200 40 40 0 0 0 0 0 0
0--Parade/0_gray.jpg
2
150 20 80 40 0 0 0 0 0 0
20 30 40 40 0 0 0 0 0 0
1--Handshaking/1_png.jpg
1
10 10 30 30 0 0 0 0 0 0
1--Handshaking/1_empty.jpg
0
0 0 0 0 0 0 0 0 0 0
1--Handshaking/1_missing.jpg
1
1 1 5 5 0 0 0 0 0 0
1--Handshaking/1_text.jpg
1
1 1 5 5 0 0 0 0 0 0
1--Handshaking/1_unusable.jpg
3
10 10 20 20 0 0 0 1 0 0
10 10 0 20 0 0 0 0 0 0
500 500 9 9 0 0 0 0 0 0
1--Handshaking/1_truncated.jpg
1
10 10 20 20 0 0 0 0 0 0
1--Handshaking/1_bad_lines.jpg
3
10 10 20 20 0 0 0 0 0 0
10 10 twenty 20 0 0 0 0 0 0
"""


@pytest.fixture(scope="module")
def wider_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wider")
    images = root / "WIDER_train" / "images"
    _save(_faces_image(400, 300, [(100, 50, 60, 60), (300, 200, 40, 40)]), images / "0--Parade/0_big.jpg", "JPEG")
    # greyscale, 200x100, the first face crossing the right border (clipped to x2 = 200)
    _save(
        _faces_image(200, 100, [(150, 20, 80, 40), (20, 30, 40, 40)], mode="L"), images / "0--Parade/0_gray.jpg", "JPEG"
    )
    _save(_faces_image(80, 60, [(10, 10, 30, 30)], mode="RGBA"), images / "1--Handshaking/1_png.jpg", "PNG")
    _save(_faces_image(50, 40, []), images / "1--Handshaking/1_empty.jpg", "JPEG")
    (images / "1--Handshaking/1_text.jpg").write_text("not an image")
    _save(_faces_image(60, 60, []), images / "1--Handshaking/1_unusable.jpg", "JPEG")
    png = _save(_faces_image(70, 50, [(10, 10, 20, 20)]), images / "1--Handshaking/1_truncated.jpg", "PNG")
    (images / "1--Handshaking/1_truncated.jpg").write_bytes(png[: len(png) // 3])  # header intact, data cut
    _save(_faces_image(60, 60, [(10, 10, 20, 20)]), images / "1--Handshaking/1_bad_lines.jpg", "JPEG")
    (root / "wider_face_split").mkdir()
    (root / "wider_face_split" / "wider_face_train_bbx_gt.txt").write_text(GT)
    return root


def test_index_counts_every_skip_and_clip(wider_root):
    index = read_wider(wider_root, "train")
    report = index.report
    names = [p.split("images/")[1] for p in index.paths]
    assert names == [
        "0--Parade/0_big.jpg",
        "0--Parade/0_gray.jpg",
        "1--Handshaking/1_png.jpg",
        "1--Handshaking/1_truncated.jpg",
        "1--Handshaking/1_bad_lines.jpg",
    ]
    assert index.sizes == ((400, 300), (200, 100), (80, 60), (70, 50), (60, 60))
    assert report.images_listed == 9 and report.images_used == 5
    assert dict(report.images_skipped) == {"no_faces": 2, "missing_file": 1, "unreadable_image": 1}
    assert report.faces_listed == 12  # 2 + 2 + 1 + 0 + 1 + 1 + 3 + 1 + 1 (the malformed line is not a face)
    assert dict(report.faces_dropped) == {"invalid": 1, "zero_size": 1, "outside_image": 1}
    assert report.faces_clipped == 1 and report.faces_used == 7
    assert dict(report.annotation_issues.counts) == {"malformed_box": 1, "count_mismatch": 1}
    np.testing.assert_array_equal(index.boxes[1], [[150, 20, 200, 60], [20, 30, 60, 70]])
    summary = report.summary()
    assert "images: 5 used of 9 annotated (skipped: 1 missing_file, 1 unreadable_image, 2 no_faces)" in summary
    assert "1 malformed_box, 1 count_mismatch" in summary


def test_keep_invalid_and_keep_empty(wider_root):
    index = read_wider(wider_root, "train", keep_invalid=True, keep_empty=True)
    assert index.report.images_used == 7 and dict(index.report.images_skipped) == {
        "missing_file": 1,
        "unreadable_image": 1,
    }
    unusable = index.paths.index(str(wider_root / "WIDER_train/images/1--Handshaking/1_unusable.jpg"))
    np.testing.assert_array_equal(index.boxes[unusable], [[10, 10, 30, 30]])  # the invalid face, kept


def test_clean_faces_rules():
    image = parse_annotations(
        [
            "e/x.jpg",
            "5",
            "-5 -5 20 20 0 0 0 0 0 0",
            "90 40 20 20 0 0 0 0 0 0",
            "100 10 5 5 0 0 0 0 0 0",
            "10 10 5 -1 0 0 0 0 0 0",
            "10 10 5 5 0 0 0 1 0 0",
        ]
    ).images[0]
    report = WiderReport()
    kept = clean_faces(image, (100, 50), report)
    np.testing.assert_array_equal(kept, [[0, 0, 15, 15], [90, 40, 100, 50]])
    assert report.faces_clipped == 2
    assert dict(report.faces_dropped) == {"outside_image": 1, "zero_size": 1, "invalid": 1}


def test_layout_errors(tmp_path):
    with pytest.raises(RNNPoolError, match="wider_face_train_bbx_gt.txt is missing"):
        read_wider(tmp_path, "train")
    with pytest.raises(RNNPoolError, match="split must be one of train, val"):
        read_wider(tmp_path, "test")


def _elements(dataset):
    return [(image.numpy(), boxes.numpy()) for image, boxes in dataset]


def test_resize_without_augmentation_gives_exact_boxes_and_channels(wider_root):
    index = read_wider(wider_root, "train")
    for channels in (1, 3):
        elements = _elements(wider_dataset(index, INPUT + (channels,), augment=False, shuffle=False))
        assert len(elements) == 4  # the truncated file is dropped by the pipeline, the epoch goes on
        for image, boxes in elements:
            assert image.shape == INPUT + (channels,) and image.dtype == np.float32
            assert 0.0 <= image.min() and image.max() <= 1.0
            assert boxes.dtype == np.float32 and boxes.shape[1] == 4
        np.testing.assert_allclose(
            elements[0][1],
            [[100 / 400, 50 / 300, 160 / 400, 110 / 300], [300 / 400, 200 / 300, 340 / 400, 240 / 300]],
            rtol=1e-6,
        )
        np.testing.assert_allclose(elements[1][1], [[0.75, 0.2, 1.0, 0.6], [0.1, 0.3, 0.3, 0.7]], rtol=1e-6)


def test_monochrome_is_the_luma_of_the_colour_input(wider_root):
    index = read_wider(wider_root, "train")
    gray = _elements(wider_dataset(index, INPUT + (1,), augment=False, shuffle=False))
    rgb = _elements(wider_dataset(index, INPUT + (3,), augment=False, shuffle=False))
    for (g, _), (c, _) in zip(gray, rgb, strict=True):
        np.testing.assert_allclose(g[..., 0], c @ np.array([0.2989, 0.587, 0.114], np.float32), atol=1e-3)


def test_augmented_boxes_stay_on_the_faces(wider_root):
    index = read_wider(wider_root, "train")
    config = AugmentConfig(jitter_prob=0.0)  # geometry only: faces stay pure white
    dataset = wider_dataset(index, INPUT + (1,), augment=True, seed=3, config=config).repeat(6)
    checked = 0
    for image, boxes in _elements(dataset):
        assert image.shape == INPUT + (1,)
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        assert boxes.min() >= 0.0 and boxes.max() <= 1.0
        for x1, y1, x2, y2 in boxes * [INPUT[1], INPUT[0], INPUT[1], INPUT[0]]:
            inner = image[int(np.ceil(y1)) + 1 : int(y2) - 1, int(np.ceil(x1)) + 1 : int(x2) - 1]
            if inner.size:
                assert inner.mean() > 0.9, (x1, y1, x2, y2, inner.mean())
                checked += 1
    assert checked >= 15


def test_augmentation_is_reproducible_and_redrawn_each_pass(wider_root):
    index = read_wider(wider_root, "train")
    first = _elements(wider_dataset(index, INPUT + (3,), seed=7).repeat(2))
    again = _elements(wider_dataset(index, INPUT + (3,), seed=7).repeat(2))
    for (a, ab), (b, bb) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ab, bb)
    half = len(first) // 2
    assert any(not np.array_equal(a, b) for (a, _), (b, _) in zip(first[:half], first[half:], strict=True))


def test_photometric_jitter_changes_pixels_within_range(wider_root):
    index = read_wider(wider_root, "train")
    plain = _elements(wider_dataset(index, INPUT + (3,), seed=5, config=AugmentConfig(jitter_prob=0.0)))
    jittered = _elements(wider_dataset(index, INPUT + (3,), seed=5, config=AugmentConfig(jitter_prob=1.0)))
    for (p, pb), (j, jb) in zip(plain, jittered, strict=True):
        np.testing.assert_array_equal(pb, jb)  # same seed, same geometry
        assert 0.0 <= j.min() and j.max() <= 1.0
        assert not np.allclose(p, j)


def test_anchor_window_zooms_the_face_to_a_nearby_anchor_scale():
    # A 10-pixel face: its nearest scale is 8, so the target is 8 or 16, times 2^U(-1, 1): the face
    # measures 4 .. 32 pixels at the model's input.
    face = tf.constant([[500.0, 400.0, 510.0, 410.0]])
    scales = (8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
    sizes = []
    for s in range(200):
        window = sample_anchor_window(
            face, tf.constant([800.0, 1000.0]), (240, 320), scales, tf.constant([s, 11], tf.int64)
        ).numpy()
        x0, y0, x1, y1 = window
        assert x0 == np.floor(x0) and x1 == np.round(x1)  # integer corners
        assert x0 <= 500 and x1 >= 510 and y0 <= 400 and y1 >= 410  # the face inside
        assert abs((x1 - x0) / (y1 - y0) - 320 / 240) < 0.02  # the model's aspect
        sizes.append(10 * 320 / (x1 - x0))
    assert min(sizes) >= 4 * 0.98 and max(sizes) <= 32 * 1.02
    assert min(sizes) < 6 and max(sizes) > 24  # both targets and the 2^U spread are drawn


def test_crop_window_has_the_model_aspect_and_holds_a_face():
    face = tf.constant([[300.0, 200.0, 340.0, 240.0]])
    for s in range(50):
        x0, y0, x1, y1 = sample_crop_window(
            face, tf.constant([600.0, 800.0]), (240, 320), 0.3, tf.constant([s, 2], tf.int64)
        ).numpy()
        assert 0 <= x0 and x1 <= 800 and 0 <= y0 and y1 <= 600
        assert 0.3 * 800 - 1 <= x1 - x0 <= 800 and abs((x1 - x0) / (y1 - y0) - 4 / 3) < 0.01
        assert x0 <= 300 and x1 >= 340 and y0 <= 200 and y1 >= 240


def test_project_and_crop_outside_the_image():
    # A window hanging off the top-left corner: the part outside is the fill colour, and faces whose
    # centre is outside the window are dropped.
    image = tf.ones([10, 20, 3])
    window = tf.constant([-20.0, -10.0, 20.0, 10.0])  # 40 x 20, the image in its right half, bottom half
    out = crop_to_window(image, window, (4, 8), fill=(0.25, 0.5, 0.75)).numpy()
    np.testing.assert_allclose(out[:2, :], np.broadcast_to([0.25, 0.5, 0.75], (2, 8, 3)))
    np.testing.assert_allclose(out[2:, :4], np.broadcast_to([0.25, 0.5, 0.75], (2, 4, 3)))
    np.testing.assert_allclose(out[2:, 4:], 1.0, atol=1e-6)
    boxes = tf.constant([[0.0, 0.0, 10.0, 10.0], [18.0, 0.0, 30.0, 4.0]])
    np.testing.assert_allclose(project_boxes(boxes, window, (4, 8), 1.0).numpy(), [[0.5, 0.5, 0.75, 1.0]])


def test_bad_input_shapes_are_clear_errors(wider_root):
    index = read_wider(wider_root, "train")
    with pytest.raises(RNNPoolError, match="1 or 3"):
        wider_dataset(index, (48, 64, 2))
    with pytest.raises(RNNPoolError, match="height, width, channels"):
        wider_dataset(index, (48, 64))


def test_pad_and_batch_keeps_the_largest_faces():
    boxes = [
        np.array([[0.0, 0.0, 0.1, 0.1], [0.2, 0.2, 0.6, 0.6], [0.5, 0.5, 0.8, 0.7]], np.float32),
        np.zeros((0, 4), np.float32),
    ]
    dataset = tf.data.Dataset.from_generator(
        lambda: ((np.zeros((2, 2, 1), np.float32), b) for b in boxes),
        output_signature=(tf.TensorSpec([2, 2, 1], tf.float32), tf.TensorSpec([None, 4], tf.float32)),
    )
    images, padded, counts = next(iter(pad_and_batch(dataset, batch_size=2, max_faces=2)))
    assert images.shape == (2, 2, 2, 1)
    np.testing.assert_array_equal(counts, [2, 0])
    np.testing.assert_allclose(padded[0], [[0.2, 0.2, 0.6, 0.6], [0.5, 0.5, 0.8, 0.7]])
    np.testing.assert_array_equal(padded[1], np.zeros((2, 4)))
    with pytest.raises(RNNPoolError, match="positive"):
        pad_and_batch(dataset, batch_size=0, max_faces=2)
