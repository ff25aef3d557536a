"""The struct-size tables of the arena model against the compilers (needs TFLM_DIR).

Compiles probe objects against the TFLM checkout in TFLM_DIR (with the third-party
trees its Makefile downloads) with arm-none-eabi-g++ and compares every sizeof/alignof
the M4 model uses. (The x86-64 tables need no probe here: test_arena_host.py checks the
whole x86-64 model byte for byte against the interpreter.) Runtime: about 30 s on 2 cores.
"""

import os
import pathlib
import shutil

import pytest
from arena_struct_probe import TOOLS, dependency_dirs, probe, probe_invres_op_data, probe_rnnpool_op_data

from rnnpool_tflm.arena import invres_buffers
from rnnpool_tflm.arena.rnnpool_buffers import op_data_bytes
from rnnpool_tflm.arena.targets import TARGETS

TFLM_DIR = os.environ.get("TFLM_DIR")
CUSTOM_OPS = pathlib.Path(__file__).resolve().parents[1] / "custom_ops" / "rnnpool"
pytestmark = pytest.mark.tflm


def _require(target):
    if not TFLM_DIR:
        pytest.skip("TFLM_DIR is not set (a TFLM checkout of the pinned commit with its downloads)")
    if dependency_dirs(pathlib.Path(TFLM_DIR)) is None:
        pytest.skip(f"{TFLM_DIR} lacks tools/make/downloads/{{flatbuffers,gemmlowp,ruy,cmsis_nn}}")
    compiler, nm, _ = TOOLS[target]
    if not (shutil.which(compiler) and shutil.which(nm)):
        pytest.skip(f"{compiler} is not installed")


def test_m4_struct_tables_match_the_compiler():
    target = "cortex-m4"
    _require(target)
    found = probe(pathlib.Path(TFLM_DIR), target)
    table = TARGETS[target]
    assert found["structs"] == table.structs
    assert found["builtin_params"] == {op: table.builtin_params[op] for op in found["builtin_params"]}
    assert found["op_data"] == {name: table.op_data[name] for name in found["op_data"]}


@pytest.mark.parametrize("target", ["x86-64", "cortex-m4"])
def test_rnnpool_op_data_matches_the_compiler(target):
    _require(target)
    size = probe_rnnpool_op_data(pathlib.Path(TFLM_DIR), target, CUSTOM_OPS)
    assert size == op_data_bytes(TARGETS[target].pointer_bytes)


@pytest.mark.parametrize("target", ["x86-64", "cortex-m4"])
def test_inverted_residual_op_data_matches_the_compiler(target):
    _require(target)
    size = probe_invres_op_data(pathlib.Path(TFLM_DIR), target, CUSTOM_OPS.parent / "inverted_residual")
    assert size == invres_buffers.op_data_bytes(TARGETS[target].pointer_bytes)
