"""A custom op's options: the flexbuffer map its C parser reads (custom_ops/*/..._tflm.cc,
inverted_residual_options.cc), read here by the same rules: a map, string keys, no key twice."""

from __future__ import annotations

from typing import Dict

from flatbuffers import flexbuffers

from .checks import ModelError


def read_options_map(raw, op: str) -> Dict[str, object]:
    """The map as a dict; ModelError naming the problem otherwise (flexbuffers' own dict would
    keep the last of two equal keys silently, where the C parsers refuse the model)."""
    try:
        root = flexbuffers.GetRoot(bytes(bytearray(raw if raw is not None else b"")))
        if not root.IsMap:
            raise ValueError("the root is not a map")
        entries = root.AsMap
        keys = [entries.Keys[i].AsKey for i in range(len(entries))]
        values = entries.Value
    except Exception as exc:  # the flexbuffers reader raises whatever a damaged buffer trips first
        raise ModelError(f"{op} options are not a valid flexbuffer map ({exc})") from None
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ModelError(f"{op} option {key!r} is given twice")
    return values
