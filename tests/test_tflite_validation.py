"""The .tflite reader rejects bad models with one line naming the tensor or operator and the
problem, before anything opens an interpreter (issue 11: `check`/`export` died with SIGABRT
on NaN/huge scales; ops out of order gave KeyError or an export that "succeeded")."""

import math
import os
import subprocess
import sys

import builtin_models as bm
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.deploy.host_run import run_interpreter
from rnnpool_tflm.tflite import model as tfm

HIDDEN, PROJECTED, OUTPUT, BIAS = 3, 6, 7, 2  # tensor indices in bm.conv_chain()


@pytest.fixture(scope="module")
def good() -> bytes:
    return bm.conv_chain()


def _with_quantization(model: bytes, tensor: int, scale=None, zero_point=None, dim=None) -> bytes:
    m = bm.unchecked(model)
    q = m.subgraphs[0].tensors[tensor].quantization
    if scale is not None:
        q.scale = [float(s) for s in np.atleast_1d(scale)]
    if zero_point is not None:
        q.zeroPoint = [int(z) for z in np.atleast_1d(zero_point)]
    if dim is not None:
        q.quantizedDimension = dim
    return tfm.write_model(m)


def test_the_good_model_reads_and_runs(good):
    tfm.read_model(good)
    out = run_interpreter(good, [np.zeros((1, 4, 4, 2), np.int8)], 1)[0]
    assert out.shape == (1, 4, 4, 2)


TINY = float(np.finfo(np.float32).tiny)

BAD_QUANTIZATION = [
    (dict(tensor=HIDDEN, scale=math.nan), r"tensor #3 'hidden': scale nan is not positive and finite"),
    (dict(tensor=HIDDEN, scale=-0.5), r"tensor #3 'hidden': scale -0.5 is not positive and finite"),
    (dict(tensor=0, scale=0.0), r"tensor #0 'input': scale 0 is not positive and finite"),
    (dict(tensor=HIDDEN, scale=math.inf), r"'hidden': scale inf is not positive and finite"),
    (dict(tensor=PROJECTED, scale=TINY / 4), r"'projected': scale .* is outside \[2\^-64, 2\^64\] \(a denormal\)"),
    (dict(tensor=PROJECTED, scale=3e38), r"'projected': scale 3e\+38 is outside \[2\^-64, 2\^64\]"),
    (dict(tensor=OUTPUT, zero_point=128), r"'output': zero point 128 is outside \[-128, 127\] for a INT8 tensor"),
    (dict(tensor=0, zero_point=-129), r"'input': zero point -129 is outside \[-128, 127\]"),
    (dict(tensor=BIAS, zero_point=[0, 1, 0]), r"'hidden/bias': zero point 1 is outside \[0, 0\] for a INT32"),
    (dict(tensor=1, scale=[0.02, 0.02]), r"'hidden/filter': 2 scales, but dimension 0 has 3 channels"),
    (dict(tensor=1, dim=4), r"'hidden/filter': 3 scales along dimension 4 of a rank-4 tensor"),
    (dict(tensor=1, zero_point=[0, 0]), r"'hidden/filter': 2 zero points for 3 scales"),
    (dict(tensor=1, zero_point=[]), r"'hidden/filter': 3 scale\(s\) but no zero point"),
]


@pytest.mark.parametrize("change, message", BAD_QUANTIZATION, ids=[m[:40] for _, m in BAD_QUANTIZATION])
def test_bad_quantization_is_rejected_naming_tensor_and_problem(good, change, message):
    bad = _with_quantization(good, **change)
    with pytest.raises(tfm.ModelError, match=message) as info:
        tfm.read_model(bad)
    assert "\n" not in str(info.value)


def test_an_abort_only_prepare_sees_becomes_an_error(good):
    """Each scale fine on its own, together impossible for ADD's Prepare (its output multiplier
    must be < 1): TFLM aborts; check and export first open the interpreter in a child process."""
    bad = _with_quantization(good, OUTPUT, scale=1e-12)
    tfm.read_model(bad)  # nothing wrong tensor by tensor
    with pytest.raises(RNNPoolError, match=r"aborted \(SIGABRT\) while preparing the model"):
        run_interpreter(bad, [np.zeros((1, 4, 4, 2), np.int8)], 1, isolate_prepare=True)


