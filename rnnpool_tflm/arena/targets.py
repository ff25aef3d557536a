"""Sizes and alignments TFLM's arena accounting depends on, per build target.

Every number here is `sizeof`/`alignof` of a TFLM (commit 90b983c2) type as the
target's compiler lays it out. They were read from objects compiled against the TFLM
and CMSIS-NN headers (tests/test_arena_struct_sizes.py re-derives them when TFLM_DIR
is set):

- "x86-64": the tflite-micro Python wheel. 64-bit pointers, reference kernels, built
  with TF_LITE_STATIC_MEMORY and USE_TFLM_COMPRESSION (the official package enables
  compression: python/tflite_micro/pypi_build.sh), and the interpreter wrapper builds a
  RecordingMicroAllocator (python/tflite_micro/interpreter_wrapper.cc).
- "cortex-m4": arm-none-eabi-g++ 12 -mcpu=cortex-m4 -mthumb -mfloat-abi=hard. 32-bit
  pointers; the bare-metal EABI default of short enums (an enum of small values takes
  one byte, which shrinks several builtin-option structs); CMSIS-NN kernels
  (kernels/cmsis_nn/*.cc, ARM_MATH_DSP) where they exist, reference kernels otherwise;
  no compression (TFLM's Makefile default); a plain MicroInterpreter(model, resolver,
  arena, size), i.e. MicroAllocator + SingleArenaBufferAllocator + GreedyMemoryPlanner.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

from ..core.errors import RNNPoolError

Layout = Tuple[int, int]  # (sizeof, alignof)


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    description: str
    pointer_bytes: int
    kernels: str  # "reference" or "cmsis_nn"
    allocator: str  # "plain" (MicroAllocator) or "recording" (RecordingMicroAllocator)
    compression: bool  # USE_TFLM_COMPRESSION
    structs: Dict[str, Layout]
    builtin_params: Dict[str, Layout]
    op_data: Dict[str, int]

    def size(self, struct: str) -> int:
        return self.structs[struct][0]

    def align(self, struct: str) -> int:
        return self.structs[struct][1]

    def with_allocator(self, allocator: str) -> Target:
        if allocator not in ("plain", "recording"):
            raise RNNPoolError(f"allocator must be 'plain' or 'recording', got {allocator!r}")
        return dataclasses.replace(self, allocator=allocator)


_X86_STRUCTS = {
    "SingleArenaBufferAllocator": (72, 8),
    "RecordingSingleArenaBufferAllocator": (104, 8),
    "GreedyMemoryPlanner": (72, 8),
    "MicroAllocator": (72, 8),
    "RecordingMicroAllocator": (272, 8),
    "MicroBuiltinDataAllocator": (16, 8),
    "SubgraphAllocations": (24, 8),
    "TfLiteEvalTensor": (24, 8),
    "NodeAndRegistration": (64, 8),
    "TfLiteTensor": (64, 8),
    "TfLiteAffineQuantization": (24, 8),
    "TfLiteIntArray": (4, 4),
    "ScratchBufferHandle": (8, 8),
    "ScratchBufferRequest": (16, 8),
    "AllocationInfo": (32, 8),
    "size_t": (8, 8),
    "pointer": (8, 8),
}
_M4_STRUCTS = {
    "SingleArenaBufferAllocator": (36, 4),
    "RecordingSingleArenaBufferAllocator": (52, 4),
    "GreedyMemoryPlanner": (44, 4),
    "MicroAllocator": (36, 4),
    "RecordingMicroAllocator": (124, 4),
    "MicroBuiltinDataAllocator": (8, 4),
    "SubgraphAllocations": (8, 4),
    "TfLiteEvalTensor": (12, 4),
    "NodeAndRegistration": (32, 4),
    "TfLiteTensor": (32, 4),
    "TfLiteAffineQuantization": (12, 4),
    "TfLiteIntArray": (4, 4),
    "ScratchBufferHandle": (4, 4),
    "ScratchBufferRequest": (12, 4),
    "AllocationInfo": (24, 4),
    "size_t": (4, 4),
    "pointer": (4, 4),
}

# The TfLite*Params struct each builtin parser allocates (flatbuffer_conversions.cc);
# ops whose parser allocates nothing (QUANTIZE, DEQUANTIZE, PAD, LOGISTIC, RELU, ...)
# are absent. Int-sized enums on x86-64, one-byte enums on the M4.
_X86_PARAMS = {
    "CONV_2D": (28, 4),
    "DEPTHWISE_CONV_2D": (28, 4),
    "FULLY_CONNECTED": (16, 4),
    "AVERAGE_POOL_2D": (40, 4),
    "MAX_POOL_2D": (40, 4),
    "L2_POOL_2D": (40, 4),
    "ADD": (8, 4),
    "SUB": (8, 4),
    "MUL": (4, 4),
    "DIV": (4, 4),
    "MEAN": (1, 1),
    "SUM": (1, 1),
    "REDUCE_MAX": (1, 1),
    "REDUCE_MIN": (1, 1),
    "REDUCE_PROD": (1, 1),
    "RESHAPE": (36, 4),
    "SOFTMAX": (4, 4),
    "CONCATENATION": (8, 4),
    "STRIDED_SLICE": (24, 4),
    "TRANSPOSE_CONV": (20, 4),
    "RESIZE_BILINEAR": (2, 1),
    "RESIZE_NEAREST_NEIGHBOR": (2, 1),
    "LEAKY_RELU": (4, 4),
    "SQUEEZE": (36, 4),
    "SPLIT": (4, 4),
    "SPLIT_V": (4, 4),
    "PACK": (8, 4),
    "UNPACK": (8, 4),
    "GATHER": (8, 4),
    "SHAPE": (4, 4),
    "BATCH_MATMUL": (3, 1),
    "DEPTH_TO_SPACE": (4, 4),
    "SPACE_TO_DEPTH": (4, 4),
    "L2_NORMALIZATION": (4, 4),
    "ARG_MAX": (4, 4),
    "ARG_MIN": (4, 4),
    "MIRROR_PAD": (4, 4),
    "CAST": (8, 4),
}
_M4_PARAMS = dict(
    _X86_PARAMS,
    **{
        "FULLY_CONNECTED": (5, 1),
        "ADD": (2, 1),
        "SUB": (2, 1),
        "MUL": (1, 1),
        "DIV": (1, 1),
        "TRANSPOSE_CONV": (16, 4),
        "SHAPE": (1, 1),
        "L2_NORMALIZATION": (1, 1),
        "ARG_MAX": (1, 1),
        "ARG_MIN": (1, 1),
        "MIRROR_PAD": (1, 1),
        "CAST": (2, 1),
    },
)

# sizeof() of what each kernel's Init allocates (its OpData).
_X86_OP_DATA = {  # reference kernels, compression on
    "OpDataConv": 80,
    "OpDataFullyConnected": 72,
    "OpDataAdd": 60,
    "OpDataMul": 36,
    "OpDataPooling": 32,
    "OpDataReduce": 44,
    "SoftmaxParams": 80,
    "OpDataQuantizeReference": 32,
    "DequantizeOpData": 32,
    "PadOpData": 56,
    "ConcatenationOpData": 80,
    "OpDataLogistic": 16,
    "ReluOpData": 28,
    "Relu6OpData": 8,
    "StridedSliceParams": 84,
}
_M4_OP_DATA = {  # reference kernels without compression, plus the CMSIS-NN kernels' own OpData
    "OpDataConv": 56,
    "OpDataFullyConnected": 48,
    "OpDataAdd": 60,
    "OpDataMul": 36,
    "OpDataPooling": 32,
    "OpDataReduce": 44,
    "SoftmaxParams": 56,
    "OpDataQuantizeReference": 32,
    "DequantizeOpData": 32,
    "PadOpData": 56,
    "ConcatenationOpData": 24,
    "OpDataLogistic": 16,
    "ReluOpData": 28,
    "Relu6OpData": 8,
    "StridedSliceParams": 84,
    "CmsisConvOpData": 60,
    "CmsisDepthwiseConvOpData": 60,
    "CmsisFullyConnectedOpData": 72,
    "CmsisAddOpData": 60,
    "CmsisPoolingOpData": 36,
    "CmsisSoftmaxParams": 64,
}

TARGETS: Dict[str, Target] = {
    "x86-64": Target(
        "x86-64",
        "tflite-micro Python interpreter (reference kernels, 64-bit)",
        8,
        "reference",
        "recording",
        True,
        _X86_STRUCTS,
        _X86_PARAMS,
        _X86_OP_DATA,
    ),
    "cortex-m4": Target(
        "cortex-m4",
        "Cortex-M4 firmware (CMSIS-NN kernels, arm-none-eabi-gcc, 32-bit)",
        4,
        "cmsis_nn",
        "plain",
        False,
        _M4_STRUCTS,
        _M4_PARAMS,
        _M4_OP_DATA,
    ),
}


def get_target(target) -> Target:
    if isinstance(target, Target):
        return target
    key = str(target).strip().lower().replace("_", "-")
    aliases = {"x86_64": "x86-64", "host": "x86-64", "m4": "cortex-m4", "cortexm4": "cortex-m4"}
    key = aliases.get(key.replace("-", "_"), key) if key not in TARGETS else key
    if key not in TARGETS:
        raise RNNPoolError(f"unknown arena target {target!r}; valid targets: {', '.join(TARGETS)}")
    return TARGETS[key]
