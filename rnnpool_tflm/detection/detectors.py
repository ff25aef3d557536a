"""The zoo's face detectors with their prior configurations: what training, post-processing
and evaluation need to know about a detector, in one place."""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Sequence, Tuple

from ..analysis import zoo
from ..core.errors import RNNPoolError
from .heads import HeadLayout
from .priors import FACE_M4_PRIORS, FACE_QUANT_PRIORS, PriorConfig, Priors, make_priors


@dataclasses.dataclass(frozen=True)
class FaceDetectorSpec:
    name: str
    builder: Callable
    input_shape: Tuple[int, int, int]
    priors: PriorConfig


FACE_DETECTORS: Dict[str, FaceDetectorSpec] = {
    "face_m4": FaceDetectorSpec("face_m4", zoo.rnnpool_face_m4, (240, 320, 1), FACE_M4_PRIORS),
    "face_quant": FaceDetectorSpec("face_quant", zoo.rnnpool_face_quant, (480, 640, 3), FACE_QUANT_PRIORS),
}


def face_detector_spec(name: str) -> FaceDetectorSpec:
    key = str(name).strip().lower().removeprefix("zoo:").replace("-", "_")
    if key not in FACE_DETECTORS:
        raise RNNPoolError(f"unknown face detector {name!r}; choose one of {', '.join(FACE_DETECTORS)}")
    return FACE_DETECTORS[key]


def build_face_detector(name: str, input_shape: Optional[Sequence[int]] = None, **kwargs):
    """A zoo face detector (uncompiled), at its own input size unless `input_shape` is given."""
    spec = face_detector_spec(name)
    shape = tuple(spec.input_shape if input_shape is None else input_shape)
    try:
        return spec.builder(input_shape=shape, **kwargs)
    except ValueError as exc:
        raise RNNPoolError(f"{spec.name}: {exc}") from None


def prior_config_for(layout: HeadLayout) -> PriorConfig:
    """The prior configuration of a zoo detector, told apart by its head count."""
    by_heads = {len(spec.priors.anchor_sizes): spec.priors for spec in FACE_DETECTORS.values()}
    if layout.num_heads not in by_heads:
        raise RNNPoolError(
            f"no prior configuration for a detector with {layout.num_heads} heads "
            f"(known: {sorted(by_heads)}); pass one explicitly"
        )
    return by_heads[layout.num_heads]


def detector_priors(model, config: Optional[PriorConfig] = None) -> Tuple[HeadLayout, Priors]:
    """The head layout and priors of a Keras detector (float or QAT) at its input size."""
    layout = HeadLayout.of_model(model)
    rows, cols = (int(d) for d in model.inputs[0].shape[1:3])
    priors = make_priors((rows, cols), layout.feature_maps, config or prior_config_for(layout))
    return layout, priors


__all__ = [
    "FaceDetectorSpec",
    "FACE_DETECTORS",
    "face_detector_spec",
    "build_face_detector",
    "prior_config_for",
    "detector_priors",
]
