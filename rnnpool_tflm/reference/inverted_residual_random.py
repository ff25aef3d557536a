"""Random int8 parameters of one inverted-residual block (benchmarks and tests).

The weights are random int8 and the scales are chosen so that every stage's results spread
over the int8 range (an accumulator of `fan_in` products becomes about 40 output steps at
gain 1), instead of collapsing onto a clamp.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .inverted_residual import ConvStage, Quantization, QuantizedInvertedResidual
from .tflm_int8 import ACTIVATION_RELU, ACTIVATION_RELU6


def _quant(rng, scale_range=(0.004, 0.05)) -> Quantization:
    return Quantization.of(np.float32(rng.uniform(*scale_range)), int(rng.integers(-30, 31)))


def _calibrated(activation: int, rng) -> Quantization:
    """What the TF converter gives a RELU6 / RELU output calibrated on data reaching 6:
    [0, 6] over the int8 range (zero point -128)."""
    if activation in (ACTIVATION_RELU, ACTIVATION_RELU6):
        return Quantization.of(np.float32(6.0 / 255.0), -128)
    return _quant(rng)


def _weights(
    rng,
    shape,
    per_channel: bool,
    channel_axis: int,
    bias_channels: Optional[int],
    fan_in: int,
    s_in: float,
    s_out: float,
    gain: float,
):
    channels = shape[channel_axis]
    w = rng.integers(-127, 128, size=shape).astype(np.int8)
    if per_channel:
        scales = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    else:
        scales = np.ones(1, np.float32)
    # Spread the results over the output range: an accumulator of fan_in products of int8 values
    # (std ~ 73 * 74 each) becomes ~40 output steps at gain 1.
    base = gain * s_out / (s_in * 135.0 * np.sqrt(fan_in))
    scales = (scales * np.float32(base)).astype(np.float32)
    bias = None
    if bias_channels is not None:
        bias = rng.integers(-4000, 4000, size=bias_channels).astype(np.int32) * int(np.sqrt(fan_in) + 1)
    return w, bias, scales


def random_block(
    rng,
    ci: int,
    ce: int,
    co: int,
    stride: int,
    expand: bool = True,
    residual: bool = False,
    activations: Sequence[int] = (3, 3, 0, 0),
    per_channel: bool = True,
    biases: bool = True,
    gain: float = 1.0,
    calibrated: bool = False,
) -> QuantizedInvertedResidual:
    """One block's int8 parameters; activations = (expand, depthwise, project, add).
    calibrated: the expansion's and depthwise's outputs quantized as the TF converter quantizes
    a calibrated RELU6 (scale 6/255, zero point -128) instead of at random."""
    if not expand:
        ce = ci
    q_in = _quant(rng)
    q_e = (_calibrated(activations[0], rng) if calibrated else _quant(rng)) if expand else None
    q_d = _calibrated(activations[1], rng) if calibrated else _quant(rng)
    q_o = _quant(rng)
    q_p = _quant(rng) if residual else None
    q_proj = q_p if residual else q_o
    e_stage = None
    if expand:
        w, b, s = _weights(rng, (ce, 1, 1, ci), per_channel, 0, ce if biases else None, ci, q_in.scale, q_e.scale, gain)
        e_stage = ConvStage(w, b, s, activations[0])
    s_e = q_e.scale if expand else q_in.scale
    w, b, s = _weights(rng, (1, 3, 3, ce), per_channel, 3, ce if biases else None, 9, s_e, q_d.scale, gain)
    d_stage = ConvStage(w, b, s, activations[1])
    w, b, s = _weights(rng, (co, 1, 1, ce), per_channel, 0, co if biases else None, ce, q_d.scale, q_proj.scale, gain)
    p_stage = ConvStage(w, b, s, activations[2])
    return QuantizedInvertedResidual(
        stride, q_in, e_stage, q_e, d_stage, q_d, p_stage, q_p, q_o, activations[3] if residual else 0
    )
