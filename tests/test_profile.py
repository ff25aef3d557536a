"""`rnnpool-tflm profile`: Keras-side figures, the TFLM arena part (and its absence), plots, errors.

Runs in-process through cli.main (TensorFlow is imported once). About 40 s on 2 cores.
"""

import json
import struct
import sys

import numpy as np
import pytest

from rnnpool_tflm.analysis import profile as prof
from rnnpool_tflm.analysis import zoo as models
from rnnpool_tflm.analysis.counts import analyze
from rnnpool_tflm.cli import main as cli
from rnnpool_tflm.core.keras import keras

L = keras.layers


def _main(capsys, *args):
    code = cli.main(["profile", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _small_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3), name="img")
    x = L.Conv2D(8, 3, strides=2, padding="same", name="conv")(inputs)
    x = L.ReLU(6.0, name="relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, L.Dense(4, name="fc")(x), name="small")


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    """A small Keras model (no RNNPool) and its int8 .tflite."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("profile")
    model = _small_model()
    model.save(folder / "small.keras")
    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.random((1, 12, 12, 3), dtype=np.float32)] for _ in range(4))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    (folder / "small.tflite").write_bytes(converter.convert())
    return folder


def test_zoo_model_json_matches_the_analysis(capsys):
    code, out, err = _main(capsys, "zoo:face_m4", "--no-tflm", "--json", "--resident-input")
    assert code == 0, err
    report = json.loads(out)
    expected = analyze(models.rnnpool_face_m4(), 1, resident_input=True)
    keras_part = report["keras"]
    assert keras_part["params"] == expected.total_params and keras_part["macs"] == expected.total_macs
    assert keras_part["paper_peak_bytes"] == expected.peak_bytes == 192_000
    assert [row["name"] for row in keras_part["layers"]] == [layer.name for layer in expected.layers]
    assert report["tflm"] == {"available": False, "note": "TFLM part skipped (--no-tflm)"}


def test_text_report_shows_layers_totals_and_the_missing_tflm_part(capsys):
    code, out, _ = _main(capsys, "zoo:mobilenetv2_rnnpool_vww", "--no-tflm", "--board", "nucleo_f446re")
    assert code == 0
    a = analyze(models.mobilenetv2_rnnpool_vww(), 1)
    assert f"total: {a.total_params:,} parameters, {a.total_macs:,} MACs" in out
    assert f"peak RAM, paper convention (E.2): {a.peak_bytes:,} B" in out
    assert "TFLM arena: unavailable (TFLM part skipped (--no-tflm))" in out
    assert "board nucleo_f446re: largest RAM block 131,072 B; the paper-convention peak fits" in out
    rows = [line for line in out.splitlines() if line.strip().startswith("4 rnnpool ")]
    assert rows and "27x27x32" in rows[0] and f"{a.layers[4].macs:,}" in rows[0]


def test_tflite_gives_the_arena_per_operator(capsys, small_files):
    from rnnpool_tflm.arena import arena_report

    flatbuffer = (small_files / "small.tflite").read_bytes()
    expected = arena_report(flatbuffer, "cortex-m4")
    code, out, err = _main(
        capsys,
        str(small_files / "small.keras"),
        "--tflite",
        str(small_files / "small.tflite"),
        "--board",
        "nucleo_f446re",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    tflm = report["tflm"]
    assert tflm["available"] and tflm["arena_bytes"] == expected.estimate.total_bytes
    assert [op["op"] for op in tflm["ops"]] == [op.op for op in expected.ops]
    assert [op["high_water_bytes"] for op in tflm["ops"]] == [op.high_water_bytes for op in expected.ops]
    # The board verdict is check's and export's (deploy/fit.py): the arena with its margin
    # (5 %, at least 1 KiB, rounded to 16 B), the firmware's data and, on the F446 (no CCM),
    # the 16 KiB stack in the same SRAM block.
    v = tflm["verdict"]
    assert v["board"] == "nucleo_f446re" and v["stack_in_arena_block"] == 16 * 1024
    with_margin = -(-(v["arena_figure_bytes"] + max(1024, -(-v["arena_figure_bytes"] * 5 // 100))) // 16) * 16
    assert v["ram_needed"] == with_margin + v["firmware_static_ram"] + 16 * 1024
    assert tflm["model_bytes"] == len(flatbuffer)
    assert report["keras"]["params"] == 3 * 3 * 3 * 8 + 8 + 8 * 4 + 4

    code, out, _ = _main(capsys, str(small_files / "small.tflite"))
    assert code == 0
    assert "Keras layers: unavailable (MODEL is a .tflite" in out
    assert f"TFLM arena: {expected.estimate.total_bytes:,} B" in out and "CONV_2D" in out


def test_without_a_converter_the_tflm_part_says_so(capsys, monkeypatch):
    import rnnpool_tflm

    monkeypatch.setitem(sys.modules, "rnnpool_tflm.convert", None)  # the import fails as if it were absent
    monkeypatch.delattr(rnnpool_tflm, "convert", raising=False)
    loaded = prof.load("zoo:face_m4")
    p = prof.profile(loaded)
    assert not p.tflm.available and "rnnpool_tflm.convert is not available" in p.tflm.note
    text = prof.format_profile(p)
    assert "TFLM arena: unavailable (rnnpool_tflm.convert is not available" in text
    assert p.as_dict()["tflm"] == {"available": False, "note": p.tflm.note}


def test_baseline_without_rnnpool_converts_to_builtin_ops(small_files):
    loaded = prof.load(str(small_files / "small.keras"))
    p = prof.profile(loaded, target="x86-64")
    assert p.tflm.available and p.tflm.target == "x86-64"
    assert [op.op for op in p.tflm.report.ops][0] == "CONV_2D"
    assert "RNNPool" not in {op.op for op in p.tflm.report.ops}


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plot_with_a_baseline(capsys, tmp_path, small_files):
    png = tmp_path / "memory.png"
    code, out, err = _main(
        capsys,
        "zoo:face_m4",
        "--baseline",
        "zoo:face_m4_strided_conv",
        "--no-tflm",
        "--plot",
        str(png),
        "--board",
        "nucleo_f446re",
    )
    assert code == 0, err
    width, height = _png_size(png)
    assert width > 800 and height > 300
    assert "baseline:" in out and "profile of zoo:face_m4_strided_conv" in out
    # with a TFLM part the figure gets a second panel
    png2 = tmp_path / "both.png"
    code, _, err = _main(
        capsys, str(small_files / "small.keras"), "--tflite", str(small_files / "small.tflite"), "--plot", str(png2)
    )
    assert code == 0, err
    assert _png_size(png2)[1] > 1.6 * height


@pytest.mark.parametrize(
    "args,message",
    [
        (["zoo:resnet"], "unknown zoo model 'resnet'"),
        (["missing.keras"], "model 'missing.keras' not found"),
        (["zoo:face_m4", "--plot", "out.jpg", "--no-tflm"], "--plot must name a .png"),
        (["zoo:face_m4", "--board", "arduino", "--no-tflm"], "unknown board 'arduino'"),
    ],
)
def test_errors_are_one_line(capsys, args, message):
    code, out, err = _main(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("rnnpool-tflm profile: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_files_are_clear_errors(capsys, tmp_path, small_files):
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"not a flatbuffer at all")
    code, _, err = _main(capsys, str(fake))
    assert code == 2 and "not a TFLite flatbuffer" in err
    other = tmp_path / "model.txt"
    other.write_text("x")
    code, _, err = _main(capsys, str(other))
    assert code == 2 and "expected a .keras/.h5 file" in err
    code, _, err = _main(capsys, str(small_files / "small.keras"), "--tflite", str(small_files / "small.keras"))
    assert code == 2 and "is not a .tflite file" in err
