"""What each kernel takes from the arena, per target.

For every operator this says what TFLM's kernels do with the arena (read from the
kernels at commit 90b983c2: kernels/*.cc and *_common.cc for the reference kernels,
kernels/cmsis_nn/*.cc for the M4, and CMSIS-NN's *_get_buffer_size* at 4ab83cc3):
  init        - AllocatePersistentBuffer in Init (the OpData), persistent (tail);
  persistent  - AllocatePersistentBuffer in Prepare (per-channel multipliers, ...);
  scratch     - RequestScratchBufferInArena in Prepare, planned in the head for the
                operator's own step only;
  temps       - tensors Prepare opens with AllocateTemp{Input,Output}Tensor (temporary
                TfLiteTensor structs in the head, released after the node: they only
                matter for the smallest arena that still allocates).
Kernels not modelled get a conservative guess and `certain=False`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional

from ..core.contract import contract, inverted_residual_contract
from ..core.errors import RNNPoolError
from ..tflite.tensor_types import TensorType
from .graph import Graph, Operator, Tensor
from .targets import Target

INT8, INT16, FLOAT32, INT4 = TensorType.INT8, TensorType.INT16, TensorType.FLOAT32, TensorType.INT4


@dataclasses.dataclass
class KernelMemory:
    init: List[int] = dataclasses.field(default_factory=list)
    persistent: List[int] = dataclasses.field(default_factory=list)
    scratch: List[int] = dataclasses.field(default_factory=list)
    temps: List[int] = dataclasses.field(default_factory=list)
    certain: bool = True
    note: str = ""


class _Op:
    """An operator with its tensors at hand."""

    def __init__(self, graph: Graph, op: Operator, target: Target):
        self.graph, self.op, self.target = graph, op, target
        self.tensors = graph.main.tensors

    def input(self, i: int) -> Optional[Tensor]:
        refs = self.op.inputs
        return self.tensors[refs[i]] if i < len(refs) and refs[i] >= 0 else None

    def output(self, i: int) -> Optional[Tensor]:
        refs = self.op.outputs
        return self.tensors[refs[i]] if i < len(refs) and refs[i] >= 0 else None

    def ins(self, *indices: int) -> List[int]:
        """Tensor numbers of these inputs (the ones present), for temps."""
        return [t.index for t in (self.input(i) for i in indices) if t is not None]

    def outs(self, *indices: int) -> List[int]:
        return [t.index for t in (self.output(i) for i in indices) if t is not None]

    def opt(self, name: str, default=None):
        return self.op.options.get(name, default)

    @property
    def cmsis(self) -> bool:
        return self.target.kernels == "cmsis_nn"

    def op_data(self, name: str) -> int:
        return self.target.op_data[name]


def _same_padding(in_size: int, filter_size: int, stride: int, dilation: int, padding_same: bool) -> int:
    """ComputePaddingHeightWidth (kernels/padding.h): the leading padding."""
    effective = (filter_size - 1) * dilation + 1
    out = (in_size + stride - 1) // stride if padding_same else (in_size - effective + stride) // stride
    return max((out - 1) * stride + effective - in_size, 0) // 2


def _int4_unpack(o: _Op, filter_t: Tensor) -> List[int]:
    return [filter_t.elements] if filter_t is not None and filter_t.dtype == INT4 else []


# ---- CMSIS-NN buffer sizes (ARM_MATH_DSP, no MVE, GCC) ------------------------------------


def cmsis_conv_s8_buffer(in_h, in_c, f_h, f_w, f_c, stride_w, stride_h, pad_w, pad_h, dil_w, dil_h) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size -> ..._dsp (arm_convolve_get_buffer_sizes_s8.c)."""
    if pad_w == 0 and pad_h == 0 and f_w == 1 and f_h == 1 and dil_w == 1 and dil_h == 1 and in_c == f_c:
        return 0  # 1x1: the fast path's buffer is non-zero only with the Arm compiler
    rhs_cols = f_w * f_h * in_c
    # 1xN and the general case both use arm_convolve_s8_get_buffer_size without MVE.
    return 2 * (rhs_cols + (-rhs_cols) % 4) * 2


