"""The InvertedResidual C kernel cross-compiled for Cortex-M4 (SMLAD/SXTB16 dot products, SMMLAR
requantization, hand-scheduled loops) and run in qemu-system-arm: bit-exact with the NumPy
reference on vector sets embedded in the bare-metal harness (tests/m4/invres_*.c), optimised
(assembly loops) and unoptimised (the intrinsics' C loops). With TFLM_DIR: the unfused blocks
run with TFLM's CMSIS-NN kernels on the emulated M4 give the same bytes as the reference and the
fused kernel. Runtime about 30 s."""

from __future__ import annotations

import os

import invres_models as im
import numpy as np
import pytest

from rnnpool_tflm.reference.inverted_residual import inverted_residual_int8
from rnnpool_tflm.runtime import invres_harness, invres_native, m4_harness
from rnnpool_tflm.runtime.m4_harness import HarnessCase
from rnnpool_tflm.toolchain import tflm_tree

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(m4_harness.missing_tools()),
        reason=f"{', '.join(m4_harness.missing_tools())} not installed (CI installs "
        "gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm)",
    ),
]


def _case(
    rng,
    ci,
    ce,
    co,
    stride,
    expand,
    residual,
    shape,
    acts=(3, 3, 0, 0),
    gain=1.0,
    per_channel=True,
    biases=True,
    calibrated=False,
) -> HarnessCase:
    p = im.random_params(rng, ci, ce, co, stride, expand, residual, acts, per_channel, biases, gain, calibrated)
    x = im.random_input(rng, shape)
    return HarnessCase(p, x, inverted_residual_int8(x, p))


def _listed_cases():
    rng = np.random.default_rng(77)
    return [
        _case(rng, 16, 32, 16, 1, True, True, (1, 9, 12, 16)),  # groups of four everywhere, residual
        _case(rng, 16, 48, 8, 2, True, False, (1, 8, 10, 16), calibrated=True),  # ReLU6 clamps of full range
        _case(rng, 8, 16, 8, 1, True, True, (1, 7, 9, 8), (3, 3, 1, 0), calibrated=True),
        _case(rng, 8, 24, 12, 2, True, False, (1, 10, 9, 8)),  # stride 2, odd width
        _case(rng, 5, 13, 7, 1, True, False, (2, 6, 7, 5)),  # channel tails, batch 2
        _case(rng, 6, 6, 6, 1, False, True, (1, 5, 5, 6), (0, 1, 2, 3)),  # t = 1, every activation
        _case(rng, 3, 9, 4, 2, True, False, (1, 1, 1, 3), (1, 2, 3, 0)),  # a 1x1 map
        _case(rng, 12, 20, 12, 1, True, True, (1, 4, 3, 12), gain=40.0),  # saturating
        _case(rng, 4, 8, 4, 1, True, True, (1, 5, 6, 4), gain=0.05, per_channel=False, biases=False),
    ]


def _random_cases(count: int):
    rng = np.random.default_rng(4242)
    cases = []
    for i in range(count):
        stride = 1 + i % 2
        expand = i % 5 != 0
        ci = int(rng.integers(1, 20))
        residual = stride == 1 and i % 3 == 0
        co = ci if residual else int(rng.integers(1, 20))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 11)), int(rng.integers(1, 11)), ci)
        acts = tuple(int(v) for v in rng.integers(0, 4, 4))
        cases.append(
            _case(
                rng,
                ci,
                int(rng.integers(1, 40)),
                co,
                stride,
                expand,
                residual,
                shape,
                acts,
                gain=float(rng.choice([0.05, 1.0, 3.0, 40.0])),
                per_channel=bool(i % 4),
                biases=bool(i % 6),
            )
        )
    return cases


def _general_form_case():
    """Multipliers of 1/2 and more (shift >= 0) take the general requantization form."""
    rng = np.random.default_rng(5)
    case = _case(rng, 8, 12, 8, 1, True, True, (1, 6, 5, 8))
    p = case.params
    big = p.__class__(
        **{
            **p.__dict__,
            "expand": p.expand.__class__(
                **{**p.expand.__dict__, "scales": np.full(12, p.expand.scales.max() * 4000, np.float32)}
            ),
        }
    )
    assert invres_native.PreparedInvertedResidual(big, case.x.shape).requant_forms()["expand"] == "general"
    return HarnessCase(big, case.x, inverted_residual_int8(case.x, big))


