"""Reads sizeof/alignof of TFLM types as a target's compiler lays them out.

Each probe translation unit includes a TFLM source (so types in anonymous namespaces,
like the kernels' OpData, are visible) and defines `char P_<name>__size[sizeof(T)]`;
`nm -S` on the object gives the sizes without running anything. Used to check (and,
after a TFLM update, regenerate) the tables in rnnpool_tflm/arena/targets.py.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import subprocess
import tempfile
from typing import Dict, List, Optional, Tuple

K = "tensorflow/lite/micro/kernels/"

CORE_INCLUDES = [
    "tensorflow/lite/micro/micro_allocator.cc",  # for its anonymous MicroBuiltinDataAllocator
    "tensorflow/lite/micro/recording_micro_allocator.h",
    "tensorflow/lite/micro/arena_allocator/recording_single_arena_buffer_allocator.h",
    "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h",
    "tensorflow/lite/micro/micro_allocation_info.h",
    "tensorflow/lite/c/builtin_op_data.h",
]
CORE_TYPES = {
    "SingleArenaBufferAllocator": "SingleArenaBufferAllocator",
    "RecordingSingleArenaBufferAllocator": "RecordingSingleArenaBufferAllocator",
    "GreedyMemoryPlanner": "GreedyMemoryPlanner",
    "MicroAllocator": "MicroAllocator",
    "RecordingMicroAllocator": "RecordingMicroAllocator",
    "MicroBuiltinDataAllocator": "MicroBuiltinDataAllocator",
    "SubgraphAllocations": "SubgraphAllocations",
    "TfLiteEvalTensor": "TfLiteEvalTensor",
    "NodeAndRegistration": "NodeAndRegistration",
    "TfLiteTensor": "TfLiteTensor",
    "TfLiteAffineQuantization": "TfLiteAffineQuantization",
    "TfLiteIntArray": "TfLiteIntArray",
    "ScratchBufferHandle": "ScratchBufferHandle",
    "ScratchBufferRequest": "internal::ScratchBufferRequest",
    "AllocationInfo": "AllocationInfo",
    "size_t": "size_t",
    "pointer": "void*",
}
# Builtin op -> the options struct its parser allocates.
PARAM_TYPES = {
    "CONV_2D": "TfLiteConvParams",
    "DEPTHWISE_CONV_2D": "TfLiteDepthwiseConvParams",
    "FULLY_CONNECTED": "TfLiteFullyConnectedParams",
    "AVERAGE_POOL_2D": "TfLitePoolParams",
    "ADD": "TfLiteAddParams",
    "MUL": "TfLiteMulParams",
    "MEAN": "TfLiteReducerParams",
    "RESHAPE": "TfLiteReshapeParams",
    "SOFTMAX": "TfLiteSoftmaxParams",
    "CONCATENATION": "TfLiteConcatenationParams",
    "STRIDED_SLICE": "TfLiteStridedSliceParams",
    "TRANSPOSE_CONV": "TfLiteTransposeConvParams",
    "SHAPE": "TfLiteShapeParams",
    "CAST": "TfLiteCastParams",
}
# OpData table name -> (file to include, type). Types declared in kernel headers are
# probed together with the core structs; types in a kernel's anonymous namespace need
# their own translation unit (the .cc itself).
REFERENCE_OP_DATA = {
    "OpDataConv": ("conv.h", "OpDataConv"),
    "OpDataFullyConnected": ("fully_connected.h", "OpDataFullyConnected"),
    "OpDataAdd": ("add.h", "OpDataAdd"),
    "OpDataMul": ("mul.h", "OpDataMul"),
    "OpDataPooling": ("pooling.h", "OpDataPooling"),
    "OpDataReduce": ("reduce.h", "OpDataReduce"),
    "SoftmaxParams": ("softmax.h", "SoftmaxParams"),
    "OpDataQuantizeReference": ("quantize.h", "OpDataQuantizeReference"),
    "DequantizeOpData": ("dequantize.h", "DequantizeOpData"),
    "PadOpData": ("pad.h", "OpData"),
    "ConcatenationOpData": ("concatenation.cc", "OpData"),
    "OpDataLogistic": ("logistic.h", "OpDataLogistic"),
    "ReluOpData": ("activations.h", "ReluOpData"),
    "Relu6OpData": ("activations.h", "Relu6OpData"),
    "StridedSliceParams": ("strided_slice.h", "StridedSliceParams"),
}
CMSIS_OP_DATA = {
    "CmsisConvOpData": ("cmsis_nn/conv.cc", "OpData"),
    "CmsisDepthwiseConvOpData": ("cmsis_nn/depthwise_conv.cc", "OpData"),
    "CmsisFullyConnectedOpData": ("cmsis_nn/fully_connected.cc", "OpData"),
    "CmsisAddOpData": ("cmsis_nn/add.cc", "OpData"),
    "CmsisPoolingOpData": ("cmsis_nn/pooling.cc", "OpData"),
    "CmsisSoftmaxParams": ("cmsis_nn/softmax.cc", "CMSISNNSoftmaxParams"),
}

TOOLS = {
    "x86-64": ("g++", "nm", ["-DUSE_TFLM_COMPRESSION=1"]),
    "cortex-m4": (
        "arm-none-eabi-g++",
        "arm-none-eabi-nm",
        ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-DCMSIS_NN"],
    ),
}


def dependency_dirs(tflm_dir: pathlib.Path) -> Optional[List[pathlib.Path]]:
    """Include directories for TFLM sources plus the third-party trees its Makefile downloads."""
    downloads = tflm_dir / "tensorflow/lite/micro/tools/make/downloads"
    dirs = [
        tflm_dir,
        downloads / "flatbuffers/include",
        downloads / "gemmlowp",
        downloads / "ruy",
        downloads / "cmsis_nn",
        downloads / "cmsis_nn/Include",
    ]
    return dirs if all(d.is_dir() for d in dirs) else None


def _compile(compiler, nm, flags, includes, source_text, workdir) -> Dict[str, Tuple[int, int]]:
    fd, path = tempfile.mkstemp(suffix=".cc", dir=workdir)
    with os.fdopen(fd, "w") as handle:
        handle.write(source_text)
    obj = path + ".o"
    cmd = [
        compiler,
        "-std=c++17",
        "-fno-exceptions",
        "-fno-rtti",
        "-DTF_LITE_STATIC_MEMORY=1",
        *flags,
        *(f"-I{d}" for d in includes),
        "-c",
        path,
        "-o",
        obj,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"probe compile failed: {done.stderr[-3000:]}")
    out = subprocess.run([nm, "-S", "--defined-only", obj], capture_output=True, text=True, check=True).stdout
    found: Dict[str, Dict[str, int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("P_"):
            name, kind = parts[3][2:].rsplit("__", 1)
            found.setdefault(name, {})[kind] = int(parts[1], 16)
    return {name: (v["size"], v["align"]) for name, v in found.items()}


def _probe_source(includes: List[str], types: Dict[str, str]) -> str:
    lines = [f'#include "{inc}"' for inc in includes] + ["using namespace tflite;"]
    for name, cxx in types.items():
        lines.append(
            f'extern "C" {{ __attribute__((used)) char P_{name}__size[sizeof({cxx})]; '
            f'__attribute__((used)) char P_{name}__align[alignof({cxx})]; }}'
        )
    return "\n".join(lines) + "\n"


def probe(tflm_dir: pathlib.Path, target: str) -> Dict[str, Dict]:
    """{"structs": {...}, "builtin_params": {...}, "op_data": {...}} for `target`."""
    compiler, nm, flags = TOOLS[target]
    includes = dependency_dirs(tflm_dir)
    op_data = dict(REFERENCE_OP_DATA, **(CMSIS_OP_DATA if target == "cortex-m4" else {}))
    headers = {name: entry for name, entry in op_data.items() if entry[0].endswith(".h")}
    core_types = {
        **CORE_TYPES,
        **{f"param_{op}": t for op, t in PARAM_TYPES.items()},
        **{name: cxx for name, (_, cxx) in headers.items()},
    }
    jobs = [(CORE_INCLUDES + sorted({K + source for source, _ in headers.values()}), core_types)]
    by_file: Dict[str, Dict[str, str]] = {}
    for name, (source, cxx) in op_data.items():
        if name not in headers:
            by_file.setdefault(source, {})[name] = cxx
    jobs += [([K + source], types) for source, types in by_file.items()]
    with tempfile.TemporaryDirectory() as workdir, concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        results = list(
            pool.map(lambda job: _compile(compiler, nm, flags, includes, _probe_source(*job), workdir), jobs)
        )
    merged = {k: v for result in results for k, v in result.items()}
    return {
        "structs": {name: merged[name] for name in CORE_TYPES},
        "builtin_params": {op: merged[f"param_{op}"] for op in PARAM_TYPES},
        "op_data": {name: merged[name][0] for name in op_data},
    }


def probe_rnnpool_op_data(tflm_dir: pathlib.Path, target: str, custom_ops: pathlib.Path) -> int:
    """sizeof(OpData) of the project's TFLM RNNPool op (custom_ops/rnnpool/rnnpool_tflm.cc)."""
    compiler, nm, flags = TOOLS[target]
    includes = dependency_dirs(tflm_dir) + [custom_ops, custom_ops.parent / "common"]
    source = _probe_source(["rnnpool_tflm.cc"], {"RNNPoolOpData": "OpData"})
    with tempfile.TemporaryDirectory() as workdir:
        return _compile(compiler, nm, flags, includes, source, workdir)["RNNPoolOpData"][0]


def probe_invres_op_data(tflm_dir: pathlib.Path, target: str, custom_ops: pathlib.Path) -> int:
    """sizeof(OpData) of the project's TFLM InvertedResidual op (inverted_residual_tflm.cc)."""
    compiler, nm, flags = TOOLS[target]
    includes = dependency_dirs(tflm_dir) + [custom_ops, custom_ops.parent / "common"]
    source = _probe_source(["inverted_residual_tflm.cc"], {"InvresOpData": "OpData"})
    with tempfile.TemporaryDirectory() as workdir:
        return _compile(compiler, nm, flags, includes, source, workdir)["InvresOpData"][0]
