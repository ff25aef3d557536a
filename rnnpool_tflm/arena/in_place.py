"""Which operators may write their output over their input, and how far (the lag).

A streamed operator whose output only ever overwrites input bytes it has already read for the
last time may have its output overlap its input: with input start I and output start O the
overlap is safe when I - O >= lag. For the RNNPool op the C core states the lag
(rnnpool_s8_inplace_lag, docs/kernel.md "In place"); for CONV_2D and the InvertedResidual op
it follows from the row order of the kernels (conv_inplace_lag, inverted_residual_inplace_lag).
A pair is a candidate only when the input is read by no later operator and is no subgraph
output (docs/arena.md, "Offline memory plan").
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

from .graph import Graph
from .kernels import _Op
from .targets import get_target


@dataclasses.dataclass(frozen=True)
class InPlace:
    """Operator `op` may write `output` over `input` when input_start - output_start >= lag."""

    op: int
    input: int
    output: int
    lag: int


def _lag(graph: Graph, op, target) -> Optional[int]:
    """The operator's in-place lag, None when it cannot run in place."""
    if op.name == "RNNPool":
        from .rnnpool_buffers import rnnpool_inplace_lag

        return rnnpool_inplace_lag(_Op(graph, op, target))
    if op.name == "CONV_2D":
        return conv_inplace_lag(graph, op)
    from ..core.contract import inverted_residual_contract

    if op.is_custom and op.name == inverted_residual_contract().custom_code:
        return inverted_residual_inplace_lag(graph, op)
    return None


def _row_lag(out_rows: int, out_row_bytes: int, first_future_read) -> Optional[int]:
    """max over output rows r of (end of row r - first input byte still to be read while row r
    is written); rows after which nothing is read again give no constraint."""
    lags = [(r + 1) * out_row_bytes - first_future_read(r) for r in range(out_rows) if first_future_read(r) is not None]
    return max(lags) if lags else None


def inverted_residual_inplace_lag(graph: Graph, op) -> Optional[int]:
    """In-place lag of the InvertedResidual op, from the loop of invres_s8_eval
    (custom_ops/inverted_residual/inverted_residual_s8.c), the same on every target: for output
    row r it first expands the input rows its 3x3 window needs and has not yet expanded (up to
    input row r*s - pad_top + 2; they go to the ring in scratch), then writes row r, reading
    the residual's input row r while it does. So while row r is written, the input still to be
    read starts at row r (residual) or else at row r*s - pad_top + 3 (the next expansion; none
    past the last row). None for batch > 1 or unreadable options."""
    from flatbuffers import flexbuffers

    tensors = graph.main.tensors
    x, y = (tensors[i] if i >= 0 else None for i in (op.inputs[0], op.outputs[0]))
    if x is None or y is None or len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1:
        return None
    try:
        options = flexbuffers.Loads(op.custom_options or b"")
        stride, residual = int(options["stride"]), bool(options["residual"])
    except Exception:
        return None
    _, rows, cols, cin = x.shape
    _, out_rows, out_cols, cout = y.shape
    if stride not in (1, 2) or out_rows != (rows + stride - 1) // stride:
        return None
    in_row = cols * cin
    pad_top = max((out_rows - 1) * stride + 3 - rows, 0) // 2

    def first_future_read(r: int) -> Optional[int]:
        if residual:
            return r * in_row
        next_row = r * stride - pad_top + 3
        return next_row * in_row if next_row < rows else None

    return _row_lag(out_rows, out_cols * cout, first_future_read)


def conv_inplace_lag(graph: Graph, op) -> Optional[int]:
    """In-place lag of a CONV_2D that both of TFLM's int8 kernels run as a raster walk: the
    reference ConvPerChannel (x86-64) and CMSIS-NN's arm_convolve_s8 (the M4 wrapper's choice
    for a kernel taller than 1 on an input taller than 1, neither 1x1 nor 1xN) visit output
    pixels row by row and write a pixel only after reading its window (CMSIS-NN: after the
    windows of a pair of pixels). While any pixel of output row r is written, every later read
    lies in the windows of rows >= r, which start at input row max(0, r*s - pad_top); so row
    r's end must not pass that row's start:
        lag = max over r of ((r + 1) * Wo * Co - max(0, r * s - pad_top) * W * Ci)   bytes.
    None (never in place) for anything else: batch > 1, grouped, dilated, non-int8, 1x1 or
    1xN convolutions (CMSIS-NN runs those with other functions)."""
    tensors = graph.main.tensors
    x, w, y = (tensors[i] if i >= 0 else None for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if x is None or w is None or y is None or len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        return None
    o = op.options
    if (
        {x.dtype, w.dtype, y.dtype} != {9}
        or x.shape[0] != 1
        or w.shape[3] != x.shape[3]
        or o.get("DilationHFactor", 1) != 1
        or o.get("DilationWFactor", 1) != 1
    ):
        return None
    _, rows, cols, cin = x.shape
    _, out_rows, out_cols, cout = y.shape
    kh, stride = w.shape[1], int(o.get("StrideH", 1))
    if kh < 2 or rows < 2 or stride < 1:
        return None
    pad_top = max((out_rows - 1) * stride + kh - rows, 0) // 2 if o.get("Padding") == 0 else 0  # SAME: 0
    return _row_lag(out_rows, out_cols * cout, lambda r: max(0, r * stride - pad_top) * cols * cin)


def in_place_candidates(graph: Graph, target="cortex-m4") -> List[InPlace]:
    """Input/output pairs that may overlap: a streamed op (RNNPool) whose input is read by no
    later operator and is no subgraph output."""
    target = get_target(target)
    sg = graph.main
    last_reader: Dict[int, int] = {}
    for op in sg.operators:
        for t in op.inputs:
            if t >= 0:
                last_reader[t] = op.index
    pairs = []
    for op in sg.operators:
        if len(op.outputs) != 1 or not op.inputs or op.inputs[0] < 0:
            continue
        x, y = op.inputs[0], op.outputs[0]
        if last_reader.get(x) != op.index or x in sg.outputs or x == y or list(op.inputs).count(x) != 1:
            continue
        lag = _lag(graph, op, target)
        if lag is not None:
            pairs.append(InPlace(op.index, x, y, lag))
    return pairs
