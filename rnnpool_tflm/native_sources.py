"""Where the C sources of the RNNPool kernel are (repository checkout or installed copy)."""

from __future__ import annotations

import pathlib

_PACKAGE = pathlib.Path(__file__).resolve().parent


def source_dir() -> pathlib.Path:
    """custom_ops/rnnpool of the checkout, or the copy a wheel carries in _csrc/."""
    for candidate in (_PACKAGE.parent / "custom_ops" / "rnnpool", _PACKAGE / "_csrc"):
        if (candidate / "rnnpool_op_contract.h").is_file():
            return candidate
    raise FileNotFoundError(
        "the RNNPool C sources were not found next to the package (custom_ops/rnnpool) "
        "nor inside it (_csrc); reinstall rnnpool-tflm")
