"""The offline memory plan: TFLM's OfflineMemoryAllocation metadata, the planner, its validator,
in-place RNNPool, the estimate of planned models, the converter's and the CLI's option.

The x86-64 checks run the tflite-micro wheel's interpreter (no TFLM_DIR); running the RNNPool
op in place needs the registerer (TFLM_DIR). Runtime: about 20 s (the TF converter builds the
small models once).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from arena_models import convert, mixed, rnnpool_model
from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

from rnnpool_tflm.arena import estimate_arena
from rnnpool_tflm.arena.graph import read_graph
from rnnpool_tflm.arena.host import measure_host_arena
from rnnpool_tflm.arena.in_place import in_place_candidates
from rnnpool_tflm.arena.offline_planner import UnsafePlanError, check_plan, plan_memory
from rnnpool_tflm.arena.planner import Buffer, place_greedy
from rnnpool_tflm.convert.memory_plan import apply_memory_plan
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.deploy.host_run import run_interpreter
from rnnpool_tflm.runtime import registerer as tflm_registerer
from rnnpool_tflm.tflite import model as tfm
from rnnpool_tflm.tflite import offline_plan
from rnnpool_tflm.toolchain import tflm_tree


@pytest.fixture(scope="module")
def mixed_model():
    return convert(mixed())


@pytest.fixture(scope="module")
def pool_model():
    return rnnpool_model(size=32, channels=8, patch=8, stride=4, hidden1=16, hidden2=16)


def _planned_tensors(model: bytes):
    sg = read_graph(model).main
    return [t for t in sg.tensors if not t.has_data and not t.is_variable and t.nbytes]


def _inputs(model: bytes, seed: int = 0):
    m = tfm.read_model(model)
    sg = m.subgraphs[0]
    rng = np.random.default_rng(seed)
    arrays = []
    for i in sg.inputs:
        t = sg.tensors[i]
        dtype = tfm.NUMPY_TYPES[t.type]
        if np.issubdtype(dtype, np.integer):
            arrays.append(rng.integers(-128, 128, tfm.tensor_shape(t)).astype(dtype))
        else:
            arrays.append(rng.uniform(-1, 1, tfm.tensor_shape(t)).astype(dtype))
    return arrays


def _outputs(model: bytes, registerers=()):
    count = len(tfm.read_model(model).subgraphs[0].outputs)
    return run_interpreter(model, _inputs(model), count, registerers)


# -- the metadata --------------------------------------------------------------------------------


def test_metadata_round_trip_is_aligned_and_replaced_not_added(mixed_model):
    count = len(read_graph(mixed_model).main.tensors)
    offsets = [-1] * count
    for k, t in enumerate(_planned_tensors(mixed_model)):
        offsets[t.index] = 1024 * k
    planned = offline_plan.write_with_plan(mixed_model, offsets)
    assert offline_plan.read_plan(tfm.read_model(planned)) == offsets
    assert read_graph(planned).offline_offsets == tuple(offsets)
    root = schema.Model.GetRootAs(planned, 0)
    entries = [
        root.Metadata(i)
        for i in range(root.MetadataLength())
        if root.Metadata(i).Name() == offline_plan.METADATA_NAME.encode()
    ]
    assert len(entries) == 1
    buffer = root.Buffers(entries[0].Buffer())
    start = buffer._tab.Vector(buffer._tab.Offset(4))  # TFLM reads the data as uint32 words
    assert start % 16 == 0
    words = np.frombuffer(planned[start : start + 4 * (3 + count)], "<i4")
    assert words[1:3].tolist() == [1, count] and words[3:].tolist() == offsets
    # Replacing keeps one entry and one buffer; removing restores the buffer count.
    again = offline_plan.write_with_plan(planned, [-1] * count)
    assert offline_plan.read_plan(tfm.read_model(again)) == [-1] * count
    assert len(tfm.read_model(again).buffers) == len(tfm.read_model(planned).buffers)
    removed = offline_plan.write_with_plan(again, None)
    assert offline_plan.read_plan(tfm.read_model(removed)) is None
    assert len(tfm.read_model(removed).buffers) == len(tfm.read_model(mixed_model).buffers)


def test_malformed_metadata_is_rejected(mixed_model):
    with pytest.raises(RNNPoolError, match="int32 words"):
        offline_plan.decode(b"\x00" * 10)
    with pytest.raises(RNNPoolError, match="announces 5 offsets"):
        offline_plan.decode(np.array([1, 1, 5, 0], "<i4").tobytes())
    with pytest.raises(RNNPoolError, match="offset -7"):
        offline_plan.decode(np.array([1, 1, 1, -7], "<i4").tobytes())
    count = len(read_graph(mixed_model).main.tensors)
    with pytest.raises(RNNPoolError, match=f"3 offsets for {count} tensors"):
        offline_plan.write_with_plan(mixed_model, [-1, -1, -1])
    # A plan for another tensor list (written past the editor) is refused by the reader.
    m = tfm.read_model(offline_plan.write_with_plan(mixed_model, [-1] * count))
    entry = next(e for e in m.metadata if tfm._text(e.name) == offline_plan.METADATA_NAME)
    m.buffers[entry.buffer].data = np.frombuffer(offline_plan.encode([-1] * (count + 2)), np.uint8)
    with pytest.raises(RNNPoolError, match="TFLM rejects"):
        read_graph(tfm.write_model(m))


# -- the planner ---------------------------------------------------------------------------------


def test_fixed_buffers_are_placed_first_and_the_rest_fill_their_gaps():
    # Fixed: a [0, 112) steps 0-1, b [320, 528) steps 1-2. Online: c (208 B, steps 1-1) fits the
    # gap [112, 320) that a and b leave; d (64 B, step 3) goes to 0 (nothing alive then).
    buffers = [
        Buffer("tensor", 0, None, 100, 0, 1, 0, True),
        Buffer("tensor", 1, None, 200, 1, 2, 320, True),
        Buffer("tensor", 2, None, 200, 1, 1),
        Buffer("scratch", 0, 2, 60, 3, 3),
    ]
    assert place_greedy(buffers) == 528
    assert [b.offset for b in buffers] == [0, 320, 112, 0]
    # Without room in the gap, the online buffer goes above the highest overlapping one.
    buffers[2] = Buffer("tensor", 2, None, 224, 1, 1)
    assert place_greedy(buffers) == 528 + 224 and buffers[2].offset == 528


def test_offline_plan_reaches_the_live_set_and_tflm_uses_it(mixed_model):
    plan = plan_memory(mixed_model, "x86-64")
    assert plan.head_bytes < plan.greedy_head_bytes  # TFLM's greedy plan leaves a gap here
    assert plan.head_bytes == plan.live_bytes  # no overlap: the live set is the floor
    planned, written = apply_memory_plan(mixed_model, target="x86-64")
    assert written is not None and written.offsets == plan.offsets
    assert check_plan(planned, None, "x86-64") == []
    estimate, measured = estimate_arena(planned, "x86-64"), measure_host_arena(planned)
    assert (estimate.total_bytes, estimate.head_bytes, estimate.tail_bytes) == (
        measured.total_bytes,
        measured.head_bytes,
        measured.tail_bytes,
    )
    assert estimate.head_bytes == plan.head_bytes and estimate.certain
    assert measured.total_bytes < measure_host_arena(mixed_model).total_bytes
    for got, want in zip(_outputs(planned), _outputs(mixed_model), strict=True):
        np.testing.assert_array_equal(got, want)


def test_before_and_after_figures_are_the_unplanned_model_s(mixed_model, capsys, tmp_path):
    from rnnpool_tflm.arena import arena_report
    from rnnpool_tflm.cli.main import main

    planned, _ = apply_memory_plan(mixed_model)
    before, after = arena_report(mixed_model), arena_report(planned)
    assert before.estimate.greedy_total_bytes is None
    assert after.estimate.greedy_total_bytes == before.estimate.total_bytes > after.estimate.total_bytes
    assert [op.greedy_high_water_bytes for op in after.ops] == [op.high_water_bytes for op in before.ops]
    path = tmp_path / "planned.tflite"
    path.write_bytes(planned)
    assert main(["profile", str(path)]) == 0
    assert f"TFLM's greedy plan would need {before.estimate.total_bytes:,} B" in capsys.readouterr().out


def test_greedy_mode_and_no_gain_write_no_plan(mixed_model):
    planned, _ = apply_memory_plan(mixed_model, target="x86-64")
    cleared, plan = apply_memory_plan(planned, "greedy")
    assert plan is None and read_graph(cleared).offline_offsets is None
    with pytest.raises(RNNPoolError, match="expected one of offline, greedy"):
        apply_memory_plan(mixed_model, "best")


# -- the validator -------------------------------------------------------------------------------


def test_validator_rejects_unsafe_plans(mixed_model):
    plan = plan_memory(mixed_model, "x86-64")
    graph = read_graph(mixed_model)
    sg = graph.main
    producer = next(op for op in sg.operators if op.inputs and op.inputs[0] in sg.inputs)
    x, y = producer.inputs[0], producer.outputs[0]  # both alive at that op, not an in-place op
    bad = list(plan.offsets)
    bad[y] = bad[x]
    with pytest.raises(
        UnsafePlanError,
        match=rf"tensor {x} .* tensor {y} .* alive at operator {producer.index}|"
        rf"tensor {y} .* tensor {x} .* alive at operator {producer.index}",
    ):
        check_plan(mixed_model, bad, "x86-64")
    constant = next(t for t in sg.tensors if t.has_data)
    bad = list(plan.offsets)
    bad[constant.index] = 0
    with pytest.raises(UnsafePlanError, match="is a constant"):
        check_plan(mixed_model, bad, "x86-64")
    bad = list(plan.offsets)
    bad[x] += 8
    with pytest.raises(UnsafePlanError, match="multiple of 16"):
        check_plan(mixed_model, bad, "x86-64")
    with pytest.raises(UnsafePlanError, match="offsets for"):
        check_plan(mixed_model, plan.offsets[:-1], "x86-64")
    with pytest.raises(RNNPoolError, match="no offline memory plan"):
        check_plan(mixed_model)


def test_check_and_export_refuse_a_model_with_an_unsafe_plan(mixed_model, tmp_path, capsys):
    from rnnpool_tflm.cli.main import main

    plan = plan_memory(mixed_model, "x86-64")
    sg = read_graph(mixed_model).main
    op = next(op for op in sg.operators if op.inputs and op.inputs[0] in sg.inputs)
    bad = list(plan.offsets)
    bad[op.outputs[0]] = bad[op.inputs[0]] + 16  # the output 16 B after its live input
    path = tmp_path / "unsafe.tflite"
    path.write_bytes(offline_plan.write_with_plan(mixed_model, bad))
    for command in (["check", str(path)], ["export", str(path), "--firmware", str(tmp_path / "fw")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "offline plan overlaps live tensors" in err and len(err.strip().splitlines()) == 1


# -- in place ------------------------------------------------------------------------------------


def _in_place_plan(model: bytes, closer: int = 0, op_name: str = "RNNPool"):
    """Offsets with the op's input starting `lag` (rounded up to 16) minus `closer` bytes after
    its output (the lower of the two at 0), every other tensor stacked above both."""
    graph = read_graph(model)
    (pair,) = [p for p in in_place_candidates(graph, "x86-64") if graph.main.operators[p.op].name == op_name]
    tensors = {t.index: t for t in _planned_tensors(model)}
    gap = -(-pair.lag // 16) * 16 - closer  # input_start - output_start
    offsets = [-1] * len(graph.main.tensors)
    offsets[pair.input], offsets[pair.output] = max(gap, 0), max(-gap, 0)
    top = max(offsets[i] + -(-tensors[i].nbytes // 16) * 16 for i in (pair.input, pair.output))
    for index, t in tensors.items():
        if index not in (pair.input, pair.output):
            offsets[index] = top
            top += -(-t.nbytes // 16) * 16
    return pair, offsets


@pytest.mark.parametrize("mode", ["cached", "recompute"])
def test_in_place_overlap_is_accepted_at_the_lag_and_refused_closer(pool_model, mode):
    model = tfm.set_rnn1_mode(pool_model, mode)
    pair, offsets = _in_place_plan(model)
    assert check_plan(model, offsets, "x86-64") == [pair]
    _, closer = _in_place_plan(model, closer=16)
    with pytest.raises(UnsafePlanError, match=rf"input_start - output_start >= {pair.lag} \(here "):
        check_plan(model, closer, "x86-64")


def test_planner_uses_in_place_only_when_it_lowers_the_head(pool_model):
    plan = plan_memory(pool_model, "x86-64")
    (pair,) = plan.in_place
    assert plan.head_bytes < plan.live_bytes  # below the no-overlap floor
    assert plan.offsets[pair.input] - plan.offsets[pair.output] >= pair.lag
    no_overlap = plan_memory(pool_model, "x86-64", in_place=False)
    assert no_overlap.in_place == () and no_overlap.head_bytes >= no_overlap.live_bytes > plan.head_bytes


def _missing() -> str:
    if not os.environ.get(tflm_tree.TFLM_ENV):
        return "TFLM_DIR is not set (running the RNNPool op needs the registerer, built against TFLM)"
    tools = [t for t in (tflm_registerer.HOST_CC, tflm_registerer.HOST_CXX) if shutil.which(t) is None]
    return f"missing {', '.join(tools)}" if tools else ""


@pytest.mark.tflm
@pytest.mark.skipif(bool(_missing()), reason=_missing() or "-")
@pytest.mark.parametrize("mode", ["cached", "recompute"])
def test_rnnpool_in_place_through_tflm_gives_the_same_bytes(pool_model, mode):
    model = tfm.set_rnn1_mode(pool_model, mode)
    registerers = tflm_registerer.load_all()
    expected = _outputs(model, registerers)
    pair, offsets = _in_place_plan(model)
    planned = offline_plan.write_with_plan(model, offsets)
    for got, want in zip(_outputs(planned, registerers), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    best, plan = apply_memory_plan(model, target="x86-64")
    if mode == "cached":  # the planner's own choice: in place lowers this model's head (recompute: no gain)
        assert plan is not None and plan.in_place
    assert estimate_arena(best, "x86-64").total_bytes == measure_host_arena(best, registerers=registerers).total_bytes
    for got, want in zip(_outputs(best, registerers), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # The same run is sensitive to the overlap: the output over unread input rows changes it.
    _, unsafe = _in_place_plan(model, closer=512)
    unsafe_model = offline_plan.write_with_plan(model, unsafe)
    with pytest.raises(UnsafePlanError):
        check_plan(unsafe_model, None, "x86-64")
    assert any(not np.array_equal(g, w) for g, w in zip(_outputs(unsafe_model, registerers), expected, strict=True))


def _strided_conv_model() -> bytes:
    from rnnpool_tflm.core.keras import keras

    layers = keras.layers
    keras.utils.set_random_seed(3)
    i = keras.Input((16, 20, 1))
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(i)
    x = layers.Conv2D(8, 1)(x)
    return convert(keras.Model(i, layers.Dense(3)(layers.GlobalAveragePooling2D()(x))))


def test_strided_conv_in_place_through_tflm_gives_the_same_bytes():
    model = _strided_conv_model()
    graph = read_graph(model)
    pairs = {graph.main.operators[p.op].name: p for p in in_place_candidates(graph, "x86-64")}
    # 16x20x1 -> 8x10x4, 3x3 stride 2 SAME (no top padding): output row r (40 B) ends at 40(r + 1)
    # while row r's windows start at input row 2r (20 B a row): lag = max(40(r + 1) - 40r) = 40.
    # The 1x1 convolution is never in place (CMSIS-NN runs it with another function).
    assert set(pairs) == {"CONV_2D"} and pairs["CONV_2D"].lag == 40
    expected = _outputs(model)
    pair, offsets = _in_place_plan(model, op_name="CONV_2D")
    assert offsets[pair.input] - offsets[pair.output] == 48
    assert check_plan(model, offsets, "x86-64") == [pair]
    for got, want in zip(_outputs(offline_plan.write_with_plan(model, offsets)), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    _, unsafe = _in_place_plan(model, closer=48 + 96, op_name="CONV_2D")  # output 96 B after the input
    with pytest.raises(UnsafePlanError, match=r">= 40 \(here -96\)"):
        check_plan(model, unsafe, "x86-64")
    unsafe_model = offline_plan.write_with_plan(model, unsafe)
    assert any(not np.array_equal(g, w) for g, w in zip(_outputs(unsafe_model), expected, strict=True))


def _side_head_model() -> bytes:
    """i -> a (16x16x16) -> b -> c -> d, plus a small 1x1 head on `a` as a second output; the
    head is moved to the end, where it keeps `a` alive across b, c and d."""
    from rnnpool_tflm.core.keras import keras

    layers = keras.layers
    keras.utils.set_random_seed(4)
    i = keras.Input((16, 16, 2))
    a = layers.Conv2D(16, 3, padding="same")(i)
    x = a
    for _ in range(3):
        x = layers.Conv2D(16, 3, padding="same")(x)
    head = layers.Conv2D(1, 1)(a)
    model = tfm.read_model(convert(keras.Model(i, [layers.GlobalAveragePooling2D()(x), head])))
    sg = model.subgraphs[0]
    (side,) = [o for o, op in enumerate(sg.operators) if tfm.tensor_shape(sg.tensors[op.outputs[0]])[-1:] == (1,)]
    sg.operators = [op for o, op in enumerate(sg.operators) if o != side] + [sg.operators[side]]
    return tfm.write_model(model)


def test_memory_aware_order_runs_the_side_head_early_with_the_same_bytes():
    from rnnpool_tflm.convert.op_order import memory_order, reorder

    model = _side_head_model()
    graph = read_graph(model)
    ops = graph.main.operators
    a = next(op.index for op in ops if ops[-1].inputs[0] in op.outputs)  # the head's source
    order = memory_order(tfm.read_model(model))
    assert order.index(len(ops) - 1) == order.index(a) + 1  # the head right after it
    reordered = reorder(model)
    assert plan_memory(reordered, "x86-64").head_bytes < plan_memory(model, "x86-64").head_bytes
    planned, plan = apply_memory_plan(model, target="x86-64")
    assert plan.reordered and read_graph(planned).main.operators[order.index(a) + 1].outputs == ops[-1].outputs
    assert estimate_arena(planned, "x86-64").total_bytes == measure_host_arena(planned).total_bytes
    for got, want in zip(_outputs(planned), _outputs(model), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.tflm
@pytest.mark.skipif(bool(_missing()), reason=_missing() or "-")
@pytest.mark.parametrize("stride, residual, co", [(1, True, 8), (1, False, 12), (2, False, 8)])
def test_inverted_residual_in_place_through_tflm_gives_the_same_bytes(stride, residual, co):
    import invres_models as im

    from rnnpool_tflm.core.contract import inverted_residual_contract

    rng = np.random.default_rng(stride + 2 * residual)
    p = im.random_params(rng, 8, 16, co, stride, True, residual)
    model = im.fused_model(im.unfused_model(p, (1, 12, 10, 8)))
    name = inverted_residual_contract().custom_code
    pair, offsets = _in_place_plan(model, op_name=name)
    # By hand (invres_s8_eval's loop): input rows of 80 B, output rows of Wo*Co B, pad_top 1 at
    # stride 1, 0 at stride 2. Residual: row r is written while input row r is read, so
    # lag = max((r + 1) * 80 - 80 r) = 80. Without: the next expansion is row r*s - pad_top + 3.
    want = {
        (1, True): 80,
        (1, False): max((r + 1) * 120 - (r + 2) * 80 for r in range(10)),
        (2, False): max((r + 1) * 40 - (2 * r + 3) * 80 for r in range(5) if 2 * r + 3 < 12),
    }
    assert pair.lag == want[(stride, residual)]
    registerers = tflm_registerer.load_all()
    expected = _outputs(model, registerers)
    for got, want_out in zip(
        _outputs(offline_plan.write_with_plan(model, offsets), registerers), expected, strict=True
    ):
        np.testing.assert_array_equal(got, want_out)
    _, unsafe = _in_place_plan(model, closer=512, op_name=name)
    assert any(
        not np.array_equal(g, w)
        for g, w in zip(_outputs(offline_plan.write_with_plan(model, unsafe), registerers), expected, strict=True)
    )


# -- the command line ----------------------------------------------------------------------------


def test_convert_replans_a_tflite(mixed_model, tmp_path):
    source = tmp_path / "in.tflite"
    source.write_bytes(mixed_model)
    for mode, has_plan in (("offline", True), ("greedy", False)):
        out = tmp_path / f"{mode}.tflite"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "rnnpool_tflm.cli.main",
                "convert",
                str(source),
                "-o",
                str(out),
                "--memory-plan",
                mode,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert (read_graph(out.read_bytes()).offline_offsets is not None) == has_plan
        assert ("memory plan: offline" in done.stdout) == has_plan


# -- the emulated Cortex-M4 (CMSIS-NN kernels, the firmware's plain MicroInterpreter) ------------


def _missing_firmware() -> str:
    from rnnpool_tflm.deploy import build as firmware_build
    from rnnpool_tflm.deploy import emulate as firmware_run

    if not os.environ.get(tflm_tree.TFLM_ENV):
        return "TFLM_DIR is not set (the firmware is built against TFLM)"
    tools = firmware_build.missing_tools() + ([firmware_run.QEMU] if shutil.which(firmware_run.QEMU) is None else [])
    return f"missing {', '.join(tools)}" if tools else ""


@pytest.mark.slow
@pytest.mark.tflm
@pytest.mark.skipif(bool(_missing_firmware()), reason=_missing_firmware() or "-")
@pytest.mark.parametrize("which", ["strided_conv", "rnnpool", "mixed"])
def test_in_place_plans_on_the_emulated_m4_give_the_unplanned_bytes(which, pool_model, mixed_model, tmp_path):
    from rnnpool_tflm.deploy import emulate as firmware_run
    from rnnpool_tflm.deploy.host_run import host_outputs

    path = tmp_path / "planned.tflite"
    if which == "mixed":  # the planner's own plan (no overlap): below TFLM's greedy head
        planned, plan = apply_memory_plan(mixed_model)
        assert plan is not None and plan.head_bytes < plan.greedy_head_bytes
        path.write_bytes(planned)
    else:
        model = _strided_conv_model() if which == "strided_conv" else pool_model
        _, offsets = _in_place_plan(model, op_name="CONV_2D" if which == "strided_conv" else "RNNPool")
        path.write_bytes(offline_plan.write_with_plan(model, offsets))

    def unplanned_host(planned, inputs, info):  # the reference: the same model without a plan
        return host_outputs(offline_plan.write_with_plan(planned, None), inputs, info)

    result = firmware_run.emulate_model(path, host_run=unplanned_host)
    assert result.output_matches_host
    assert result.arena_used_bytes == estimate_arena(path.read_bytes(), "cortex-m4").total_bytes
