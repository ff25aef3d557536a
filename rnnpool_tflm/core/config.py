"""RNNPool hyper-parameters, their validation and the pooling geometry.

One definition shared by the Keras layer, the references, the converter and the
checks, so that every part agrees on output shapes and padding.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence, Tuple, Union

GATE_ACTIVATIONS = ("sigmoid", "hard_sigmoid")
UPDATE_ACTIVATIONS = ("tanh", "hard_tanh")
PADDINGS = ("valid", "same")
RNN1_MODES = ("cached", "recompute")  # the op's rnn1_mode option, in the contract's order

IntOrPair = Union[int, Sequence[int]]


def _pair(name: str, value: IntOrPair, allow_zero: bool = False) -> Tuple[int, int]:
    kind = "non-negative" if allow_zero else "positive"
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a {kind} int or a pair of them, got {value!r}")
    if isinstance(value, int):
        pair = (value, value)
    else:
        try:
            pair = tuple(value)
        except TypeError:
            raise ValueError(f"{name} must be a {kind} int or a pair of them, got {value!r}") from None
        if len(pair) != 2:
            raise ValueError(f"{name} must be a {kind} int or a pair of them, got {value!r}")
    for v in pair:
        if isinstance(v, bool) or not isinstance(v, int) and not (hasattr(v, "__index__")):
            raise ValueError(f"{name} must be a {kind} int or a pair of them, got {value!r}")
        if int(v) < 0 or (int(v) == 0 and not allow_zero):
            raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(pair[0]), int(pair[1])


@dataclasses.dataclass(frozen=True)
class Geometry:
    """How an RNNPool layer tiles an input map of a given size."""

    in_rows: int
    in_cols: int
    out_rows: int
    out_cols: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int

    @property
    def padded_rows(self) -> int:
        return self.in_rows + self.pad_top + self.pad_bottom

    @property
    def padded_cols(self) -> int:
        return self.in_cols + self.pad_left + self.pad_right


@dataclasses.dataclass(frozen=True)
class RNNPoolConfig:
    """Hyper-parameters of one RNNPool layer (validated on construction).

    Two fields belong to the custom op rather than the Keras layer:
    `output_padding` = (rows, cols): that many copies of the last output row / column
    appended (replicate padding, what a model does after RNNPool when the converter
    folds it in); `rnn1_mode`: how the C kernel organises RNN1 ("cached": RNN1
    results shared by overlapping patches kept in scratch, fewest instructions;
    "recompute": recomputed per patch, about a kilobyte of scratch). The mode never
    changes the result."""

    patch_size: Tuple[int, int]
    strides: Tuple[int, int]
    hidden_dims: Tuple[int, int]
    padding: str = "valid"
    gate_activation: str = "sigmoid"
    update_activation: str = "tanh"
    output_padding: Tuple[int, int] = (0, 0)
    rnn1_mode: str = "cached"

    @classmethod
    def create(
        cls,
        patch_size: IntOrPair,
        strides: IntOrPair | None,
        hidden_dims: IntOrPair,
        padding: str = "valid",
        gate_activation: str = "sigmoid",
        update_activation: str = "tanh",
        output_padding: IntOrPair = (0, 0),
        rnn1_mode: str = "cached",
    ) -> RNNPoolConfig:
        patch = _pair("patch_size", patch_size)
        stride = patch if strides is None else _pair("strides", strides)
        hidden = _pair("hidden_dims", hidden_dims)
        out_pad = _pair("output_padding", output_padding, allow_zero=True)
        if not isinstance(padding, str) or padding.lower() not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if gate_activation not in GATE_ACTIVATIONS:
            raise ValueError(f"gate_activation must be one of {GATE_ACTIVATIONS}, got {gate_activation!r}")
        if update_activation not in UPDATE_ACTIVATIONS:
            raise ValueError(f"update_activation must be one of {UPDATE_ACTIVATIONS}, got {update_activation!r}")
        if rnn1_mode not in RNN1_MODES:
            raise ValueError(f"rnn1_mode must be one of {RNN1_MODES}, got {rnn1_mode!r}")
        return cls(patch, stride, hidden, padding.lower(), gate_activation, update_activation, out_pad, rnn1_mode)

    @property
    def hard_gate(self) -> bool:
        return self.gate_activation == "hard_sigmoid"

    @property
    def hard_update(self) -> bool:
        return self.update_activation == "hard_tanh"

    @property
    def output_channels(self) -> int:
        return 4 * self.hidden_dims[1]

    def output_shape(self, input_shape) -> Tuple[int, int, int, int]:
        """[N, Ho + pad_bottom, Wo + pad_right, 4*h2] of an NHWC input shape (raises like geometry)."""
        n, rows, cols = (int(v) for v in input_shape[:3])
        geo = self.geometry(rows, cols)
        return (n, geo.out_rows + self.output_padding[0], geo.out_cols + self.output_padding[1], self.output_channels)

    def geometry(self, in_rows: int, in_cols: int) -> Geometry:
        """Output size and zero padding for an input of in_rows x in_cols.

        "valid": only patches fully inside the input, out = floor((H - r) / s) + 1.
        "same": TensorFlow's SAME rule, out = ceil(H / s), padding split with the
        smaller half on top/left.
        """
        r, c = self.patch_size
        sr, sc = self.strides
        if self.padding == "valid":
            for name, size, p in (("rows", in_rows, r), ("cols", in_cols, c)):
                if size < p:
                    raise ValueError(
                        f"patch_size {self.patch_size} is larger than the input ({in_rows}x{in_cols}): "
                        f"input {name} {size} < patch {p} with padding='valid'"
                    )
            return Geometry(in_rows, in_cols, (in_rows - r) // sr + 1, (in_cols - c) // sc + 1, 0, 0, 0, 0)
        out_r, out_c = math.ceil(in_rows / sr), math.ceil(in_cols / sc)
        pad_r = max((out_r - 1) * sr + r - in_rows, 0)
        pad_c = max((out_c - 1) * sc + c - in_cols, 0)
        return Geometry(in_rows, in_cols, out_r, out_c, pad_r // 2, pad_r - pad_r // 2, pad_c // 2, pad_c - pad_c // 2)
