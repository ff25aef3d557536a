"""The int8 InvertedResidual op, in NumPy: the golden reference (docs/inverted_residual.md).

It evaluates the unfused TFLite graph's integer arithmetic on whole maps --
CONV_2D 1x1 (optional expansion) -> DEPTHWISE_CONV_2D 3x3 'same' -> CONV_2D 1x1
(projection) -> optional ADD with the block input -- with TFLM's own formulas
(reference.tflm_int8), so its output equals the unfused model's in the tflite-micro
interpreter byte for byte. The C core (custom_ops/inverted_residual) must equal it.

Parameters use the TFLite layouts the unfused model stores: 1x1 filters
[out, 1, 1, in] quantized per output channel along dimension 0, the depthwise filter
[1, 3, 3, C] along dimension 3; biases int32 (optional); every activation a
per-tensor (float32 scale, zero point).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from .tflm_int8 import (
    ACTIVATION_NONE,
    ACTIVATION_RELU6,
    AddParams,
    InvalidQuantization,
    activation_range,
    conv_multipliers,
    requantize,
    wrap32,
)

KERNEL = 3


@dataclasses.dataclass(frozen=True)
class Quantization:
    """A per-tensor int8 quantization: real = scale * (q - zero_point)."""

    scale: np.float32
    zero_point: int

    @classmethod
    def of(cls, scale, zero_point) -> Quantization:
        return cls(np.float32(scale), int(zero_point))

    def check(self, what: str) -> None:
        s = float(self.scale)
        if not (np.isfinite(s) and s > 0):
            raise InvalidQuantization(f"{what} scale {s!r} is not positive and finite")
        if not -128 <= self.zero_point <= 127:
            raise InvalidQuantization(f"{what} zero point {self.zero_point} is outside [-128, 127]")


@dataclasses.dataclass(frozen=True)
class ConvStage:
    """One convolution of the block: int8 filter (TFLite layout), optional int32 bias, per-channel
    (or one) float32 filter scales, the fused activation (TFLite ActivationFunctionType)."""

    filter: np.ndarray
    bias: Optional[np.ndarray]
    scales: np.ndarray
    activation: int = ACTIVATION_NONE


@dataclasses.dataclass(frozen=True)
class QuantizedInvertedResidual:
    """Everything the op needs; `expand`/`expanded` are None without expansion (t = 1),
    `projected` (the projection's output quantization) is None without the residual ADD."""

    stride: int
    input: Quantization
    expand: Optional[ConvStage]
    expanded: Optional[Quantization]
    depthwise: ConvStage
    depthwise_output: Quantization
    project: ConvStage
    projected: Optional[Quantization]
    output: Quantization
    add_activation: int = ACTIVATION_NONE

    @property
    def residual(self) -> bool:
        return self.projected is not None

    @property
    def in_channels(self) -> int:
        """Ci: the expansion's input channels, or the depthwise's without expansion."""
        return int(self.expand.filter.shape[3]) if self.expand is not None else self.expanded_channels

    @property
    def expanded_channels(self) -> int:
        return int(self.depthwise.filter.shape[3])

    @property
    def out_channels(self) -> int:
        return int(self.project.filter.shape[0])

    def check(self) -> None:
        """Shapes and quantizations consistent (InvalidQuantization/RNNPoolError naming the problem)."""
        if self.stride not in (1, 2):
            raise RNNPoolError(f"stride {self.stride} is not supported (1 or 2)")
        if (self.expand is None) != (self.expanded is None):
            raise RNNPoolError("the expansion filter and the expanded quantization go together")
        ce = self.expanded_channels
        if self.depthwise.filter.shape != (1, KERNEL, KERNEL, ce):
            raise RNNPoolError(f"depthwise filter shape {self.depthwise.filter.shape} is not [1, 3, 3, C]")
        if self.expand is not None:
            shape = self.expand.filter.shape
            if len(shape) != 4 or shape[0] != ce or shape[1:3] != (1, 1):
                raise RNNPoolError(f"expansion filter shape {shape} is not [{ce}, 1, 1, Ci]")
        pshape = self.project.filter.shape
        if len(pshape) != 4 or pshape[1:] != (1, 1, ce):
            raise RNNPoolError(f"projection filter shape {pshape} is not [Co, 1, 1, {ce}]")
        if self.residual and (self.stride != 1 or self.out_channels != self.in_channels):
            raise RNNPoolError("the residual ADD needs stride 1 and as many output as input channels")
        if not self.residual and self.add_activation != ACTIVATION_NONE:
            raise RNNPoolError("an ADD activation without the residual ADD")
        for what, q in (
            ("input", self.input),
            ("expanded", self.expanded),
            ("depthwise output", self.depthwise_output),
            ("projected", self.projected),
            ("output", self.output),
        ):
            if q is not None:
                q.check(what)
        for what, stage, channels in (
            ("expansion", self.expand, ce),
            ("depthwise", self.depthwise, ce),
            ("projection", self.project, self.out_channels),
        ):
            if stage is None:
                continue
            if stage.bias is not None and np.asarray(stage.bias).shape != (channels,):
                raise RNNPoolError(f"{what} bias shape {np.asarray(stage.bias).shape} is not [{channels}]")
            scales = np.asarray(stage.scales, np.float32).reshape(-1)
            if scales.size not in (1, channels) or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
                raise InvalidQuantization(f"{what} filter scales must be 1 or {channels} positive finite values")


def geometry(rows: int, cols: int, stride: int) -> Tuple[int, int, int, int]:
    """TFLite 'same' padding of the 3x3 depthwise: (out_rows, out_cols, pad_top, pad_left);
    out = ceil(in / stride), total padding max((out - 1) * stride + 3 - in, 0), the smaller half first."""
    out_rows, out_cols = -(-rows // stride), -(-cols // stride)
    pad_rows = max((out_rows - 1) * stride + KERNEL - rows, 0)
    pad_cols = max((out_cols - 1) * stride + KERNEL - cols, 0)
    return out_rows, out_cols, pad_rows // 2, pad_cols // 2


@dataclasses.dataclass(frozen=True)
class StageArithmetic:
    """What TFLM's Prepare derives for one convolution."""

    multipliers: np.ndarray  # int64 [channels]
    shifts: np.ndarray
    lo: int
    hi: int


@dataclasses.dataclass(frozen=True)
class Arithmetic:
    expand: Optional[StageArithmetic]
    depthwise: StageArithmetic
    project: StageArithmetic
    add: Optional[AddParams]


def derive(p: QuantizedInvertedResidual) -> Arithmetic:
    """Multipliers, shifts and clamps of every stage, as TFLM's kernels compute them in Prepare."""
    p.check()
    expanded = p.expanded if p.expand is not None else p.input
    projected = p.projected if p.residual else p.output

    def stage(conv: ConvStage, q_in: Quantization, q_out: Quantization, channels: int) -> StageArithmetic:
        m, n = conv_multipliers(q_in.scale, conv.scales, q_out.scale, channels)
        lo, hi = activation_range(conv.activation, q_out.scale, q_out.zero_point)
        return StageArithmetic(m, n, lo, hi)

    ce, co = p.expanded_channels, p.out_channels
    return Arithmetic(
        expand=stage(p.expand, p.input, p.expanded, ce) if p.expand is not None else None,
        depthwise=stage(p.depthwise, expanded, p.depthwise_output, ce),
        project=stage(p.project, p.depthwise_output, projected, co),
        add=AddParams.create(
            (p.input.scale, p.input.zero_point),
            (projected.scale, projected.zero_point),
            (p.output.scale, p.output.zero_point),
            p.add_activation,
        )
        if p.residual
        else None,
    )


def _bias(conv: ConvStage, channels: int) -> np.ndarray:
    return np.zeros(channels, np.int64) if conv.bias is None else np.asarray(conv.bias, np.int64)


def conv1x1(x: np.ndarray, zero_point: int, conv: ConvStage, a: StageArithmetic, q_out: Quantization) -> np.ndarray:
    """CONV_2D 1x1, stride 1 (ConvPerChannel): acc = sum w * (x - zp) + bias, then requantize."""
    w = np.asarray(conv.filter, np.int64)[:, 0, 0, :]  # [out, in]
    acc = np.asarray(x, np.int64) - zero_point
    acc = acc.reshape(-1, acc.shape[-1]) @ w.T + _bias(conv, w.shape[0])
    out = requantize(acc, a.multipliers, a.shifts, q_out.zero_point, a.lo, a.hi)
    return out.reshape(*x.shape[:-1], w.shape[0])


def depthwise3x3(
    e: np.ndarray, zero_point: int, conv: ConvStage, a: StageArithmetic, q_out: Quantization, stride: int
) -> np.ndarray:
    """DEPTHWISE_CONV_2D 3x3 'same' (DepthwiseConvPerChannel, depth multiplier 1): taps outside
    the map are skipped, which equals padding with the input zero point."""
    n, rows, cols, channels = e.shape
    out_rows, out_cols, top, left = geometry(rows, cols, stride)
    need_rows, need_cols = (out_rows - 1) * stride + KERNEL, (out_cols - 1) * stride + KERNEL
    padded = np.full((n, max(need_rows, top + rows), max(need_cols, left + cols), channels), zero_point, np.int64)
    padded[:, top : top + rows, left : left + cols, :] = e
    centred = padded - zero_point
    w = np.asarray(conv.filter, np.int64)[0]  # [3, 3, C]
    acc = np.broadcast_to(_bias(conv, channels), (n, out_rows, out_cols, channels)).copy()
    for ky in range(KERNEL):
        for kx in range(KERNEL):
            taps = centred[
                :, ky : ky + (out_rows - 1) * stride + 1 : stride, kx : kx + (out_cols - 1) * stride + 1 : stride
            ]
            acc += taps * w[ky, kx]
    return requantize(wrap32(acc), a.multipliers, a.shifts, q_out.zero_point, a.lo, a.hi)


def inverted_residual_int8(x: np.ndarray, p: QuantizedInvertedResidual) -> np.ndarray:
    """int8 NHWC [N, H, W, Ci] -> int8 [N, ceil(H/s), ceil(W/s), Co], bit-exact with TFLM."""
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim != 4:
        raise RNNPoolError(f"input must be int8 NHWC, got {x.dtype} {x.shape}")
    if x.shape[3] != p.in_channels:
        raise RNNPoolError(f"input has {x.shape[3]} channels, the op expects {p.in_channels}")
    a = derive(p)
    e, q_e = x, p.input
    if p.expand is not None:
        e, q_e = conv1x1(x, p.input.zero_point, p.expand, a.expand, p.expanded), p.expanded
    d = depthwise3x3(e, q_e.zero_point, p.depthwise, a.depthwise, p.depthwise_output, p.stride)
    projected = p.projected if p.residual else p.output
    y = conv1x1(d, p.depthwise_output.zero_point, p.project, a.project, projected)
    return a.add(x, y) if p.residual else y


__all__ = [
    "ACTIVATION_NONE",
    "ACTIVATION_RELU6",
    "Arithmetic",
    "ConvStage",
    "Quantization",
    "QuantizedInvertedResidual",
    "StageArithmetic",
    "conv1x1",
    "depthwise3x3",
    "derive",
    "geometry",
    "inverted_residual_int8",
]
