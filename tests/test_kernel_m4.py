"""The C kernel cross-compiled for Cortex-M4 (DSP path: SMLAD/SMMUL/SMLATB,
hand-scheduled dot-product loops) and run in qemu-system-arm -M netduinoplus2:
bit-exact with the golden reference on vector sets embedded in the bare-metal
harness (tests/m4). Runtime about 15 s."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from test_kernel_host import random_case, random_cases

from rnnpool_tflm.runtime import m4_harness as m4_toolchain
from rnnpool_tflm.runtime import native
from rnnpool_tflm.runtime.m4_harness import HarnessCase

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(m4_toolchain.missing_tools()),
        reason=f"{', '.join(m4_toolchain.missing_tools())} not installed (CI installs "
        "gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm)",
    ),
]

# (patch, strides, hidden, padding, gate, update, per_channel, shape, (s_x, s_y, weight gain), (zeta, nu)).
# Hidden sizes 16 and 8 take the unrolled dot-product kernels, the others the looped ones; the
# scales are chosen so that every requantization form occurs (see test_every_dsp_path_is_covered).
CONFIGS = [
    ((8, 8), (4, 4), (16, 16), "valid", "sigmoid", "tanh", True, (1, 20, 24, 4), (0.02, 0.005, 0.7), (100, -100)),
    ((6, 6), (4, 4), (8, 8), "same", "hard_sigmoid", "hard_tanh", False, (1, 13, 15, 8), (0.05, 0.01, 1.0), (2, -1)),
    ((3, 5), (2, 3), (7, 5), "same", "sigmoid", "hard_tanh", True, (2, 9, 11, 3), (0.1, 0.02, 1.0), (1, 1)),
    ((4, 3), (5, 6), (9, 3), "valid", "hard_sigmoid", "tanh", True, (1, 14, 16, 5), (0.01, 0.003, 0.5), (-1, 3)),
    ((6, 6), (4, 4), (16, 16), "valid", "sigmoid", "tanh", False, (1, 10, 10, 32), (0.02, 0.005, 0.5), (3, -2)),
    ((2, 2), (1, 1), (1, 2), "same", "sigmoid", "tanh", True, (1, 5, 4, 1), (0.05, 0.02, 1.0), (0, 0)),
    # Large scales: multipliers of 1/4 and more take the SMMULR form, with and without the clamp.
    ((3, 3), (2, 2), (5, 6), "valid", "sigmoid", "tanh", True, (1, 8, 9, 7), (0.9, 0.5, 150.0), (0, 0)),
    ((5, 4), (3, 3), (4, 3), "same", "hard_sigmoid", "hard_tanh", False, (1, 7, 8, 2), (1.0, 0.8, 200.0), (6, 6)),
    # The assembly paths (rnnpool_s8_m4.h): h = 8 steps, form S pixel projections of k = 4 and 2,
    # form L W2 projections of h1 = 16 and 8 states.
    ((6, 6), (4, 4), (8, 8), "valid", "sigmoid", "tanh", False, (1, 14, 14, 4), (0.005, 0.01, 0.5), (2, -2)),
    ((3, 3), (2, 2), (16, 6), "valid", "sigmoid", "tanh", False, (1, 8, 9, 2), (0.9, 0.5, 150.0), (0, 0)),
    ((4, 4), (2, 2), (16, 8), "same", "sigmoid", "tanh", True, (1, 9, 11, 2), (0.005, 0.01, 0.5), (2, -2)),
    ((3, 3), (2, 2), (8, 6), "valid", "sigmoid", "tanh", False, (1, 8, 9, 3), (0.9, 0.5, 150.0), (0, 0)),
]
# ... and RNN1's pairs on two pixels (rnn1_mode recompute), h = 8 and 16.
RECOMPUTE_CONFIGS = [
    ((6, 6), (4, 4), (8, 8), "valid", "sigmoid", "tanh", False, (1, 14, 14, 4), (0.005, 0.01, 0.5), (2, -2)),
    ((5, 4), (3, 2), (16, 16), "same", "sigmoid", "tanh", False, (1, 9, 10, 3), (0.005, 0.01, 0.5), (2, -2)),
]


def _listed_cases():
    rng = np.random.default_rng(44)
    listed = [(config, "cached") for config in CONFIGS] + [(config, "recompute") for config in RECOMPUTE_CONFIGS]
    for (patch, strides, hidden, padding, gate, update, per_channel, shape, scales, (zeta, nu)), mode in listed:
        yield random_case(
            rng,
            channels=shape[3],
            hidden=hidden,
            patch=patch,
            strides=strides,
            padding=padding,
            gate=gate,
            update=update,
            per_channel=per_channel,
            shape=shape,
            zeta=zeta,
            nu=nu,
            zeta2=-nu,
            nu2=zeta / 2,
            input_scale=scales[0],
            output_scale=scales[1],
            weight_gain=scales[2],
            bias_gain=3.0,
            rnn1_mode=mode,
        )


INPLACE_CASES = [  # (patch, strides, padding, output padding, rnn1_mode, shape): run overlapped at the lag
    ((8, 8), (4, 4), "valid", (1, 1), "cached", (1, 20, 24, 4)),
    ((8, 8), (4, 4), "valid", (1, 1), "recompute", (1, 20, 24, 4)),
    ((4, 3), (2, 2), "same", (0, 2), "cached", (2, 13, 11, 3)),
    ((3, 2), (5, 4), "valid", (2, 0), "recompute", (2, 17, 19, 5)),
]


def _inplace_cases():
    rng = np.random.default_rng(45)
    for patch, strides, padding, out_pad, mode, shape in INPLACE_CASES:
        case = random_case(
            rng,
            channels=shape[3],
            hidden=(16, 16),
            patch=patch,
            strides=strides,
            padding=padding,
            gate="sigmoid",
            update="tanh",
            per_channel=True,
            shape=shape,
            zeta=2.0,
            nu=-3.0,
            input_scale=0.02,
            output_scale=0.01,
            weight_gain=0.7,
            bias_gain=1.0,
            output_padding=out_pad,
            rnn1_mode=mode,
        )
        yield HarnessCase(case.params, case.x, case.expected, inplace=True)


@pytest.fixture(scope="module")
def vector_cases():
    cases = [*_listed_cases(), *random_cases(np.random.default_rng(4242), 40)]
    return [HarnessCase(c.params, c.x, c.expected) for c in cases] + list(_inplace_cases())


@pytest.fixture(scope="module")
def harness_run(vector_cases, tmp_path_factory):
    return m4_toolchain.run_kernel_cases(vector_cases, tmp_path_factory.mktemp("m4"), timeout=300)


def test_kernel_on_the_emulated_m4_is_bit_exact(vector_cases, harness_run):
    """Every case, the in-place ones (output overlapping the input at the lag) included."""
    assert harness_run.exit_code == 0, harness_run.output[-3000:]
    assert sum(case.inplace for case in vector_cases) == len(INPLACE_CASES)
    assert len(harness_run.results) == len(vector_cases)
    for i, result in enumerate(harness_run.results):
        assert result.ok and result.status == "RNNPOOL_OK" and result.mismatches == 0, (i, result)
    for case in vector_cases[: len(CONFIGS) + len(RECOMPUTE_CONFIGS)]:
        assert len(np.unique(case.expected)) > 2  # the listed cases are not trivially saturated
    assert 4.0 < harness_run.instructions_per_tick < 8.0  # 1/0.168: SysTick at 168 MHz, 1 ns per instruction


def test_every_dsp_path_is_covered(vector_cases):
    """The vector set reaches every requantization form, both dot-product kernels and non-Q14 states."""
    forms = {name: set() for name in ("w1", "u1", "w2", "u2")}
    hidden, q = set(), set()
    for case in vector_cases:
        kernel = native.PreparedS8(case.params, case.x.shape)
        for name, form in kernel.requant_forms().items():
            forms[name].add(form)
        hidden.update(case.params.hidden_dims)
        q.update(kernel.state_formats())
    assert forms["w1"] == forms["w2"] == {0, 1, 2} and {0, 1} <= forms["u1"] and {0, 2} <= forms["u2"]
    assert {8, 16} <= hidden and hidden - {8, 16, 7, 15}  # unrolled (hp 8, 16) and looped kernels
    assert 14 in q and min(q) < 14


def _assembly_paths(case):
    """The assembly paths of rnnpool_s8_m4.h a case can take, by the conditions visible from
    Python (the step's also need U to be unable to saturate, true of these scales)."""
    kernel = native.PreparedS8(case.params, case.x.shape)
    forms, (q1, q2) = kernel.requant_forms(), kernel.state_formats()
    config = case.params.config
    smooth = (config.gate_activation, config.update_activation) == ("sigmoid", "tanh")
    hp1, hp2 = (h + h % 2 for h in config.hidden_dims)
    paths = set()
    if case.x.shape[3] <= 4 and forms["w1"] != 2:
        paths.add(("pixel projection", (case.x.shape[3] + 1) // 2, forms["w1"]))
    if hp1 in (8, 16) and forms["w2"] != 2:
        paths.add(("summary projection", hp1, forms["w2"]))
    if smooth and hp1 in (8, 16) and q1 == 14 and forms["u1"] == 0:
        paths.add(("rnn1 step", hp1, config.rnn1_mode))
    if smooth and hp2 in (8, 16) and q2 == 14 and forms["u2"] == 0:
        paths.add(("rnn2 step", hp2))
    return paths


def test_every_assembly_path_is_covered(vector_cases):
    """Both pixel sizes and both forms of the projections, h = 8 and 16 of every step."""
    paths = set().union(*(_assembly_paths(case) for case in vector_cases))
    for words in (1, 2):
        for form in (0, 1):
            assert ("pixel projection", words, form) in paths, paths
    for hp in (8, 16):
        assert {("summary projection", hp, 0), ("summary projection", hp, 1)} <= paths, paths
        assert {("rnn1 step", hp, "cached"), ("rnn1 step", hp, "recompute"), ("rnn2 step", hp)} <= paths, paths


def test_the_m4_build_takes_the_dsp_path(tmp_path):
    """The cross-compiled kernel uses the DSP instructions (the __ARM_FEATURE_DSP branch)."""
    obj = tmp_path / "rnnpool_s8.o"
    source = next(p for p in m4_toolchain.kernel_sources() if p.name == "rnnpool_s8.c")
    cmd = [
        m4_toolchain.CC,
        *m4_toolchain.CPU_FLAGS,
        *m4_toolchain.C_FLAGS,
        f"-I{source.parent}",
        "-c",
        str(source),
        "-o",
        str(obj),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    disassembly = subprocess.run(
        ["arm-none-eabi-objdump", "-d", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    for instruction in ("smlad", "smmla", "smmulr", "smlatb", "ssat", "ldrd"):
        assert f"\t{instruction}" in disassembly, instruction


def test_buffer_sizes_on_the_m4_equal_the_host_sizes(vector_cases, harness_run):
    for case, result in zip(vector_cases, harness_run.results, strict=True):
        cfg = native.make_config(case.params.config, case.x.shape)
        assert (result.prepared_bytes, result.scratch_bytes) == native.buffer_bytes(cfg, "int8")


def test_the_m4_harness_reports_a_wrong_output(tmp_path):
    case = next(_listed_cases())
    wrong = case.expected.copy()
    wrong.reshape(-1)[5] ^= 4
    run = m4_toolchain.run_kernel_cases([HarnessCase(case.params, case.x, wrong)], tmp_path, timeout=120)
    assert run.exit_code == 1 and not run.results[0].ok and run.results[0].mismatches == 1


def test_bench_m4_counts_instructions_per_patch(capsys):
    import argparse
    import json

    from rnnpool_tflm.cli.commands import bench

    args = argparse.Namespace(
        what="kernel", target="m4", json=True, shape=["VWW"], activations="hard", seconds=1.0, rnn1_mode="both"
    )
    assert bench.run(args) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["rnn1_mode"] for r in records] == ["cached", "recompute"]
    for record in records:
        assert record["shape"] == {"k": 8, "patch": 6, "stride": 4, "h1": 8, "h2": 8} and record["bit_exact"]
        assert record["macs_per_patch"] == 12288 and record["patches"] == 729
        assert record["instructions_per_mac"] == round(record["instructions_per_patch"] / 12288, 3) > 0
    cached, recompute = records
    # Recomputing RNN1 per patch costs instructions and saves scratch (VWW: stride 4 < patch 6).
    assert recompute["instructions_per_patch"] > cached["instructions_per_patch"]
    assert recompute["scratch_bytes"] < cached["scratch_bytes"] / 10
