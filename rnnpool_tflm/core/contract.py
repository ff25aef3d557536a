"""The RNNPool custom-op contract, read from the C header that defines it.

``custom_ops/rnnpool/rnnpool_op_contract.h`` is the one definition of the op's
name, version, inputs, outputs and options; the C kernel compiles it and this
module parses it, so converter, checker and kernel cannot disagree.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import re
from typing import Dict, Mapping, Tuple

from . import sources as native_sources

HEADER_NAME = "rnnpool_op_contract.h"

_TENSOR_LINE = re.compile(
    r'X\((?P<enum>[A-Z0-9_]+), (?P<index>\d+), "(?P<name>[a-z0-9_]+)", '
    r'(?P<int8>[A-Z0-9]+), (?P<float>[A-Z0-9]+), "(?P<shape>[^"]*)"\)')
_OPTION_LINE = re.compile(r'X\((?P<enum>[A-Z0-9_]+), "(?P<key>[a-z0-9_]+)", (?P<min>-?\d+), (?P<max>-?\d+)\)')
_DEFINE = re.compile(r'#define (RNNPOOL_[A-Z0-9_]+) ("[^"]*"|-?\d+)\s*$')


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    index: int
    name: str
    int8_type: str   # "INT8", "INT16", "INT32" or "FLOAT32"
    float_type: str
    shape: str


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    key: str
    minimum: int
    maximum: int


@dataclasses.dataclass(frozen=True)
class OpContract:
    custom_code: str
    version: int
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]
    options: Tuple[OptionSpec, ...]
    constants: Mapping[str, int]

    def input_index(self, name: str) -> int:
        for spec in self.inputs:
            if spec.name == name:
                return spec.index
        raise KeyError(f"the RNNPool op has no input named {name!r}")

    def check_options(self, options: Mapping[str, int]) -> None:
        """Raises ValueError naming the first missing, unknown or out-of-range option."""
        known = {o.key: o for o in self.options}
        for key in options:
            if key not in known:
                raise ValueError(f"unknown RNNPool option {key!r}")
        for spec in self.options:
            if spec.key not in options:
                raise ValueError(f"RNNPool option {spec.key!r} is missing")
            value = options[spec.key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"RNNPool option {spec.key!r} must be an integer, got {value!r}")
            if not spec.minimum <= value <= spec.maximum:
                raise ValueError(f"RNNPool option {spec.key!r}={value} is outside "
                                 f"[{spec.minimum}, {spec.maximum}]")


def _block(text: str, macro: str) -> str:
    match = re.search(rf"#define {macro}\(X\)(.*?)(?:\n\s*\n|\n#)", text, re.S)
    if not match:
        raise RuntimeError(f"{HEADER_NAME}: macro {macro} not found")
    return match.group(1)


def parse_contract(text: str) -> OpContract:
    constants: Dict[str, object] = {}
    for line in text.splitlines():
        m = _DEFINE.match(line.strip())
        if m:
            value = m.group(2)
            constants[m.group(1)] = value.strip('"') if value.startswith('"') else int(value)

    def tensors(macro: str, count_macro: str) -> Tuple[TensorSpec, ...]:
        specs = tuple(TensorSpec(int(m["index"]), m["name"], m["int8"], m["float"], m["shape"])
                      for m in _TENSOR_LINE.finditer(_block(text, macro)))
        if [s.index for s in specs] != list(range(constants[count_macro])):
            raise RuntimeError(f"{HEADER_NAME}: {macro} does not list indices 0..{constants[count_macro] - 1}")
        return specs

    options = tuple(OptionSpec(m["key"], int(m["min"]), int(m["max"]))
                    for m in _OPTION_LINE.finditer(_block(text, "RNNPOOL_OPTIONS")))
    if len(options) != constants["RNNPOOL_NUM_OPTIONS"]:
        raise RuntimeError(f"{HEADER_NAME}: RNNPOOL_OPTIONS does not list {constants['RNNPOOL_NUM_OPTIONS']} options")
    return OpContract(
        custom_code=str(constants["RNNPOOL_CUSTOM_CODE"]), version=int(constants["RNNPOOL_OP_VERSION"]),
        inputs=tensors("RNNPOOL_INPUTS", "RNNPOOL_NUM_INPUTS"),
        outputs=tensors("RNNPOOL_OUTPUTS", "RNNPOOL_NUM_OUTPUTS"),
        options=options, constants={k: v for k, v in constants.items() if isinstance(v, int)})


@functools.lru_cache(maxsize=1)
def contract() -> OpContract:
    path: pathlib.Path = native_sources.source_dir() / HEADER_NAME
    return parse_contract(path.read_text())
