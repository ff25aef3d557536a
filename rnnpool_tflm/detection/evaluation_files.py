"""Files of the WIDER FACE evaluation: ground truth (wider_face_*_bbx_gt.txt), the official submission
format (one .txt per image) and the official easy/medium/hard split files (wider_*_val.mat).

Submission format, one file per image, `<event>/<image stem>.txt` (any folder depth is accepted;
files are found by their stem, which must be unique):

    0_Parade_marchingband_1_465        the image (its stem; a folder or extension is allowed)
    2                                  number of detections
    12.0 34.0 56.0 78.0 0.998          x y w h score (further numbers on a line are ignored)
    ...

The split files (from the official eval_tools/ground_truth) hold MATLAB cells: `event_list` {E x 1}
of event names, `file_list` {E x 1} of {N x 1} image stems, `gt_list` {E x 1} of {N x 1} 1-based
indices of the faces in the subset, in the ground-truth file's face order. When a split file has no
event/file lists they are read from wider_face_val.mat next to it.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Dict, List, Mapping, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from ..core.files import atomic_write_text
from .wider_annotations import read_annotations

SUBSETS = ("easy", "medium", "hard")


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """Faces per image stem ([m, 4] x, y, w, h in annotation order) and each stem's event folder."""

    faces: Dict[str, np.ndarray]
    events: Dict[str, str]
    path: str


def read_ground_truth(path) -> GroundTruth:
    """A wider_face_*_bbx_gt.txt file for evaluation: any annotation issue is an error here, since the
    split files index the faces by their order in this file."""
    parsed = read_annotations(path)
    if parsed.issues.total:
        raise RNNPoolError(
            f"ground truth {path} has annotation issues ({parsed.issues.summary()}); first: {parsed.issues.examples[0]}"
        )
    faces, events = {}, {}
    for image in parsed.images:
        if image.stem in faces:
            raise RNNPoolError(
                f"ground truth {path}: two images are named {image.stem} "
                f"(line {image.line}); the evaluation keys images by file name"
            )
        faces[image.stem] = image.boxes
        events[image.stem] = str(pathlib.PurePosixPath(image.name).parent)
    return GroundTruth(faces=faces, events=events, path=str(path))


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Detections per image stem ([k, 5] x, y, w, h, score); `missing`: ground-truth images without a
    file (evaluated as no detections); `unknown`: files for images not in the ground truth (ignored)."""

    detections: Dict[str, np.ndarray]
    missing: Tuple[str, ...]
    unknown: Tuple[str, ...]


def read_predictions(folder, image_stems) -> Predictions:
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise RNNPoolError(f"predictions folder {folder} does not exist")
    files: Dict[str, pathlib.Path] = {}
    for path in sorted(folder.rglob("*.txt")):
        if path.stem in files:
            raise RNNPoolError(f"two prediction files for image {path.stem}: {files[path.stem]} and {path}")
        files[path.stem] = path
    wanted = set(image_stems)
    detections = {stem: read_prediction_file(path) for stem, path in files.items() if stem in wanted}
    missing = tuple(sorted(wanted - set(files)))
    unknown = tuple(sorted(set(files) - wanted))
    return Predictions(detections=detections, missing=missing, unknown=unknown)


def read_prediction_file(path) -> np.ndarray:
    path = pathlib.Path(path)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise RNNPoolError(f"cannot read prediction file {path}: {exc}") from None
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) < 2:
        raise RNNPoolError(
            f"prediction file {path}: expected the image name and a detection count on its first two lines"
        )
    named = pathlib.PurePosixPath(lines[0].replace("\\", "/")).name
    if named != path.stem and pathlib.PurePosixPath(named).stem != path.stem:
        raise RNNPoolError(f"prediction file {path} names image {lines[0]!r}, not {path.stem}")
    try:
        count = int(lines[1])
    except ValueError:
        count = -1
    if count < 0:
        raise RNNPoolError(
            f"prediction file {path}, line 2: the detection count must be a non-negative integer, got {lines[1][:40]!r}"
        )
    rows = lines[2:]
    if len(rows) != count:
        raise RNNPoolError(f"prediction file {path}: count says {count} detection(s), {len(rows)} line(s) follow")
    detections = np.zeros((count, 5), np.float64)
    for i, row in enumerate(rows):
        try:
            values = [float(v) for v in row.split()[:5]]
        except ValueError:
            values = []
        if len(values) != 5 or not np.all(np.isfinite(values)):
            raise RNNPoolError(
                f"prediction file {path}, line {i + 3}: expected finite numbers x y w h score, got {row[:80]!r}"
            )
        detections[i] = values
    return detections


def write_prediction_file(folder, event: str, stem: str, detections: np.ndarray) -> pathlib.Path:
    """One image's detections [k, 5] (x, y, w, h, score) in the submission format, written atomically."""
    detections = np.asarray(detections, np.float64).reshape(-1, 5)
    lines = [stem, str(len(detections))]
    lines += [" ".join(f"{v:.6g}" for v in row[:4]) + f" {row[4]:.9g}" for row in detections]
    return atomic_write_text(pathlib.Path(folder) / event / f"{stem}.txt", "\n".join(lines) + "\n")


