"""Custom-op contracts, read from the C headers that define them.

Each custom op has one contract header (X-macro lists of its name, version,
inputs, outputs, options and limits) that its C kernel compiles and this module
parses, so converter, checker and kernel cannot disagree:

* RNNPool: ``custom_ops/rnnpool/rnnpool_op_contract.h`` (macros ``RNNPOOL_*``);
* InvertedResidual: ``custom_ops/inverted_residual/inverted_residual_op_contract.h``
  (macros ``INVRES_*``).

One parser serves every header: a tensor line is
``X(ENUM, index, "name", INT8_TYPE, FLOAT_TYPE, "shape"[, REQUIRED|OPTIONAL])``
(FLOAT_TYPE ``NONE``: no float32 variant; no presence field: required), an
option line ``X(ENUM, "key", min, max)``; an optional ``PREFIX_OPTION_DEFAULTS``
block lists ``X(ENUM, default)`` for the options a model may leave out, an optional
``PREFIX_QUANTIZATION`` block ``X("name", KIND)`` how each tensor is quantized.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import re
from typing import Dict, Mapping, Optional, Tuple

from . import sources as native_sources

HEADER_NAME = "rnnpool_op_contract.h"


@dataclasses.dataclass(frozen=True)
class ContractSource:
    """Where an op's contract lives: its header and the prefix of its macros."""

    op: str  # the key of sources.OP_SOURCES
    header: str
    prefix: str


RNNPOOL = ContractSource("rnnpool", HEADER_NAME, "RNNPOOL")
INVERTED_RESIDUAL = ContractSource("inverted_residual", "inverted_residual_op_contract.h", "INVRES")

_TENSOR_LINE = re.compile(
    r'X\((?P<enum>[A-Z0-9_]+), (?P<index>\d+), "(?P<name>[a-z0-9_]+)", '
    r'(?P<int8>[A-Z0-9]+), (?P<float>[A-Z0-9]+), "(?P<shape>[^"]*)"(?:, (?P<presence>REQUIRED|OPTIONAL))?\)'
)
_OPTION_LINE = re.compile(r'X\((?P<enum>[A-Z0-9_]+), "(?P<key>[a-z0-9_]+)", (?P<min>-?\d+), (?P<max>-?\d+)\)')
_DEFAULT_LINE = re.compile(r'X\((?P<enum>[A-Z0-9_]+), (?P<default>-?\d+)\)')
_QUANTIZATION_LINE = re.compile(r'X\("(?P<name>[a-z0-9_]+)", (?P<kind>[A-Z_]+)\)')
QUANTIZATION_KINDS = ("PER_TENSOR", "SYMMETRIC_ROWS", "FIXED_POINT")


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    index: int
    name: str
    int8_type: str  # "INT8", "INT16", "INT32" or "FLOAT32"
    float_type: str  # "NONE" when the op has no float32 variant
    shape: str
    optional: bool = False  # the operator may list -1 in its place


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    key: str
    minimum: int
    maximum: int
    default: Optional[int] = None  # None: the option is required


