"""Arena bytes of the RNNPool custom op: the one place the arena model knows them.

The TFLM op (custom_ops/rnnpool, issue 5) takes from the arena:
  Init    - its OpData (persistent): the parsed options and bookkeeping
            (custom_ops/rnnpool/rnnpool_tflm.cc);
  Prepare - the C core's prepared parameters, rnnpool_{s8,f32}_prepared_bytes(cfg)
            bytes (persistent), and one scratch request of
            rnnpool_{s8,f32}_scratch_bytes(cfg) bytes.
The two C size functions are asked directly (rnnpool_tflm.runtime.native). Their buffers hold
no pointers or size_t (custom_ops/rnnpool/rnnpool.h), so the host's answer is the M4's
too; tests/test_kernel_m4.py checks that on the emulated M4. Only the OpData, a C++
struct with a pointer and a size_t, depends on the target.
"""

from __future__ import annotations

from typing import Tuple

from ..core.errors import RNNPoolError
from ..tflite.tensor_types import TensorType


# struct OpData of custom_ops/rnnpool/rnnpool_tflm.cc, member by member as (size, align)
# for `p`-byte pointers; tests/test_arena_struct_sizes.py compiles the op to check it.
def _op_data_members(p: int):
    from ..core.contract import contract

    options = int(contract().constants["RNNPOOL_NUM_OPTIONS"])
    return [
        (4 * options, 4),  # int32_t options[RNNPOOL_NUM_OPTIONS]
        (1, 1),  # bool options_ok
        (96, 1),  # char options_error[96]
        (1, 1),  # bool is_int8
        (p, p),  # const void* prepared
        (p, p),  # size_t scratch_bytes
        (4, 4),
    ]  # int scratch_index


def op_data_bytes(pointer_bytes: int) -> int:
    """sizeof(OpData) of the TFLM RNNPool op on a target with `pointer_bytes` pointers."""
    offset, align = 0, 1
    for size, member_align in _op_data_members(pointer_bytes):
        offset = -(-offset // member_align) * member_align + size
        align = max(align, member_align)
    return -(-offset // align) * align


def _options(o) -> dict:
    """The op's options, omitted optional ones at their contract default."""
    from flatbuffers import flexbuffers

    from ..core.contract import contract

    try:
        options = flexbuffers.Loads(o.op.custom_options or b"")
    except Exception as exc:
        raise RNNPoolError(f"RNNPool operator {o.op.index}: unreadable options ({exc})") from None
    if not isinstance(options, dict):
        raise RNNPoolError(f"RNNPool operator {o.op.index}: options are not a flexbuffer map")
    return contract().with_defaults(options)


def c_config(o):
    """The rnnpool_config (native.CConfig) of an RNNPool operator (`o`: kernels._Op), and its variant."""
    from ..runtime import native

    inp, w1, w2 = o.input(0), o.input(1), o.input(4)
    if inp is None or w1 is None or w2 is None or len(inp.shape) != 4 or len(w1.shape) != 2 or len(w2.shape) != 2:
        raise RNNPoolError(f"RNNPool operator {o.op.index}: inputs do not have the op contract's shapes")
    options = _options(o)
    try:
        n, rows, cols, channels = inp.shape
        cfg = native.CConfig(
            batch=n,
            in_rows=rows,
            in_cols=cols,
            channels=channels,
            patch_rows=int(options["patch_rows"]),
            patch_cols=int(options["patch_cols"]),
            stride_rows=int(options["stride_rows"]),
            stride_cols=int(options["stride_cols"]),
            padding=int(options["padding"]),
            hidden1=w1.shape[0],
            hidden2=w2.shape[0],
            gate_activation=int(options["gate_activation"]),
            update_activation=int(options["update_activation"]),
            output_pad_bottom=int(options["output_pad_bottom"]),
            output_pad_right=int(options["output_pad_right"]),
            rnn1_mode=int(options["rnn1_mode"]),
        )
    except KeyError as exc:
        raise RNNPoolError(f"RNNPool operator {o.op.index}: option {exc} missing") from None
    return cfg, ("int8" if inp.dtype == TensorType.INT8 else "float32")


def rnnpool_sizes(o) -> Tuple[int, int, int]:
    """(OpData, prepared, scratch) bytes of one RNNPool operator on o.target."""
    from ..runtime import native

    cfg, variant = c_config(o)
    try:
        prepared, scratch = native.buffer_bytes(cfg, variant)
    except RNNPoolError as exc:
        raise RNNPoolError(f"RNNPool operator {o.op.index}: {exc}") from None
    return op_data_bytes(o.target.pointer_bytes), prepared, scratch


def rnnpool_inplace_lag(o) -> int:
    """The op's in-place lag (bytes, rnnpool.h rnnpool_s8_inplace_lag): its output may overlap its
    input when input_start - output_start >= lag (the same on every target)."""
    from ..runtime import native

    cfg, variant = c_config(o)
    try:
        return native.inplace_lag(cfg, variant)
    except RNNPoolError as exc:
        raise RNNPoolError(f"RNNPool operator {o.op.index}: {exc}") from None


def rnnpool_memory(o):
    """KernelMemory of one RNNPool operator."""
    from .kernels import KernelMemory

    op_data, prepared, scratch = rnnpool_sizes(o)
    temps = o.ins(*range(len(o.op.inputs))) + o.outs(0)
    return KernelMemory([op_data], [prepared], [scratch] if scratch > 0 else [], temps)
