"""The detectors' raw outputs as one list of priors: loc [B, P, 4] and conf [B, P, classes].

The zoo's detectors output NHWC maps in the order loc0, conf0, loc1, conf1, ...; the first
head's conf map may carry S3FD's max-out background (3 background candidates, then the
other classes: 3 + classes - 1 channels), which is reduced to one background score here
(the rule of analysis.zoo.maxout_background). Maps are flattened row-major, head by head,
the order priors.make_priors lists the priors in.

Written once for NumPy (`xp=numpy`, host post-processing) and TensorFlow
(`xp=tensorflow.experimental.numpy`, the training loss).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence, Tuple

import numpy as np

from ..core.errors import RNNPoolError

MAXOUT_BACKGROUND_CHANNELS = 3


@dataclasses.dataclass(frozen=True)
class HeadLayout:
    feature_maps: Tuple[Tuple[int, int], ...]  # (rows, cols) of each head
    num_classes: int  # background included
    maxout_first: bool  # head 0 has the max-out background channels

    @property
    def num_heads(self) -> int:
        return len(self.feature_maps)

    @property
    def num_priors(self) -> int:
        return sum(r * c for r, c in self.feature_maps)

    def conf_channels(self, head: int) -> int:
        extra = MAXOUT_BACKGROUND_CHANNELS - 1 if (head == 0 and self.maxout_first) else 0
        return self.num_classes + extra

    @classmethod
    def from_output_shapes(cls, shapes: Sequence[Sequence[int]], num_classes: int = 2) -> HeadLayout:
        """From the (rows, cols, channels) of each output (batch dimension dropped), in the order
        loc0, conf0, loc1, conf1, ... The class count is read from the heads after the first;
        `num_classes` is used only when there is one head."""
        shapes = [tuple(int(d) for d in s[-3:]) for s in shapes]
        if not shapes or len(shapes) % 2:
            raise RNNPoolError(f"a detector has (loc, conf) output pairs; got {len(shapes)} outputs")
        locs, confs = shapes[0::2], shapes[1::2]
        for i, (loc, conf) in enumerate(zip(locs, confs, strict=True)):
            if loc[2] != 4:
                raise RNNPoolError(f"output {2 * i} (loc{i}) must have 4 channels (box offsets), has shape {loc}")
            if loc[:2] != conf[:2]:
                raise RNNPoolError(f"loc{i} {loc} and conf{i} {conf} cover different feature maps")
        if len(confs) > 1:
            num_classes = confs[1][2]
            if any(c[2] != num_classes for c in confs[1:]):
                raise RNNPoolError(f"conf1.. must all have the same class count, got {[c[2] for c in confs]}")
        if num_classes < 2:
            raise RNNPoolError(f"a detector needs at least 2 classes (background + faces), got {num_classes}")
        first = confs[0][2]
        if first == num_classes:
            maxout = False
        elif first == num_classes + MAXOUT_BACKGROUND_CHANNELS - 1:
            maxout = True
        else:
            raise RNNPoolError(
                f"conf0 has {first} channels: expected {num_classes} or, with the max-out "
                f"background, {num_classes + MAXOUT_BACKGROUND_CHANNELS - 1}"
            )
        return cls(tuple(loc[:2] for loc in locs), num_classes, maxout)

    @classmethod
    def of_model(cls, model) -> HeadLayout:
        return cls.from_output_shapes([tuple(o.shape[1:]) for o in model.outputs])


def maxout_background(conf, xp=np):
    """[..., 3 + classes - 1] -> [..., classes]: the largest of the 3 background scores, then the rest."""
    background = xp.max(conf[..., :MAXOUT_BACKGROUND_CHANNELS], axis=-1, keepdims=True)
    return xp.concatenate([background, conf[..., MAXOUT_BACKGROUND_CHANNELS:]], axis=-1)


def flatten_heads(outputs: Sequence, layout: HeadLayout, xp=np):
    """(loc [B, P, 4], conf [B, P, classes]) from the detector's outputs [B, rows, cols, channels]."""
    if len(outputs) != 2 * layout.num_heads:
        raise RNNPoolError(f"expected {2 * layout.num_heads} head outputs, got {len(outputs)}")
    locs, confs = [], []
    for head, (rows, cols) in enumerate(layout.feature_maps):
        loc, conf = outputs[2 * head], outputs[2 * head + 1]
        locs.append(xp.reshape(loc, (-1, rows * cols, 4)))
        conf = xp.reshape(conf, (-1, rows * cols, layout.conf_channels(head)))
        confs.append(maxout_background(conf, xp) if head == 0 and layout.maxout_first else conf)
    return xp.concatenate(locs, axis=1), xp.concatenate(confs, axis=1)


__all__ = ["HeadLayout", "maxout_background", "flatten_heads", "MAXOUT_BACKGROUND_CHANNELS"]
