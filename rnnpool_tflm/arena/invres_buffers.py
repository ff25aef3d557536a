"""Arena bytes of the InvertedResidual custom op: the one place the arena model knows them.

The TFLM op (custom_ops/inverted_residual/inverted_residual_tflm.cc) takes from the arena:
  Init    - its OpData (persistent): the parsed options and bookkeeping;
  Prepare - the C core's prepared parameters, invres_s8_prepared_bytes(cfg) bytes
            (persistent), and one scratch request of invres_s8_scratch_bytes(cfg) bytes (the
            ring of expanded rows and the per-channel records), temporary TfLiteTensors for
            every input present and the output.
The two C size functions are asked directly (runtime.invres_native). Their buffers hold no
pointers or size_t (custom_ops/inverted_residual/inverted_residual.h), so the host's answer
is the M4's too. Only the OpData, a C++ struct with a pointer and a size_t, depends on the
target; tests/test_arena_struct_sizes.py compiles the op to check its layout.
"""

from __future__ import annotations

from typing import Tuple

from ..core.errors import RNNPoolError


def _op_data_members(p: int):
    """struct OpData of inverted_residual_tflm.cc, member by member as (size, align), for
    `p`-byte pointers; invres::Options (inverted_residual_options.h) is one member."""
    from ..core.contract import inverted_residual_contract

    options = int(inverted_residual_contract().constants["INVRES_NUM_OPTIONS"])
    parsed = _layout(
        [
            (4 * options, 4),  # int32_t values[INVRES_NUM_OPTIONS]
            (1, 1),  # bool ok
            (96, 1),
        ]
    )  # char error[96]
    return [
        parsed,  # invres::Options options
        (p, p),  # const void* prepared
        (p, p),  # size_t scratch_bytes
        (4, 4),
    ]  # int scratch_index


def _layout(members) -> Tuple[int, int]:
    """(sizeof, alignof) of a struct of these (size, align) members (the C ABI's rules)."""
    offset, align = 0, 1
    for size, member_align in members:
        offset = -(-offset // member_align) * member_align + size
        align = max(align, member_align)
    return -(-offset // align) * align, align


def op_data_bytes(pointer_bytes: int) -> int:
    """sizeof(OpData) of the TFLM InvertedResidual op on a target with `pointer_bytes` pointers."""
    return _layout(_op_data_members(pointer_bytes))[0]


def c_config(o):
    """The invres_config (runtime.invres_native.CConfig) of an InvertedResidual operator
    (`o`: kernels._Op), as the op's Prepare builds it (invres::MakeConfig)."""
    from ..core.contract import inverted_residual_contract
    from ..runtime import invres_native
    from ..tflite.inverted_residual_op import decode_options

    c = inverted_residual_contract()
    where = f"InvertedResidual operator {o.op.index}"
    x, dw, project = (o.input(c.input_index(name)) for name in ("input", "depthwise_filter", "project_filter"))
    if x is None or dw is None or project is None or len(x.shape) != 4 or len(dw.shape) != 4 or len(project.shape) != 4:
        raise RNNPoolError(f"{where}: inputs do not have the op contract's shapes")
    try:
        options = decode_options(o.op.custom_options)
    except RNNPoolError as exc:
        raise RNNPoolError(f"{where}: {exc}") from None
    n, rows, cols, ci = x.shape
    return invres_native.CConfig(
        batch=n,
        in_rows=rows,
        in_cols=cols,
        in_channels=ci,
        expanded_channels=dw.shape[3],
        out_channels=project.shape[0],
        stride=options["stride"],
        expand=options["expand"],
        residual=options["residual"],
        expand_activation=options["expand_activation"],
        depthwise_activation=options["depthwise_activation"],
        project_activation=options["project_activation"],
        add_activation=options["add_activation"],
    )


def invres_sizes(o) -> Tuple[int, int, int]:
    """(OpData, prepared, scratch) bytes of one InvertedResidual operator on o.target."""
    from ..runtime import invres_native

    prepared, scratch = invres_native.buffer_bytes(c_config(o))
    if prepared == 0 or scratch == 0:  # the size functions' answer to a configuration eval rejects
        raise RNNPoolError(f"InvertedResidual operator {o.op.index}: the kernel rejects its configuration")
    return op_data_bytes(o.target.pointer_bytes), prepared, scratch


def invres_memory(o):
    """KernelMemory of one InvertedResidual operator."""
    from .kernels import KernelMemory

    op_data, prepared, scratch = invres_sizes(o)
    return KernelMemory([op_data], [prepared], [scratch], o.ins(*range(len(o.op.inputs))) + o.outs(0))
