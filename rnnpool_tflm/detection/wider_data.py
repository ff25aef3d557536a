"""WIDER FACE for training: the official layout read into a checked index, then a tf.data pipeline.

Layout (as downloaded and unzipped into ROOT):

    ROOT/WIDER_train/images/<event>/<file>.jpg
    ROOT/WIDER_val/images/<event>/<file>.jpg
    ROOT/wider_face_split/wider_face_{train,val}_bbx_gt.txt

`read_wider(ROOT, "train")` parses the annotations (wider_annotations: malformed lines skipped and
counted), reads every image's size from its header (Pillow, no decoding) and applies the face rules
below, returning a `WiderIndex` whose `report` counts everything skipped, clipped or dropped.
`wider_dataset(index, input_shape)` turns it into a tf.data.Dataset.

Face rules (per face, in this order; each counted in WiderReport.faces_dropped / faces_clipped):
- `invalid` flag 1 (WIDER's "invalid face" label): dropped, unless keep_invalid=True;
- width or height <= 0: dropped (`zero_size`);
- outside the image: clipped to it (x2 = x1 + w, boxes in [0, width] x [0, height]); dropped when
  nothing is left (`outside_image`).
Image rules (WiderReport.images_skipped): a missing file (`missing_file`) or one Pillow cannot
identify (`unreadable_image`) is skipped; an image with no face left after the face rules is skipped
(`no_faces`) unless keep_empty=True (S3FD's crops need a face to anchor on; validation may keep them).
Images of any size, greyscale/RGBA/palette or PNG content are decoded as RGB and resized to the
model's input by the pipeline, then made monochrome for 1-channel models. A file whose data is
corrupt past its header is dropped by the pipeline with a logged warning rather than ending the epoch.

Element spec (unbatched; the contract with the training code):
    image  float32 [H, W, C] in [0, 1]    (H, W, C) = input_shape, C = 1 or 3
    boxes  float32 [n, 4], n >= 0         normalised (x1, y1, x2, y2), 0 <= x1 < x2 <= 1
`pad_and_batch(dataset, batch_size, max_faces)` gives fixed shapes for a model:
    images float32 [B, H, W, C], boxes float32 [B, max_faces, 4] (rows >= count are 0), counts int32 [B]
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from .wider_annotations import AnnotationIssues, ImageAnnotation, read_annotations

SPLITS = ("train", "val")
FACE_DROP_REASONS = ("invalid", "zero_size", "outside_image")
IMAGE_SKIP_REASONS = ("missing_file", "unreadable_image", "no_faces")
_EXAMPLES_KEPT = 20


@dataclasses.dataclass
class WiderReport:
    """What reading a split kept, skipped and changed; `summary()` is what a training run prints."""

    annotation_issues: AnnotationIssues = dataclasses.field(default_factory=AnnotationIssues)
    images_listed: int = 0
    images_used: int = 0
    images_skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    faces_listed: int = 0
    faces_used: int = 0
    faces_dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    faces_clipped: int = 0
    examples: List[str] = dataclasses.field(default_factory=list)

    def skip_image(self, reason: str, name: str, detail: str = "") -> None:
        assert reason in IMAGE_SKIP_REASONS, reason
        self.images_skipped[reason] += 1
        if len(self.examples) < _EXAMPLES_KEPT:
            self.examples.append(f"{name}: {reason}{': ' + detail if detail else ''}")

    def summary(self) -> str:
        skipped = ", ".join(f"{self.images_skipped[r]} {r}" for r in IMAGE_SKIP_REASONS if self.images_skipped[r])
        dropped = ", ".join(f"{self.faces_dropped[r]} {r}" for r in FACE_DROP_REASONS if self.faces_dropped[r])
        return "\n".join(
            [
                f"images: {self.images_used} used of {self.images_listed} annotated"
                + (f" (skipped: {skipped})" if skipped else ""),
                f"faces: {self.faces_used} used of {self.faces_listed} annotated"
                + (f" (dropped: {dropped})" if dropped else "")
                + (f", {self.faces_clipped} clipped to the image" if self.faces_clipped else ""),
                f"annotation file: {self.annotation_issues.summary()}",
            ]
        )

    def as_dict(self) -> dict:
        return {
            "images_listed": self.images_listed,
            "images_used": self.images_used,
            "images_skipped": dict(self.images_skipped),
            "faces_listed": self.faces_listed,
            "faces_used": self.faces_used,
            "faces_dropped": dict(self.faces_dropped),
            "faces_clipped": self.faces_clipped,
            "annotation_issues": dict(self.annotation_issues.counts),
        }


@dataclasses.dataclass(frozen=True)
class WiderIndex:
    """Images that passed the rules: `paths[i]`, its `sizes[i]` (width, height) and `boxes[i]`,
    float32 [n, 4] pixel (x1, y1, x2, y2) inside the image."""

    paths: Tuple[str, ...]
    sizes: Tuple[Tuple[int, int], ...]
    boxes: Tuple[np.ndarray, ...]
    report: WiderReport

    def __len__(self) -> int:
        return len(self.paths)


def split_paths(root, split: str) -> Tuple[pathlib.Path, pathlib.Path]:
    """(annotation file, images folder) of a split in the official layout."""
    if split not in SPLITS:
        raise RNNPoolError(f"WIDER FACE split must be one of {', '.join(SPLITS)}, got {split!r}")
    root = pathlib.Path(root)
    annotations = root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
    images = root / f"WIDER_{split}" / "images"
    for path, what in ((annotations, "annotation file"), (images, "images folder")):
        if not path.exists():
            raise RNNPoolError(
                f"{root} is not a WIDER FACE folder: the {split} {what} {path} is missing "
                f"(expected WIDER_{split}/images/ and wider_face_split/ from the official zips)"
            )
    return annotations, images


def read_wider(root, split: str = "train", keep_invalid: bool = False, keep_empty: bool = False) -> WiderIndex:
    annotations, images = split_paths(root, split)
    return read_wider_files(annotations, images, keep_invalid=keep_invalid, keep_empty=keep_empty)


def read_wider_files(annotation_file, images_dir, keep_invalid: bool = False, keep_empty: bool = False) -> WiderIndex:
    parsed = read_annotations(annotation_file)
    report = WiderReport(
        annotation_issues=parsed.issues, images_listed=len(parsed.images), faces_listed=parsed.num_faces
    )
    images_dir = pathlib.Path(images_dir)
    paths, sizes, boxes = [], [], []
    for image in parsed.images:
        path = images_dir / image.name
        size = _image_size(path, image.name, report)
        if size is None:
            continue
        kept = clean_faces(image, size, report, keep_invalid=keep_invalid)
        if len(kept) == 0 and not keep_empty:
            report.skip_image("no_faces", image.name)
            continue
        paths.append(str(path))
        sizes.append(size)
        boxes.append(kept)
        report.images_used += 1
        report.faces_used += len(kept)
    return WiderIndex(paths=tuple(paths), sizes=tuple(sizes), boxes=tuple(boxes), report=report)


def _image_size(path: pathlib.Path, name: str, report: WiderReport) -> Optional[Tuple[int, int]]:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        report.skip_image("missing_file", name)
        return None
    try:
        with Image.open(path) as im:  # reads the header only
            width, height = im.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        report.skip_image("unreadable_image", name, str(exc)[:100])
        return None
    if width < 1 or height < 1:
        report.skip_image("unreadable_image", name, f"size {width}x{height}")
        return None
    return int(width), int(height)


def clean_faces(
    image: ImageAnnotation, size: Tuple[int, int], report: WiderReport, keep_invalid: bool = False
) -> np.ndarray:
    """The face rules of the module docstring: float32 [n, 4] pixel (x1, y1, x2, y2) in the image."""
    width, height = size
    kept = []
    for (x, y, w, h), invalid in zip(image.boxes, image.invalid, strict=True):
        if invalid and not keep_invalid:
            report.faces_dropped["invalid"] += 1
            continue
        if w <= 0 or h <= 0:
            report.faces_dropped["zero_size"] += 1
            continue
        box = (x, y, x + w, y + h)
        clipped = (
            min(max(box[0], 0.0), width),
            min(max(box[1], 0.0), height),
            min(max(box[2], 0.0), width),
            min(max(box[3], 0.0), height),
        )
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            report.faces_dropped["outside_image"] += 1
            continue
        if clipped != box:
            report.faces_clipped += 1
        kept.append(clipped)
    return np.asarray(kept, np.float32).reshape(-1, 4)


def _check_input_shape(input_shape: Sequence[int]) -> Tuple[int, int, int]:
    try:
        height, width, channels = (int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise RNNPoolError(f"input_shape must be (height, width, channels), got {input_shape!r}") from None
    if height < 1 or width < 1 or channels not in (1, 3):
        raise RNNPoolError(f"input_shape must be (height, width, 1 or 3) with positive sizes, got {tuple(input_shape)}")
    return height, width, channels


def wider_dataset(
    index: WiderIndex,
    input_shape: Sequence[int] = (240, 320, 1),
    augment: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    config=None,
):
    """Unbatched (image, boxes) elements as in the module docstring. With augment=True each pass
    draws new crops, flips and jitter (face_augment); shuffle reshuffles every pass. Deterministic
    for a given seed whatever the parallelism."""
    import tensorflow as tf

    from .face_augment import AugmentConfig, augment_example, resize_example

    height, width, channels = _check_input_shape(input_shape)
    if len(index) == 0:
        raise RNNPoolError("the WIDER FACE index has no usable image:\n" + index.report.summary())
    config = config if config is not None else AugmentConfig()
    out_hw = (height, width)
    counts = np.array([len(b) for b in index.boxes], np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    all_boxes = tf.constant(np.concatenate(index.boxes).reshape(-1, 4).astype(np.float32))
    paths, starts, counts = tf.constant(list(index.paths)), tf.constant(starts), tf.constant(counts)

    dataset = tf.data.Dataset.range(len(index))
    if shuffle:
        dataset = dataset.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds))
    else:
        dataset = dataset.map(lambda i: (i, tf.zeros([2], tf.int64)))

    def load(i, example_seed):
        image = tf.io.decode_image(tf.io.read_file(paths[i]), channels=3, expand_animations=False)
        image = tf.image.convert_image_dtype(image, tf.float32)
        boxes = all_boxes[starts[i] : starts[i] + counts[i]]
        if augment:
            return augment_example(image, boxes, out_hw, channels, example_seed, config)
        return resize_example(image, boxes, out_hw, channels, config.min_face_px)

    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.ignore_errors(log_warning=True)


def pad_and_batch(dataset, batch_size: int, max_faces: int, drop_remainder: bool = False):
    """(images, boxes [B, max_faces, 4] zero-padded, counts [B]); an image with more than
    `max_faces` faces keeps its largest ones."""
    import tensorflow as tf

    if batch_size < 1 or max_faces < 1:
        raise RNNPoolError(f"batch_size and max_faces must be positive, got {batch_size} and {max_faces}")

    def pad(image, boxes):
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes = tf.cond(
            tf.shape(boxes)[0] > max_faces,
            lambda: tf.gather(boxes, tf.math.top_k(areas, k=max_faces).indices),
            lambda: boxes,
        )
        count = tf.shape(boxes)[0]
        padded = tf.pad(boxes, [[0, max_faces - count], [0, 0]])
        return image, tf.ensure_shape(padded, [max_faces, 4]), count

    return dataset.map(pad, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size, drop_remainder=drop_remainder)
