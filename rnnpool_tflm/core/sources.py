"""Where the C sources of the custom ops are (repository checkout or installed copy)."""

from __future__ import annotations

import pathlib

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]

# Each custom op: its folder under custom_ops/ and a header that marks it (its contract).
OP_SOURCES = {
    "rnnpool": "rnnpool_op_contract.h",
    "inverted_residual": "inverted_residual_op_contract.h",
    "common": "int8_requant.h",  # TFLM's int8 requantization, shared by the int8 kernels
    "conv": "narrow_conv_s8.h",  # the firmware's CONV_2D kernel for narrow convolutions
}


def source_dir(op: str = "rnnpool") -> pathlib.Path:
    """custom_ops/<op> of the checkout, or the copy a wheel carries in _csrc/ (all ops, flat)."""
    marker = OP_SOURCES[op]
    for candidate in (_PACKAGE.parent / "custom_ops" / op, _PACKAGE / "_csrc"):
        if (candidate / marker).is_file():
            return candidate
    raise FileNotFoundError(
        f"the {op} C sources were not found next to the package (custom_ops/{op}) "
        "nor inside it (_csrc); reinstall rnnpool-tflm"
    )


# The ops' sources in a repository checkout (the firmware and the host registerer compile them there).
OP_DIR = _PACKAGE.parent / "custom_ops" / "rnnpool"
INVRES_DIR = _PACKAGE.parent / "custom_ops" / "inverted_residual"
COMMON_DIR = _PACKAGE.parent / "custom_ops" / "common"
CONV_DIR = _PACKAGE.parent / "custom_ops" / "conv"
# The detector post-processing (docs/detection.md), compiled into the firmware the same way.
DETECTION_DIR = _PACKAGE.parent / "custom_ops" / "detection"