def _cli(tmp_path, *args):
    env = {**os.environ, "TFLM_DIR": ""}  # the host-only path (no registerer build)
    return subprocess.run(
        [sys.executable, "-m", "rnnpool_tflm.cli.main", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("command", ["check", "export"])
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(tensor=PROJECTED, scale=math.nan), "tensor #6 'projected': scale nan is not positive and finite"),
        (dict(tensor=PROJECTED, scale=3e38), "tensor #6 'projected': scale 3e+38 is outside"),
        (dict(tensor=OUTPUT, scale=1e-12), "aborted (SIGABRT) while preparing the model"),
    ],
    ids=["nan", "huge", "prepare_aborts"],
)
def test_check_and_export_report_bad_scales_instead_of_aborting(tmp_path, good, command, change, message):
    path = tmp_path / "bad.tflite"
    path.write_bytes(_with_quantization(good, **change))
    args = [command, str(path)] + (["--firmware", str(tmp_path / "fw")] if command == "export" else [])
    result = _cli(tmp_path, *args)
    assert result.returncode not in (0, -6, 134), result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "bad.tflite: " in lines[0] or "aborted" in message
    assert not (tmp_path / "fw" / "generated").exists()


# -- graph structure ------------------------------------------------------------------------------


def _edited(model: bytes, edit) -> bytes:
    m = bm.unchecked(model)
    edit(m.subgraphs[0])
    return tfm.write_model(m)


def _swap_first_two(sg):
    sg.operators[0], sg.operators[1] = sg.operators[1], sg.operators[0]


def _second_writer(sg):
    sg.operators[1].outputs = [HIDDEN]


def _no_operators(sg):
    sg.operators = []
    sg.outputs = [0]


def _input_out_of_range(sg):
    sg.operators[2].inputs = [PROJECTED, 99]


def _reads_unwritten(sg):
    sg.operators[1].inputs = [OUTPUT, 4, 5]
    sg.operators = sg.operators[:2]
    sg.outputs = [PROJECTED]


def _writes_graph_input(sg):
    sg.operators[2].outputs = [0]


BAD_STRUCTURE = [
    (
        _swap_first_two,
        r"operators out of order: operator 0 \(CONV_2D\) reads tensor #3 'hidden' before "
        r"operator 1 writes it",
    ),
    (_second_writer, r"tensor #3 'hidden' is written by two operators \(0 and 1\)"),
    (_no_operators, r"subgraph 0 has no operators"),
    (_input_out_of_range, r"operator 2 \(ADD\) uses tensor 99 of 8"),
    (_reads_unwritten, r"operator 1 \(CONV_2D\) reads tensor #7 'output', which no operator writes"),
    (_writes_graph_input, r"operator 2 \(ADD\) writes graph input tensor #0 'input'"),
]


@pytest.mark.parametrize("edit, message", BAD_STRUCTURE, ids=[e.__name__[1:] for e, _ in BAD_STRUCTURE])
def test_bad_graph_structure_is_rejected_by_every_reader(good, edit, message):
    from rnnpool_tflm.arena.graph import read_graph
    from rnnpool_tflm.runtime.host import HostModel
    from rnnpool_tflm.tflite.model_info import read_model_info

    bad = _edited(good, edit)
    for read in (tfm.read_model, read_model_info, read_graph, HostModel):
        with pytest.raises(tfm.ModelError, match=message):
            read(bad)


def test_export_refuses_a_model_without_operators(tmp_path, good):
    path = tmp_path / "empty.tflite"
    path.write_bytes(_edited(good, _no_operators))
    result = _cli(tmp_path, "export", str(path), "--firmware", str(tmp_path / "fw"))
    assert result.returncode not in (0, -6, 134) and "subgraph 0 has no operators" in result.stderr, result
    assert not (tmp_path / "fw" / "generated").exists()


# -- one contract: the Python validator and the C Prepare refuse the same RNNPool models ----------


def _rnnpool_case():
    import firmware_models

    from rnnpool_tflm.core.config import RNNPoolConfig
    from rnnpool_tflm.core.weights import RNNPoolWeights
    from rnnpool_tflm.reference import quantize_rnnpool

    rng = np.random.default_rng(7)
    config = RNNPoolConfig.create((4, 4), (2, 2), (8, 6))
    weights = RNNPoolWeights.random(5, 8, 6, rng, zeta=100.0, nu=-100.0)
    params = quantize_rnnpool(weights, config, 0.02, 3, 0.015, -4, per_channel=True)
    x = rng.integers(-128, 128, size=(1, 10, 9, 5)).astype(np.int8)
    return firmware_models.rnnpool_model(params, x.shape), x


def _quantize(index, scale, zero_point):
    def edit(m):
        q = tfm.schema.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = [scale], [zero_point], 0
        m.subgraphs[0].tensors[index].quantization = q

    return edit


def _drop_zero_points(index):
    def edit(m):
        m.subgraphs[0].tensors[index].quantization.zeroPoint = []

    return edit