def read_subsets(folder, truth: GroundTruth) -> Dict[str, Dict[str, np.ndarray]]:
    """easy/medium/hard: image stem -> 0-based face indices, from wider_{easy,medium,hard}_val.mat,
    checked against the ground truth."""
    folder = pathlib.Path(folder)
    files = {subset: folder / f"wider_{subset}_val.mat" for subset in SUBSETS}
    absent = [str(p) for p in files.values() if not p.is_file()]
    if absent:
        raise RNNPoolError(
            f"split folder {folder} lacks {', '.join(absent)} (the official eval_tools/ground_truth files)"
        )
    return {subset: _read_subset(path, truth) for subset, path in files.items()}


def _loadmat(path: pathlib.Path) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(str(path))
    except Exception as exc:  # scipy raises several types for a file that is not a MATLAB v5 file
        raise RNNPoolError(f"cannot read {path} as a MATLAB .mat file ({type(exc).__name__}: {exc})") from None


def _cells(value, what: str, path) -> List:
    """A MATLAB cell array (object ndarray) as a flat list."""
    if not isinstance(value, np.ndarray) or value.dtype != object:
        raise RNNPoolError(f"{path}: {what} is not a MATLAB cell array")
    return list(value.reshape(-1))


def _text(value) -> str:
    while isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"expected one string, got an array of shape {value.shape}")
        value = value.reshape(-1)[0]
    return str(value)


def _read_subset(path: pathlib.Path, truth: GroundTruth) -> Dict[str, np.ndarray]:
    mat = _loadmat(path)
    if "gt_list" not in mat:
        raise RNNPoolError(f"{path} has no gt_list (the subset's face indices)")
    lists = mat
    if "event_list" not in mat or "file_list" not in mat:
        lists = _loadmat(path.parent / "wider_face_val.mat") if (path.parent / "wider_face_val.mat").is_file() else {}
        if "event_list" not in lists or "file_list" not in lists:
            raise RNNPoolError(f"{path} has no event_list/file_list and no wider_face_val.mat with them is next to it")
    events = _cells(lists["event_list"], "event_list", path)
    file_lists = _cells(lists["file_list"], "file_list", path)
    gt_lists = _cells(mat["gt_list"], "gt_list", path)
    box_lists = _cells(mat["face_bbx_list"], "face_bbx_list", path) if "face_bbx_list" in mat else None
    if not len(events) == len(file_lists) == len(gt_lists):
        raise RNNPoolError(
            f"{path}: event_list, file_list and gt_list have different lengths "
            f"({len(events)}, {len(file_lists)}, {len(gt_lists)})"
        )
    keep: Dict[str, np.ndarray] = {}
    try:
        for e, (event, stems, indices) in enumerate(zip(events, file_lists, gt_lists, strict=True)):
            stems = _cells(stems, f"file_list{{{e + 1}}}", path)
            indices = _cells(indices, f"gt_list{{{e + 1}}}", path)
            boxes = _cells(box_lists[e], f"face_bbx_list{{{e + 1}}}", path) if box_lists is not None else None
            if len(stems) != len(indices):
                raise RNNPoolError(
                    f"{path}: event {_text(event)} lists {len(stems)} images but {len(indices)} index lists"
                )
            for j, (stem, index) in enumerate(zip(stems, indices, strict=True)):
                stem = _text(stem)
                if stem not in truth.faces:
                    raise RNNPoolError(
                        f"{path} lists image {stem} ({_text(event)}), which the ground truth {truth.path} does not have"
                    )
                count = len(truth.faces[stem])
                if boxes is not None and np.asarray(boxes[j]).reshape(-1, 4).shape[0] != count:
                    raise RNNPoolError(
                        f"{path}: image {stem} has {np.asarray(boxes[j]).reshape(-1, 4).shape[0]} "
                        f"faces there but {count} in {truth.path}"
                    )
                one_based = np.asarray(index, np.float64).reshape(-1)
                if one_based.size and (
                    np.any(one_based != np.round(one_based)) or one_based.min() < 1 or one_based.max() > count
                ):
                    raise RNNPoolError(
                        f"{path}: image {stem} lists faces {one_based.astype(int).tolist()} "
                        f"but has {count} (indices are 1-based)"
                    )
                keep[stem] = one_based.astype(np.int64) - 1
    except ValueError as exc:
        raise RNNPoolError(f"{path}: unexpected cell contents ({exc})") from None
    return keep


def evaluate_files(predictions_dir, gt_file, splits_dir=None):
    """AP per subset for a submission folder; returns (results, Predictions, GroundTruth)."""
    from .evaluation import evaluate

    truth = read_ground_truth(gt_file)
    predictions = read_predictions(predictions_dir, truth.faces.keys())
    subsets = read_subsets(splits_dir, truth) if splits_dir is not None else None
    results = evaluate(truth.faces, predictions.detections, subsets)
    return results, predictions, truth


def as_json(results: Mapping) -> dict:
    return {"ap": {name: r.ap for name, r in results.items()}, "faces": {name: r.faces for name, r in results.items()}}
