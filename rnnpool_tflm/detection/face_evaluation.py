"""Average precision of a face detector (Keras float/QAT, int8 .tflite, or the firmware on the
emulated M4) on synthetic faces or WIDER FACE, scored with the official WIDER FACE protocol
(evaluation.py): the Python API behind `rnnpool-tflm eval-face MODEL --data ...`.

    result = evaluate_face_model("face_m4.tflite", "synthetic", count=200)
    result.ap["all"]

Data:
  synthetic      `count` images (default 200) of the synthetic set `seed` (default 1: the
                 validation set of a train-face run with its default seed 0) at the model's
                 input shape; every face counts (subset "all").
  wider:DIR      the official layout under DIR (WIDER_<split>/images, wider_face_split/);
                 every image resized to the model's input (images.prepare), boxes scaled back
                 to the image's pixels; `count` limits the evaluation to the first images of the
                 ground-truth file (the others' faces are left out); `splits_dir` (the official
                 eval_tools/ground_truth folder, val only) adds easy/medium/hard. An image that
                 cannot be read counts as one without detections (its faces are misses) and is
                 reported in `notes`.
Detections are the post-processing's (postprocess.py, threshold 0.05, NMS 0.3, top 750) in
pixels (x, y, w, h, score); scores are min-max normalised over the dataset by the protocol.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from .evaluation import SubsetResult, evaluate
from .on_device import DEVICE_CONFIG
from .postprocess import Detections, PostprocessConfig
from .runners import DetectorRunner, open_detector, runner_kind_label

SYNTHETIC_SEED = 1
SYNTHETIC_COUNT = 200


@dataclasses.dataclass(frozen=True)
class FaceEvaluation:
    results: Dict[str, SubsetResult]
    images: int
    detections: int
    data: str
    model: str
    notes: Tuple[str, ...] = ()

    @property
    def ap(self) -> Dict[str, Optional[float]]:
        return {name: r.ap for name, r in self.results.items()}

    def as_json(self) -> dict:
        return {
            "ap": self.ap,
            "faces": {name: r.faces for name, r in self.results.items()},
            "images": self.images,
            "detections": self.detections,
            "data": self.data,
            "model": self.model,
            "notes": list(self.notes),
        }

    def format(self) -> str:
        lines = [
            f"{self.model} on {self.data}: {self.images} images, {self.detections} detections",
            "WIDER FACE protocol (IoU 0.5, 1000 thresholds):",
        ]
        for name, r in self.results.items():
            lines.append(f"  {name:<7} {'n/a (no faces)' if r.ap is None else f'{r.ap:.4f}'}   ({r.faces} faces)")
        return "\n".join(lines)


def to_xywh_pixels(boxes: np.ndarray, image_size: Sequence[int]) -> np.ndarray:
    """Normalised (x1, y1, x2, y2) [n, 4] -> (x, y, w, h) in pixels of an image of (rows, cols)."""
    rows, cols = (float(v) for v in image_size)
    b = np.asarray(boxes, np.float64).reshape(-1, 4) * np.array([cols, rows, cols, rows])
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def as_predictions(found: Detections, image_size: Sequence[int]) -> np.ndarray:
    """[k, 5] (x, y, w, h, score) in pixels, as the evaluation and the submission format take them."""
    return np.concatenate(
        [to_xywh_pixels(found.boxes, image_size), np.asarray(found.scores, np.float64).reshape(-1, 1)], axis=1
    )


def _batches(count: int, size: int):
    for start in range(0, count, size):
        yield start, min(start + size, count)


def evaluate_synthetic(
    runner: DetectorRunner,
    count: int = SYNTHETIC_COUNT,
    seed: int = SYNTHETIC_SEED,
    config: PostprocessConfig = PostprocessConfig(),
    batch_size: int = 16,
    progress: Optional[Callable[[int, int], None]] = None,
) -> FaceEvaluation:
    from .synthetic import synthetic_face_image

    if int(count) < 1:
        raise RNNPoolError(f"count must be a positive number of images, got {count}")
    rows, cols, _ = runner.input_shape
    faces, predictions, total = {}, {}, 0
    for start, stop in _batches(int(count), batch_size):
        drawn = [synthetic_face_image(seed, i, runner.input_shape) for i in range(start, stop)]
        images = np.stack([image for image, _ in drawn]).astype(np.float32) / 255.0
        for i, (found, (_, boxes)) in enumerate(zip(runner.detect(images, config), drawn, strict=True)):
            name = f"synthetic_{seed}_{start + i}"
            faces[name] = to_xywh_pixels(boxes, (rows, cols))
            predictions[name] = as_predictions(found, (rows, cols))
            total += len(found)
        if progress:
            progress(stop, int(count))
    return FaceEvaluation(
        evaluate(faces, predictions),
        int(count),
        total,
        f"synthetic faces (set {seed}, {count} images, {cols}x{rows})",
        runner_kind_label(runner),
    )


def evaluate_wider(
    runner: DetectorRunner,
    root,
    split: str = "val",
    count: Optional[int] = None,
    splits_dir=None,
    config: PostprocessConfig = PostprocessConfig(),
    batch_size: int = 16,
    save_predictions=None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> FaceEvaluation:
    from .evaluation_files import read_ground_truth, read_subsets, write_prediction_file
    from .images import load_image
    from .wider_annotations import read_annotations
    from .wider_data import split_paths

    if splits_dir is not None and split != "val":
        raise RNNPoolError("the easy/medium/hard split files are for the val split")
    gt_file, images_dir = split_paths(root, split)
    truth = read_ground_truth(gt_file)
    names = [image.name for image in read_annotations(gt_file).images]
    if count is not None:
        if int(count) < 1:
            raise RNNPoolError(f"count must be a positive number of images, got {count}")
        names = names[: int(count)]
    stems = [pathlib.PurePosixPath(n).stem for n in names]
    faces = {stem: truth.faces[stem] for stem in stems}
    subsets = None
    if splits_dir is not None:
        subsets = {
            subset: {s: keep[s] for s in stems if s in keep} for subset, keep in read_subsets(splits_dir, truth).items()
        }
    predictions, unreadable, total = {}, [], 0
    for start, stop in _batches(len(names), batch_size):
        loaded = []
        for name in names[start:stop]:
            try:
                loaded.append(load_image(images_dir / name, runner.input_shape))
            except RNNPoolError as exc:
                unreadable.append(str(exc))
        if loaded:
            found = runner.detect(np.stack([image.model_input for image in loaded]), config)
            for image, dets in zip(loaded, found, strict=True):
                stem = image.path.stem
                predictions[stem] = as_predictions(dets, image.size)
                total += len(dets)
                if save_predictions is not None:
                    write_prediction_file(save_predictions, truth.events[stem], stem, predictions[stem])
        if progress:
            progress(stop, len(names))
    notes = []
    if unreadable:
        notes.append(
            f"{len(unreadable)} image(s) could not be read and count as no detections (first: {unreadable[0]})"
        )
    return FaceEvaluation(
        evaluate(faces, predictions, subsets),
        len(names),
        total,
        f"WIDER FACE {split} ({len(names)} images, resized to {runner.input_shape[1]}x{runner.input_shape[0]})",
        runner_kind_label(runner),
        tuple(notes),
    )


def parse_data(spec: str) -> Tuple[str, Optional[pathlib.Path]]:
    """'synthetic' or 'wider:DIR' -> (kind, DIR)."""
    spec = str(spec)
    if spec == "synthetic":
        return "synthetic", None
    if spec.startswith("wider:") and len(spec) > len("wider:"):
        return "wider", pathlib.Path(spec[len("wider:") :])
    raise RNNPoolError(f"--data must be 'synthetic' or 'wider:DIR', got {spec!r}")


def evaluate_face_model(
    model,
    data: str = "synthetic",
    *,
    count: Optional[int] = None,
    seed: int = SYNTHETIC_SEED,
    split: str = "val",
    splits_dir=None,
    config: Optional[PostprocessConfig] = None,
    batch_size: int = 16,
    save_predictions=None,
    emulate: bool = False,
    progress: Optional[Callable[[int, int], None]] = None,
) -> FaceEvaluation:
    """AP of `model` (a Keras model or path, a .tflite path or bytes; `emulate`: the .tflite on the
    emulated Cortex-M4, one firmware run per image) on `data` ('synthetic' or 'wider:DIR').
    `config`: the post-processing (default: the host's PostprocessConfig(), the device's
    on_device.DEVICE_CONFIG with `emulate`)."""
    kind, root = parse_data(data)
    runner = open_detector(model, emulate=emulate)
    if config is None:
        config = DEVICE_CONFIG if emulate else PostprocessConfig()
    if kind == "synthetic":
        if splits_dir is not None or save_predictions is not None:
            raise RNNPoolError("split files and saved predictions are for WIDER FACE (--data wider:DIR)")
        return evaluate_synthetic(
            runner, SYNTHETIC_COUNT if count is None else count, seed, config, batch_size, progress
        )
    return evaluate_wider(runner, root, split, count, splits_dir, config, batch_size, save_predictions, progress)


__all__ = [
    "FaceEvaluation",
    "evaluate_face_model",
    "evaluate_synthetic",
    "evaluate_wider",
    "parse_data",
    "as_predictions",
    "to_xywh_pixels",
    "SYNTHETIC_SEED",
    "SYNTHETIC_COUNT",
]