def _options(entries):
    def edit(m):
        from flatbuffers import flexbuffers

        builder = flexbuffers.Builder()
        with builder.Map():
            for key, value in entries:
                builder.Int(key, value)
        m.subgraphs[0].operators[0].customOptions = list(builder.Finish())

    return edit


_GOOD_OPTIONS = [
    ("version", 1),
    ("patch_rows", 4),
    ("patch_cols", 4),
    ("stride_rows", 2),
    ("stride_cols", 2),
    ("padding", 0),
    ("gate_activation", 0),
    ("update_activation", 0),
]

# (edit, the Python validator's words, the C Prepare's words)
CONTRACT_CASES = [
    (
        _quantize(3, 1 / 4096, 1),
        r"'bias1': zero point 1 is outside \[0, 0\]",
        r"fixed-point tensor must have zero point 0 \(tensor 'bias1'\)",
    ),
    (
        _quantize(7, 1 / 16384, 5),
        r"fastgrnn_scalars has a nonzero zero point",
        r"fixed-point tensor must have zero point 0 \(tensor 'fastgrnn_scalars'\)",
    ),
    (_drop_zero_points(1), r"'w1': 8 scale\(s\) but no zero point", r"int8 weights without affine quantization"),
    (
        _options(_GOOD_OPTIONS + [("padding", 1)]),
        r"RNNPool option 'padding' is given twice",
        r"option given twice: 'padding'",
    ),
    (_options(_GOOD_OPTIONS + [("dilation", 2)]), r"unknown RNNPool option 'dilation'", r"unknown option 'dilation'"),
]
CONTRACT_IDS = ["bias_zero_point", "scalars_zero_point", "empty_weight_zero_points", "duplicate_key", "unknown_key"]


def _broken_rnnpool(edit):
    model, x = _rnnpool_case()
    m = bm.unchecked(model)
    edit(m)
    return tfm.write_model(m), x


def test_the_good_rnnpool_model_passes_the_validator():
    model, _ = _rnnpool_case()
    assert len(tfm.validate_model(tfm.read_model(model))) == 1


@pytest.mark.parametrize("edit, python_says, c_says", CONTRACT_CASES, ids=CONTRACT_IDS)
def test_the_python_validator_refuses(edit, python_says, c_says):
    bad, _ = _broken_rnnpool(edit)
    with pytest.raises(tfm.ModelError, match=python_says):
        tfm.validate_model(tfm.read_model(bad))


def _registerer_missing() -> str:
    from rnnpool_tflm.toolchain import tflm_tree

    return "" if os.environ.get(tflm_tree.TFLM_ENV) else f"needs TFLM sources (set {tflm_tree.TFLM_ENV})"


@pytest.mark.tflm
@pytest.mark.skipif(bool(_registerer_missing()), reason=_registerer_missing() or "-")
@pytest.mark.parametrize("edit, python_says, c_says", CONTRACT_CASES, ids=CONTRACT_IDS)
def test_the_c_prepare_refuses_the_same(edit, python_says, c_says):
    from rnnpool_tflm.runtime import registerer

    bad, x = _broken_rnnpool(edit)
    with pytest.raises(RNNPoolError, match=f"RNNPool: .*{c_says}"):
        run_interpreter(bad, [x], 1, [registerer.load()])


# -- mutated option bytes: never a crash, in Python or in the C parser ------------------------------

_MUTATION = st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4)


def _mutated_options(model: bytes, flips, cut: int) -> bytes:
    m = bm.unchecked(model)
    op = m.subgraphs[0].operators[0]
    raw = bytearray(bytes(bytearray(op.customOptions)))
    for position, xor in flips:
        raw[position % len(raw)] ^= xor
    op.customOptions = list(raw[: len(raw) - cut % len(raw)])
    return tfm.write_model(m)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=_MUTATION, cut=st.integers(0, 40))
def test_mutated_options_give_a_model_error_in_python(flips, cut):
    model, _ = _rnnpool_case()
    try:
        tfm.validate_model(tfm.read_model(_mutated_options(model, flips, cut)))
    except tfm.ModelError:
        pass


@pytest.mark.tflm
@pytest.mark.skipif(bool(_registerer_missing()), reason=_registerer_missing() or "-")
@settings(max_examples=80, deadline=None)
@given(flips=_MUTATION, cut=st.integers(0, 40))
def test_mutated_options_never_crash_the_c_parser(flips, cut):
    from rnnpool_tflm.runtime import registerer

    model, x = _rnnpool_case()
    try:
        run_interpreter(_mutated_options(model, flips, cut), [x], 1, [registerer.load()], isolate_prepare=True)
    except RNNPoolError as exc:
        assert "aborted (" not in str(exc)  # the forked Prepare died of a signal
