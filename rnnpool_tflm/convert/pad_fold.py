"""Folds a replicate pad after an RNNPool op into the op (its output_pad_* options).

EdgeML's models pad RNNPool's output at the bottom and right with copies of the
last row and column (F.pad(x, (0, 1, 0, 1), mode="replicate")); the zoo builds
that from Cropping2D + Concatenate, which convert to

    y0 = RNNPool(x);  s = STRIDED_SLICE(y0, last row);  y1 = CONCATENATION([y0, s], axis 1)
                      t = STRIDED_SLICE(y1, last col);  y2 = CONCATENATION([y1, t], axis 2)

Run as ops, that is a second copy of the map in the arena and two extra passes.
The RNNPool op writes the padded map itself when its output_pad_bottom/right
options say so (docs/custom_op.md), so a chain of such steps is replaced by
those options, and the op writes the chain's last tensor directly.

A step is folded only when it provably copies bytes: a CONCATENATION (no fused
activation) of the current tensor followed by slices (STRIDED_SLICE or SLICE,
unit strides, no shrink/new-axis/ellipsis masks) that each select exactly its
last row (axis 1) or last column (axis 2), every tensor of the step int8 with
the same single scale and zero point, and no other reader of the current tensor
or the slices (nor a graph output among them). Rows and columns may come in any
order (the corner is the same value either way); the totals stay within the
contract's option ranges.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ..core.contract import contract
from ..tflite import model as tfm

_SLICES = (tfm.BuiltinOperator.STRIDED_SLICE, tfm.BuiltinOperator.SLICE)


def fold_replicate_pads(tflite: bytes) -> Tuple[bytes, int]:
    """The model with every foldable pad chain after an RNNPool op folded into it,
    and how many RNNPool ops took one."""
    m = tfm.read_model(tflite, "model")
    folded = sum(
        _fold_after(m, sg, op) for sg in m.subgraphs for op in list(sg.operators or []) if tfm.is_rnnpool(m, op)
    )
    if not folded:
        return tflite, 0
    tfm.remove_unused(m)
    return tfm.write_model(m), folded


def _readers(sg) -> Dict[int, List[object]]:
    readers: Dict[int, List[object]] = {}
    for op in sg.operators or []:
        for t in set(int(i) for i in (op.inputs if op.inputs is not None else []) if i >= 0):
            readers.setdefault(t, []).append(op)
    return readers


def _fold_after(m, sg, rnnpool_op) -> int:
    pad_max = {o.key: o.maximum for o in contract().options}
    options = tfm.decode_options(rnnpool_op.customOptions)
    pads = [options["output_pad_bottom"], options["output_pad_right"]]
    limits = [pad_max["output_pad_bottom"], pad_max["output_pad_right"]]
    graph_io = {int(t) for t in list(sg.inputs) + list(sg.outputs)}
    start = current = int(rnnpool_op.outputs[0])
    removed: List[object] = []
    while current not in graph_io:
        step = _pad_step(m, sg, current, _readers(sg), graph_io)
        if step is None:
            break
        axis, copies, ops, result = step
        if pads[axis - 1] + copies > limits[axis - 1]:
            break
        pads[axis - 1] += copies
        removed += ops
        current = result
    if current == start:
        return 0
    tfm.write_options(rnnpool_op, {**options, "output_pad_bottom": pads[0], "output_pad_right": pads[1]})
    rnnpool_op.outputs = [current]
    if current not in graph_io:  # keep the convention: the op's output is named after its layer
        sg.tensors[current].name = sg.tensors[start].name
    sg.operators = [op for op in sg.operators if all(op is not r for r in removed)]
    return 1


def _pad_step(m, sg, current: int, readers, graph_io) -> Optional[Tuple[int, int, List[object], int]]:
    """(axis, copies, the step's ops, its result tensor) when `current` is only read by
    one replicate-pad step as described in the module docstring; else None."""
    ops = readers.get(current, [])
    concats = [op for op in ops if _builtin(m, op) == tfm.BuiltinOperator.CONCATENATION]
    if len(concats) != 1:
        return None
    concat = concats[0]
    opts = concat.builtinOptions
    inputs = [int(t) for t in concat.inputs]
    shape = tfm.tensor_shape(sg.tensors[current])
    if (
        opts is None
        or opts.fusedActivationFunction != 0
        or len(shape) != 4
        or inputs[0] != current
        or inputs.count(current) != 1
        or len(inputs) < 2
    ):
        return None
    axis = opts.axis + 4 if opts.axis < 0 else opts.axis
    if axis not in (1, 2):
        return None
    copies = inputs[1:]
    slices = [op for op in ops if op is not concat]
    producers = {int(op.outputs[0]): op for op in slices if op.outputs is not None and len(op.outputs) == 1}
    if set(copies) != set(producers) or len(producers) != len(slices):
        return None  # the current tensor has a reader that is not part of the step
    result = int(concat.outputs[0])
    want = list(shape)
    want[axis] += len(copies)
    if tfm.tensor_shape(sg.tensors[result]) != tuple(want):
        return None
    for t, op in producers.items():
        if (
            t in graph_io
            or any(r is not concat for r in readers.get(t, []))
            or not _selects_last(m, sg, op, current, shape, axis)
        ):
            return None
    if not _same_quantization([sg.tensors[i] for i in [current, result, *producers]]):
        return None
    return axis, len(copies), [*slices, concat], result


def _builtin(m, op) -> int:
    return tfm.builtin_code(m.operatorCodes[op.opcodeIndex])


def _selects_last(m, sg, op, source: int, shape, axis: int) -> bool:
    """Whether a slice op reads `source` and selects exactly its last index along `axis`, all of every other axis."""
    code = _builtin(m, op)
    inputs = [int(t) for t in op.inputs]
    if code not in _SLICES or not inputs or inputs[0] != source:
        return False
    consts = [tfm.constant_data(m, sg.tensors[t]) for t in inputs[1:]]
    if any(c is None or c.shape != (4,) for c in consts):
        return False
    ranges = (
        _strided_slice_ranges(op, shape, *consts)
        if code == tfm.BuiltinOperator.STRIDED_SLICE
        else _slice_ranges(shape, *consts)
    )
    want = [(0, d) for d in shape]
    want[axis] = (shape[axis] - 1, shape[axis])
    return ranges == want


def _slice_ranges(shape, begin, size) -> Optional[list]:
    ranges = []
    for d, b, n in zip(shape, begin.tolist(), size.tolist(), strict=True):
        end = d if n == -1 else b + n
        if not 0 <= b <= end <= d:
            return None
        ranges.append((b, end))
    return ranges


def _strided_slice_ranges(op, shape, begin, end, strides) -> Optional[list]:
    o = op.builtinOptions
    if (
        o is None
        or o.ellipsisMask
        or o.newAxisMask
        or o.shrinkAxisMask
        or getattr(o, "offset", False)
        or np.any(strides != 1)
    ):
        return None
    ranges = []
    for d, (dim, b, e) in enumerate(zip(shape, begin.tolist(), end.tolist(), strict=True)):
        b = 0 if o.beginMask >> d & 1 else (b + dim if b < 0 else b)
        e = dim if o.endMask >> d & 1 else (e + dim if e < 0 else e)
        ranges.append((min(max(b, 0), dim), min(max(e, 0), dim)))
    return ranges


def _same_quantization(tensors) -> bool:
    """All int8 with one identical (scale, zero point): copying bytes preserves the values."""
    ref = None
    for t in tensors:
        scales, zps, _ = tfm.quantization(t)
        if t.type != tfm.TensorType.INT8 or scales.size != 1 or zps.size != 1:
            return False
        q = (float(scales[0]), int(zps[0]))
        if ref is not None and q != ref:
            return False
        ref = q
    return True
