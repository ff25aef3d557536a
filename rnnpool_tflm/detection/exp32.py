"""exp in float32 operations only: the post-processing's exp on every platform (docs/detection.md).

NumPy's float32 exp is not correctly rounded and differs between CPUs (its AVX-512 and AVX2
kernels, libm elsewhere); libm's expf differs between glibc and newlib. The post-processing
ranks detections by softmax scores, so one ulp decides an order: it uses this function, which
the C version (custom_ops/detection, `detection_expf`) computes identically, operation for
operation, on the host and on a Cortex-M4.

    x NaN: NaN;  x < -87: 0;  x > 88: +inf;  else
    k = (x * LOG2E + 1.5 * 2^23) - 1.5 * 2^23            round(x / ln 2), ties to even
    r = (x - k * LN2_HI) - k * LN2_LO
    p = Horner(r; 1/7!, 1/6!, ..., 1/2!, 1, 1)           exp(r) to degree 7
    exp = p * 2^k                                        2^k built from its bits

Every constant is a float32 value (hex). Within 2 ulp of exp in the finite range.
"""

from __future__ import annotations

import numpy as np

MIN_X = np.float32(-87.0)
MAX_X = np.float32(88.0)
LOG2E = np.float32(float.fromhex("0x1.715476p+0"))
LN2_HI = np.float32(float.fromhex("0x1.63p-1"))
LN2_LO = np.float32(float.fromhex("-0x1.bd0106p-13"))
ROUNDER = np.float32(float.fromhex("0x1.8p+23"))
TAYLOR = tuple(
    np.float32(float.fromhex(h))
    for h in (  # 1/7!, 1/6!, ..., 1/2!, 1, 1
        "0x1.a01a02p-13",
        "0x1.6c16c2p-10",
        "0x1.111112p-7",
        "0x1.555556p-5",
        "0x1.555556p-3",
        "0x1.0p-1",
        "0x1.0p+0",
        "0x1.0p+0",
    )
)


def exp32(x) -> np.ndarray:
    """exp of a float32 array (any shape), as detection_expf computes it."""
    x = np.asarray(x, np.float32)
    finite = (x >= MIN_X) & (x <= MAX_X)  # False for NaN
    safe = np.where(finite, x, np.float32(0.0))
    k = (safe * LOG2E + ROUNDER) - ROUNDER
    r = (safe - k * LN2_HI) - k * LN2_LO
    p = np.full_like(r, TAYLOR[0])
    for c in TAYLOR[1:]:
        p = p * r + c
    two_k = ((k.astype(np.int32) + np.int32(127)) << np.int32(23)).view(np.float32)
    out = p * two_k
    out = np.where(x > MAX_X, np.float32(np.inf), out)
    out = np.where(x < MIN_X, np.float32(0.0), out)
    return np.where(np.isnan(x), x, out).astype(np.float32, copy=False)


__all__ = ["exp32"]