@pytest.fixture(scope="module")
def vector_cases():
    return [*_listed_cases(), _general_form_case(), *_random_cases(36)]


@pytest.mark.parametrize("opt", [None, "-O0"])
def test_the_m4_kernel_is_bit_exact(vector_cases, opt, tmp_path):
    run = invres_harness.run_cases(vector_cases, tmp_path, timeout=300, opt=opt)
    failed = [(i, r.status, r.stage, r.mismatches) for i, r in enumerate(run.results) if not r.ok]
    assert run.exit_code == 0 and not failed, failed


def test_the_harness_reports_a_wrong_output(tmp_path):
    case = _listed_cases()[0]
    wrong = case.expected.copy()
    wrong.reshape(-1)[7] ^= 1
    run = invres_harness.run_cases([HarnessCase(case.params, case.x, wrong)], tmp_path, timeout=120)
    assert run.exit_code == 1 and not run.results[0].ok and run.results[0].mismatches == 1


def test_every_requantization_form_is_exercised(vector_cases):
    forms = set()
    for case in vector_cases:
        forms |= set(invres_native.PreparedInvertedResidual(case.params, case.x.shape).requant_forms().values())
    assert forms == {"smmlar", "general", "absent"}


needs_tflm = pytest.mark.skipif(
    not os.environ.get(tflm_tree.TFLM_ENV), reason="TFLM_DIR is not set (CMSIS-NN and TFLM's library come from it)"
)


@needs_tflm
def test_cmsis_nn_gives_the_same_bytes_as_the_reference_and_the_fused_kernel(tmp_path):
    from rnnpool_tflm.deploy import invres_bench

    rng = np.random.default_rng(31)
    cases = [
        _case(rng, 16, 32, 16, 1, True, True, (1, 8, 10, 16)),
        _case(rng, 8, 24, 16, 2, True, False, (1, 9, 8, 8), (3, 3, 0, 0)),
        _case(rng, 12, 12, 12, 1, False, True, (1, 6, 7, 12), (0, 1, 3, 3)),
        _case(rng, 5, 11, 6, 2, True, False, (1, 7, 5, 5), (2, 3, 1, 0), gain=3.0),
    ]
    results = invres_bench.compare(cases, workdir=tmp_path)
    for r in results:
        assert r.cmsis_ok and r.cmsis_mismatches == 0, r
        assert r.fused_ok, r
        assert r.cmsis_instructions["depthwise"] > 0 and r.cmsis_instructions["project"] > 0


def test_bench_ir_host_prints_bit_exact_records(capsys):
    import json

    from rnnpool_tflm.cli import main as cli

    assert cli.main(["bench", "ir", "--target", "host", "--json", "--block", "4", "--seconds", "0.01"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["name"] == "Face-M4 block 4" and record["bit_exact"] is True and record["ns_per_block"] > 0
    assert record["unfused_intermediate_bytes"] == 2 * 15 * 20 * 128
    assert record["macs"] == {
        "expand": 15 * 20 * 64 * 128,
        "depthwise": 15 * 20 * 128 * 9,
        "project": 15 * 20 * 128 * 64,
    }


@needs_tflm
def test_bench_ir_m4_compares_with_cmsis_nn(capsys):
    import json

    from rnnpool_tflm.cli import main as cli

    assert cli.main(["bench", "ir", "--target", "m4", "--json", "--block", "3"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    cmsis = record["cmsis_nn_instructions"]
    assert record["bit_exact"] is True and record["target"] == "m4"
    assert cmsis["total"] == cmsis["expand"] + cmsis["depthwise"] + cmsis["project"] + cmsis["add"]
    assert cmsis["add"] == 0 and min(cmsis["expand"], cmsis["depthwise"], cmsis["project"]) > 0
    assert record["fused_over_cmsis_nn"] == pytest.approx(record["fused_instructions"] / cmsis["total"], abs=1e-3)
    assert isinstance(record["within_target"], bool)