@dataclasses.dataclass(frozen=True)
class OpContract:
    custom_code: str
    version: int
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]
    options: Tuple[OptionSpec, ...]
    constants: Mapping[str, int]
    quantization: Mapping[str, str] = dataclasses.field(default_factory=dict)  # tensor name -> kind

    def input_index(self, name: str) -> int:
        for spec in self.inputs:
            if spec.name == name:
                return spec.index
        raise KeyError(f"the {self.custom_code} op has no input named {name!r}")

    def check_options(self, options: Mapping[str, int]) -> None:
        """Raises ValueError naming the first missing, unknown or out-of-range option
        (an option with a default may be left out)."""
        op = self.custom_code
        known = {o.key: o for o in self.options}
        for key in options:
            if key not in known:
                raise ValueError(f"unknown {op} option {key!r}")
        for spec in self.options:
            if spec.key not in options:
                if spec.default is not None:
                    continue
                raise ValueError(f"{op} option {spec.key!r} is missing")
            value = options[spec.key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{op} option {spec.key!r} must be an integer, got {value!r}")
            if not spec.minimum <= value <= spec.maximum:
                raise ValueError(f"{op} option {spec.key!r}={value} is outside [{spec.minimum}, {spec.maximum}]")

    def with_defaults(self, options: Mapping[str, int]) -> Dict[str, int]:
        """The options with every omitted optional key at its default."""
        return {**{o.key: o.default for o in self.options if o.default is not None}, **options}

    def without_defaults(self, options: Mapping[str, int]) -> Dict[str, int]:
        """The options minus optional keys that equal their default (what writers store)."""
        defaults = {o.key: o.default for o in self.options if o.default is not None}
        return {k: v for k, v in options.items() if k not in defaults or v != defaults[k]}


def _block(text: str, macro: str, header: str) -> str:
    match = re.search(rf"#define {macro}\(X\)(.*?)(?:\n\s*\n|\n#)", text, re.S)
    if not match:
        raise RuntimeError(f"{header}: macro {macro} not found")
    return match.group(1)


def parse_contract(text: str, prefix: str = "RNNPOOL", header: str = HEADER_NAME) -> OpContract:
    """The contract in a header's text whose macros start with `prefix`."""
    define = re.compile(rf'#define ({prefix}_[A-Z0-9_]+) ("[^"]*"|-?\d+)\s*$')
    constants: Dict[str, object] = {}
    for line in text.splitlines():
        m = define.match(line.strip())
        if m:
            value = m.group(2)
            constants[m.group(1)] = value.strip('"') if value.startswith('"') else int(value)
    for required in ("CUSTOM_CODE", "OP_VERSION", "NUM_INPUTS", "NUM_OUTPUTS", "NUM_OPTIONS"):
        if f"{prefix}_{required}" not in constants:
            raise RuntimeError(f"{header}: {prefix}_{required} is not defined")

    def tensors(macro: str, count_macro: str) -> Tuple[TensorSpec, ...]:
        specs = tuple(
            TensorSpec(int(m["index"]), m["name"], m["int8"], m["float"], m["shape"], m["presence"] == "OPTIONAL")
            for m in _TENSOR_LINE.finditer(_block(text, macro, header))
        )
        if [s.index for s in specs] != list(range(constants[count_macro])):
            raise RuntimeError(f"{header}: {macro} does not list indices 0..{constants[count_macro] - 1}")
        return specs

    has_defaults = re.search(rf"#define {prefix}_OPTION_DEFAULTS\(X\)", text) is not None
    defaults = (
        {
            m["enum"]: int(m["default"])
            for m in _DEFAULT_LINE.finditer(_block(text, f"{prefix}_OPTION_DEFAULTS", header))
        }
        if has_defaults
        else {}
    )
    lines = list(_OPTION_LINE.finditer(_block(text, f"{prefix}_OPTIONS", header)))
    options = tuple(OptionSpec(m["key"], int(m["min"]), int(m["max"]), defaults.get(m["enum"])) for m in lines)
    if len(options) != constants[f"{prefix}_NUM_OPTIONS"]:
        raise RuntimeError(f"{header}: {prefix}_OPTIONS does not list {constants[f'{prefix}_NUM_OPTIONS']} options")
    unknown = set(defaults) - {m["enum"] for m in lines}
    if unknown:
        raise RuntimeError(
            f"{header}: {prefix}_OPTION_DEFAULTS names options not in {prefix}_OPTIONS: {sorted(unknown)}"
        )
    for spec in options:
        if spec.default is not None and not spec.minimum <= spec.default <= spec.maximum:
            raise RuntimeError(f"{header}: default of {spec.key!r} is outside its range")
    inputs = tensors(f"{prefix}_INPUTS", f"{prefix}_NUM_INPUTS")
    outputs = tensors(f"{prefix}_OUTPUTS", f"{prefix}_NUM_OUTPUTS")
    quantization: Dict[str, str] = {}
    if re.search(rf"#define {prefix}_QUANTIZATION\(X\)", text):
        for m in _QUANTIZATION_LINE.finditer(_block(text, f"{prefix}_QUANTIZATION", header)):
            if m["kind"] not in QUANTIZATION_KINDS or m["name"] in quantization:
                raise RuntimeError(f"{header}: {prefix}_QUANTIZATION line {m[0]!r} is invalid or repeated")
            quantization[m["name"]] = m["kind"]
        if set(quantization) != {s.name for s in inputs + outputs}:
            raise RuntimeError(f"{header}: {prefix}_QUANTIZATION must name every input and output once")
    return OpContract(
        custom_code=str(constants[f"{prefix}_CUSTOM_CODE"]),
        version=int(constants[f"{prefix}_OP_VERSION"]),
        inputs=inputs,
        outputs=outputs,
        options=options,
        constants={k: v for k, v in constants.items() if isinstance(v, int)},
        quantization=quantization,
    )


@functools.cache
def load_contract(source: ContractSource) -> OpContract:
    path: pathlib.Path = native_sources.source_dir(source.op) / source.header
    return parse_contract(path.read_text(), source.prefix, source.header)


def contract() -> OpContract:
    """The RNNPool op's contract."""
    return load_contract(RNNPOOL)


def inverted_residual_contract() -> OpContract:
    """The InvertedResidual op's contract."""
    return load_contract(INVERTED_RESIDUAL)


def contract_for_code(custom_code: str) -> Optional[OpContract]:
    """The contract of the custom op with this custom code, or None if no op of ours has it."""
    for source in (RNNPOOL, INVERTED_RESIDUAL):
        found = load_contract(source)
        if found.custom_code == custom_code:
            return found
    return None
