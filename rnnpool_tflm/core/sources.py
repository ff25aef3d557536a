"""Where the C sources of the custom ops are (repository checkout or installed copy)."""

from __future__ import annotations

import pathlib

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]


def source_dir() -> pathlib.Path:
    """custom_ops/rnnpool of the checkout, or the copy a wheel carries in _csrc/."""
    for candidate in (_PACKAGE.parent / "custom_ops" / "rnnpool", _PACKAGE / "_csrc"):
        if (candidate / "rnnpool_op_contract.h").is_file():
            return candidate
    raise FileNotFoundError(
        "the RNNPool C sources were not found next to the package (custom_ops/rnnpool) "
        "nor inside it (_csrc); reinstall rnnpool-tflm")


# The op's sources in a repository checkout (the firmware and the host registerer compile them there).
OP_DIR = _PACKAGE.parent / "custom_ops" / "rnnpool"
