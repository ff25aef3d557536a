"""Parser of WIDER FACE ground-truth files (wider_face_{train,val}_bbx_gt.txt).

The format, one record per image:

    0--Parade/0_Parade_marchingband_1_849.jpg      image line (path under WIDER_*/images)
    1                                              number of faces
    449 330 122 149 0 0 0 0 0 0                    x1 y1 w h blur expression illumination invalid occlusion pose

An image with no faces is written as a count of 0 followed by one all-zero placeholder line.

The parser never raises on a bad record: each problem is skipped as below, counted by kind in
`AnnotationIssues` and kept with its line number, so a training run reports it instead of crashing
mid-epoch. (The evaluator, which needs the file exactly as written, refuses a file with any issue.)

- An image line is a line ending in .jpg/.jpeg/.png/.bmp (any case); every other non-blank line is a
  data line. Data lines before the first image line: `orphan_line`, skipped.
- The first data line of a record must be a non-negative integer count, else `malformed_count`: the
  image and its data lines are skipped. An image line with no data line at all is also
  `malformed_count`.
- A face line holds 10 numbers (the official layout) or 4 (x1 y1 w h, flags taken as 0), finite, with
  integer flags; anything else is `malformed_box`: that line is skipped, the rest of the record kept.
- The face lines present are the truth; a count that disagrees with them is `count_mismatch` (the
  record keeps the lines present). With a count of 0, all-zero lines are the placeholder, not faces.
- A second record for the same image is `duplicate_image`: the first one is kept.

Boxes are kept exactly as written (zero-size and `invalid` faces included), in file order: the
official evaluation's subset lists index faces by that order. What training does with such faces is
decided later, against the image size (wider_data.clean_faces).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import pathlib
from typing import Dict, Iterable, List, Tuple

import numpy as np

from ..core.errors import RNNPoolError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
FLAG_NAMES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
ISSUE_KINDS = ("orphan_line", "malformed_count", "malformed_box", "count_mismatch", "duplicate_image")
_EXAMPLES_KEPT = 20  # per file; enough to find the pattern without flooding a report


@dataclasses.dataclass(frozen=True)
class ImageAnnotation:
    """One image's faces as written: `boxes` float64 [n, 4] (x1, y1, w, h in pixels), `flags` int32
    [n, 6] in FLAG_NAMES order, `line` the 1-based line number of the image line."""

    name: str
    boxes: np.ndarray
    flags: np.ndarray
    line: int

    @property
    def stem(self) -> str:
        """The image's file name without folder and extension: the key the official evaluation uses."""
        return pathlib.PurePosixPath(self.name).stem

    @property
    def invalid(self) -> np.ndarray:
        return self.flags[:, FLAG_NAMES.index("invalid")].astype(bool)


@dataclasses.dataclass
class AnnotationIssues:
    """Problems found while parsing: counts per kind (ISSUE_KINDS) and the first few examples."""

    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: List[str] = dataclasses.field(default_factory=list)

    def add(self, kind: str, line: int, detail: str) -> None:
        assert kind in ISSUE_KINDS, kind
        self.counts[kind] += 1
        if len(self.examples) < _EXAMPLES_KEPT:
            self.examples.append(f"line {line}: {kind}: {detail}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.total:
            return "no annotation issues"
        return ", ".join(f"{self.counts[k]} {k}" for k in ISSUE_KINDS if self.counts[k])


@dataclasses.dataclass(frozen=True)
class AnnotationFile:
    images: Tuple[ImageAnnotation, ...]
    issues: AnnotationIssues
    path: str = "<text>"

    @property
    def num_faces(self) -> int:
        return sum(len(image.boxes) for image in self.images)


def read_annotations(path) -> AnnotationFile:
    """Parse a wider_face_*_bbx_gt.txt file (see the module docstring for the skip rules)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise RNNPoolError(f"WIDER FACE annotation file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise RNNPoolError(f"cannot read WIDER FACE annotation file {path}: {exc}") from None
    parsed = parse_annotations(text.splitlines())
    return dataclasses.replace(parsed, path=str(path))


def parse_annotations(lines: Iterable[str]) -> AnnotationFile:
    issues = AnnotationIssues()
    images: List[ImageAnnotation] = []
    seen: Dict[str, int] = {}
    for header_line, name, data in _records(lines, issues):
        image = _parse_record(header_line, name, data, issues)
        if image is None:
            continue
        if name in seen:
            issues.add("duplicate_image", header_line, f"{name} already annotated at line {seen[name]}")
            continue
        seen[name] = header_line
        images.append(image)
    return AnnotationFile(images=tuple(images), issues=issues)


def _is_image_line(line: str) -> bool:
    return line.lower().endswith(IMAGE_SUFFIXES)


def _records(lines: Iterable[str], issues: AnnotationIssues):
    """Yields (line number, image name, [(line number, data line), ...]) per image line."""
    current = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if _is_image_line(line):
            if current is not None:
                yield current
            current = (number, line, [])
        elif current is None:
            issues.add("orphan_line", number, f"data line before the first image line: {line[:60]!r}")
        else:
            current[2].append((number, line))
    if current is not None:
        yield current


def _parse_record(header_line: int, name: str, data, issues: AnnotationIssues):
    if not data:
        issues.add("malformed_count", header_line, f"{name}: no face count follows the image line")
        return None
    count_line, count_text = data[0]
    try:
        count = int(count_text)
    except ValueError:
        count = -1
    if count < 0:
        issues.add(
            "malformed_count", count_line, f"{name}: face count must be a non-negative integer, got {count_text[:60]!r}"
        )
        return None
    boxes, flags = [], []
    for number, text in data[1:]:
        face = _parse_face(text)
        if face is None:
            issues.add(
                "malformed_box",
                number,
                f"{name}: expected 10 (or 4) numbers x1 y1 w h {' '.join(FLAG_NAMES)}, got {text[:80]!r}",
            )
            continue
        box, flag = face
        if count == 0 and not any(box) and not any(flag):
            continue  # the placeholder line written for an image without faces
        boxes.append(box)
        flags.append(flag)
    if len(boxes) != count:
        issues.add(
            "count_mismatch",
            count_line,
            f"{name}: count says {count} face(s), {len(boxes)} valid face line(s) follow; the face lines are kept",
        )
    return ImageAnnotation(
        name=name,
        boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
        flags=np.asarray(flags, np.int32).reshape(-1, len(FLAG_NAMES)),
        line=header_line,
    )


def _parse_face(text: str):
    fields = text.split()
    if len(fields) not in (4, 4 + len(FLAG_NAMES)):
        return None
    try:
        values = [float(v) for v in fields]
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    flags = values[4:]
    if any(v != int(v) for v in flags):
        return None
    return values[:4], [int(v) for v in flags] or [0] * len(FLAG_NAMES)