def cmsis_depthwise_s8_buffer(in_n, in_c, out_c, f_h, f_w, pad_w, pad_h, dil_w, dil_h) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size -> ..._dsp."""
    if in_c == out_c and in_n == 1 and dil_w == 1 and dil_h == 1:
        if f_w == 3 and f_h == 3 and pad_h <= 1 and pad_w <= 1:
            return 0
        return in_c * f_w * f_h * 2
    return 0


# ---- the operators ----------------------------------------------------------------------------


def _conv(o: _Op) -> KernelMemory:
    inp, filt = o.input(0), o.input(1)
    channels = filt.shape[0]
    calc_temps = o.ins(0, 1, 2) + o.outs(0)  # CalculateOpDataConv
    if not o.cmsis:
        return KernelMemory(
            [o.op_data("OpDataConv")], [4 * channels] * 2, _int4_unpack(o, filt), o.outs(0) + o.ins(0, 1) + calc_temps
        )
    m = KernelMemory([o.op_data("CmsisConvOpData")], temps=o.ins(0, 1) + o.outs(0) + calc_temps)
    if inp.dtype in (INT8, INT16):
        m.persistent = [4 * channels] * 2
        pad_same = o.opt("Padding") == 0
        sw, sh = o.opt("StrideW", 1), o.opt("StrideH", 1)
        dw, dh = o.opt("DilationWFactor", 1), o.opt("DilationHFactor", 1)
        _, in_h, in_w, in_c = inp.shape
        _, f_h, f_w, f_c = filt.shape
        pad_h = _same_padding(in_h, f_h, sh, dh, pad_same)
        pad_w = _same_padding(in_w, f_w, sw, dw, pad_same)
        if inp.dtype == INT8:
            size = cmsis_conv_s8_buffer(in_h, in_c, f_h, f_w, f_c, sw, sh, pad_w, pad_h, dw, dh)
        else:  # int16: Prepare reads the bias as output 2, i.e. never, so it always asks
            size = 2 * in_c * f_w * f_h * 2  # arm_convolve_s16_get_buffer_size without MVE
        m.scratch = [size] if size > 0 else []
    return m


def _depthwise(o: _Op) -> KernelMemory:
    inp, filt, out = o.input(0), o.input(1), o.output(0)
    channels = filt.shape[3]
    calc_temps = o.ins(0, 1, 2) + o.outs(0)  # CalculateOpDataDepthwiseConv
    if not o.cmsis:
        return KernelMemory(
            [o.op_data("OpDataConv")], [4 * channels] * 2, _int4_unpack(o, filt), o.outs(0) + o.ins(0, 1) + calc_temps
        )
    m = KernelMemory([o.op_data("CmsisDepthwiseConvOpData")], temps=o.ins(0, 1) + o.outs(0) + calc_temps)
    if inp.dtype in (INT8, INT16):
        m.persistent = [4 * channels] * 2
    if inp.dtype == INT8:
        pad_same = o.opt("Padding") == 0
        dw, dh = o.opt("DilationWFactor", 1), o.opt("DilationHFactor", 1)
        n, in_h, in_w, in_c = inp.shape
        _, f_h, f_w, _ = filt.shape
        pad_h = _same_padding(in_h, f_h, o.opt("StrideH", 1), dh, pad_same)
        pad_w = _same_padding(in_w, f_w, o.opt("StrideW", 1), dw, pad_same)
        size = cmsis_depthwise_s8_buffer(n, in_c, out.shape[3], f_h, f_w, pad_w, pad_h, dw, dh)
        if filt.dtype == INT4:
            m.certain, m.note = False, "int4 depthwise buffer taken as the int8 one"
        m.scratch = [size] if size > 0 else []
    return m


def _fully_connected(o: _Op) -> KernelMemory:
    inp, filt, out = o.input(0), o.input(1), o.output(0)
    temps = o.ins(0, 1, 2) + o.outs(0)
    per_channel = inp.dtype != FLOAT32 and filt.quant_channels > 1
    persistent = [4 * filt.quant_channels] * 2 if per_channel else []
    if not o.cmsis:
        return KernelMemory([o.op_data("OpDataFullyConnected")], persistent, _int4_unpack(o, filt), temps)
    m = KernelMemory([o.op_data("CmsisFullyConnectedOpData")], persistent, [], temps)
    if inp.dtype == INT8 and filt.dtype != INT4:
        accum_depth = filt.shape[-1]
        if len(out.shape) > 2 and accum_depth % 4 == 0 and not per_channel:
            m.scratch = [out.shape[-1] * 4 * 2]  # per-channel multipliers for the 1x1-conv path
        # arm_fully_connected_s8_get_buffer_size and the 1x1 fast path need 0 bytes on a DSP M4.
    return m


def _simple(op_data: str, *, inputs=(0,), outputs=(0,), cmsis_op_data: Optional[str] = None):
    def model(o: _Op) -> KernelMemory:
        name = cmsis_op_data if o.cmsis and cmsis_op_data else op_data
        return KernelMemory([o.op_data(name)], temps=o.ins(*inputs) + o.outs(*outputs))

    return model


def _average_pool(o: _Op) -> KernelMemory:
    inp, out = o.input(0), o.output(0)
    if not o.cmsis:
        return KernelMemory([o.op_data("OpDataPooling")], temps=o.ins(0) + o.outs(0))
    m = KernelMemory([o.op_data("CmsisPoolingOpData")], temps=(o.ins(0) + o.outs(0)) * 2)
    if inp.dtype in (INT8, INT16):
        m.scratch = [out.shape[3] * 4]  # arm_avgpool_s{8,16}_get_buffer_size_dsp: channels * 4
    return m


def _max_pool(o: _Op) -> KernelMemory:
    return KernelMemory([o.op_data("CmsisPoolingOpData" if o.cmsis else "OpDataPooling")], temps=o.ins(0) + o.outs(0))


def _mean(o: _Op) -> KernelMemory:
    inp, axis, out = o.input(0), o.input(1), o.output(0)
    m = KernelMemory([o.op_data("OpDataReduce")], temps=o.ins(0) + o.outs(0) + o.ins(1) + o.ins(0, 1))
    if inp.dtype in (INT8, INT16):
        m.scratch.append(4 * out.elements)
        m.temps += o.outs(0)
    m.scratch += [4 * len(inp.shape), 4 * axis.elements]
    return m


def _softmax(o: _Op) -> KernelMemory:
    m = KernelMemory([o.op_data("CmsisSoftmaxParams" if o.cmsis else "SoftmaxParams")], temps=o.ins(0) + o.outs(0))
    if o.input(0).dtype == INT16:
        m.persistent = [2 * 513, 2 * 513]  # exp and 1/(1+x) tables, LUTSize<int16_t>() entries each
    return m


def _concatenation(o: _Op) -> KernelMemory:
    count = len(o.op.inputs)
    return KernelMemory([o.op_data("ConcatenationOpData")], temps=o.ins(0) + o.outs(0) + o.ins(*range(count)))


def _reshape(o: _Op) -> KernelMemory:
    return KernelMemory([], temps=o.ins(0) + o.outs(0))  # no Init: no OpData


def _rnnpool(o: _Op) -> KernelMemory:
    from .rnnpool_buffers import rnnpool_memory

    return rnnpool_memory(o)


def _inverted_residual(o: _Op) -> KernelMemory:
    from .invres_buffers import invres_memory

    return invres_memory(o)


def _unknown(o: _Op) -> KernelMemory:
    # A generous OpData and no scratch: most TFLM kernels need less; marked uncertain.
    return KernelMemory(
        [128],
        temps=o.ins(*range(len(o.op.inputs))) + o.outs(*range(len(o.op.outputs))),
        certain=False,
        note=f"{o.op.name} is not modelled: guessed 128 bytes of OpData, no scratch",
    )


KERNELS: Dict[str, Callable[[_Op], KernelMemory]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _simple("OpDataAdd", inputs=(0, 1), cmsis_op_data="CmsisAddOpData"),
    "MUL": _simple("OpDataMul", inputs=(0, 1)),
    "AVERAGE_POOL_2D": _average_pool,
    "MAX_POOL_2D": _max_pool,
    "MEAN": _mean,
    "RESHAPE": _reshape,
    "SOFTMAX": _softmax,
    "QUANTIZE": _simple("OpDataQuantizeReference"),
    "DEQUANTIZE": _simple("DequantizeOpData"),
    "PAD": _simple("PadOpData", inputs=(0, 1)),
    "PADV2": _simple("PadOpData", inputs=(0, 1, 2)),
    "CONCATENATION": _concatenation,
    "LOGISTIC": _simple("OpDataLogistic"),
    "RELU": _simple("ReluOpData"),
    "RELU6": _simple("Relu6OpData", outputs=()),
    "STRIDED_SLICE": _simple("StridedSliceParams", inputs=(0, 1, 2, 3)),
    contract().custom_code: _rnnpool,
    inverted_residual_contract().custom_code: _inverted_residual,
}


def kernel_memory(graph: Graph, op: Operator, target: Target) -> KernelMemory:
    try:
        return KERNELS.get(op.name, _unknown)(_Op(graph, op, target))
    except (AttributeError, IndexError, TypeError, ValueError):
        # A missing tensor or a shape of the wrong rank: TFLM's Prepare would reject it too.
        raise RNNPoolError(
            f"operator {op.index} ({op.name}): its tensors do not have the shapes TFLM's {op.name} kernel expects"
        ) from None


def builtin_data(op: Operator, target: Target):
    """(sizeof, alignof) of the TfLite*Params the op's parser allocates, or None."""
    return None if op.is_custom else target.builtin_params.get(op.name)
