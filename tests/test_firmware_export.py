"""`rnnpool-tflm export`: the generated firmware sources of a model.

Runs without TFLM sources (the host run is the tflite-micro wheel; arena and firmware
size estimated), except the operator-name test, which reads TFLM's
MicroMutableOpResolver (skipped without TFLM_DIR). With TFLM_DIR the same tests take
the path `export` takes there: the arena measured on the emulated Cortex-M4 and the
firmware built for the board. Expected values come from elsewhere: TensorFlow Lite's
reference kernels for the output, the margin rule and FNV-1a worked by hand.
About 20 s without TFLM_DIR, 70 s with it (library cached).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import stat

import firmware_models
import numpy as np
import pytest

from rnnpool_tflm.cli import main as cli
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.deploy import export as firmware_export
from rnnpool_tflm.deploy import fit as fitting
from rnnpool_tflm.deploy import sources as firmware_sources
from rnnpool_tflm.tflite import model_info as firmware_model
from rnnpool_tflm.toolchain import tflm_tree as tflm_sources

GENERATED = [
    "detector_config.h",
    "manifest.json",
    "model_config.h",
    "model_data.cc",
    "model_data.h",
    "model_ops.h",
    "test_data.cc",
    "test_data.h",
]


@pytest.fixture(scope="module")
def conv_path(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("models") / "conv.tflite"
    path.write_bytes(firmware_models.conv_model())
    return path


def _c_array(text: str, name: str) -> list:
    body = re.search(name + r"\[\] = \{(.*?)\};", text, re.S).group(1)
    return [int(v.rstrip("u"), 0) for v in re.findall(r"-?0x[0-9a-f]+u?|-?\d+", body)]


def _tflite_reference(model: bytes, x: np.ndarray) -> np.ndarray:
    """The model on TensorFlow Lite's reference kernels: a second implementation of the int8
    arithmetic (the export's host run is TFLM's)."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(
            model_content=model, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF
        )
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _fnv1a(data: bytes) -> str:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) % 2**32
    return f"0x{h:08x}"


def test_the_fnv1a_digest_matches_the_published_vectors():
    # FNV-1a 32-bit test vectors (Fowler/Noll/Vo): "" and "a", "foobar".
    assert [firmware_sources.fnv1a32(s) for s in (b"", b"a", b"foobar")] == [0x811C9DC5, 0xE40C292C, 0xBF9CF968]


def test_export_writes_model_ops_test_data_and_manifest(conv_path, tmp_path):
    generated, fit = firmware_export.export_model(conv_path, tmp_path / "fw")
    out = tmp_path / "fw" / "generated"
    assert generated.directory == out
    assert sorted(p.name for p in out.iterdir()) == GENERATED
    assert sorted(f.name for f in generated.files) == GENERATED and all(f.is_file() for f in generated.files)
    assert not [p for p in (tmp_path / "fw").iterdir() if p.name.startswith(".")]  # no staging left

    model = conv_path.read_bytes()
    source = (out / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in source
    assert bytes(_c_array(source, "g_model_data")) == model

    ops = (out / "model_ops.h").read_text()
    assert "constexpr int kOpCount = 1;" in ops and "resolver.AddConv2D(tflite::Register_CONV_2D_NARROW())" in ops

    # The embedded input and expected output: TFLite's reference kernels on that input.
    test_data = (out / "test_data.cc").read_text()
    x = np.array(_c_array(test_data, "g_input_0"), np.int8).reshape(1, 16, 16, 3)
    expected = np.array(_c_array(test_data, "g_expected_0"), np.int8)
    reference = _tflite_reference(model, x)
    np.testing.assert_array_equal(expected, reference.reshape(-1))

    manifest = json.loads((out / "manifest.json").read_text())
    figure = manifest["arena_figure_bytes"]
    # The margin: 5 % of the figure, at least 1 KiB, the sum rounded up to 16 bytes.
    by_hand = -(-(figure + max(1024, -(-figure * 5 // 100))) // 16) * 16
    assert manifest["arena_bytes"] == by_hand == fit.arena_bytes
    assert f"RNNPOOL_ARENA_BYTES {by_hand}u" in (out / "model_config.h").read_text()
    assert manifest["outputs"][0]["fnv1a"] == _fnv1a(reference.tobytes())
    assert fit.fits and fit.board == "nucleo_f446re"
    # The F446 has no CCM: its 16 KiB stack shares the arena's SRAM block and counts.
    assert manifest["fit"]["stack_in_arena_block"] == 16 * 1024
    assert fit.verdict.ram_needed == by_hand + 16 * 1024 + manifest["fit"]["firmware_static_ram"]
    if fitting.can_build_firmware():  # TFLM_DIR: the check's measured figure, the built firmware
        assert manifest["arena_figure_source"].startswith("measured on the emulated Cortex-M4")
        assert manifest["emulated_output_matches_host"] is True
        assert manifest["fit_judged_on"] == "built firmware" and 0 < manifest["fit"]["firmware_static_ram"] <= 7 * 1024
        assert manifest["fit"]["linker_overflows"] == []
    else:
        assert manifest["arena_figure_source"] == "estimate"
        assert manifest["fit_judged_on"] == "estimated firmware"


def test_export_uses_the_given_input_and_quantizes_float_data(conv_path, tmp_path):
    info = firmware_model.read_model_info(conv_path.read_bytes())
    t = info.inputs[0]
    x = np.random.default_rng(1).uniform(-1, 1, t.shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    generated, _ = firmware_export.export_model(conv_path, tmp_path / "fw", tmp_path / "x.npy")
    q = np.clip(np.sign(x / t.scale) * np.floor(np.abs(x / t.scale) + 0.5) + t.zero_point, -128, 127)
    np.testing.assert_array_equal(generated.inputs[0], q.astype(np.int8))


def test_export_refuses_a_model_too_large_for_the_board_and_writes_nothing(tmp_path):
    big = tmp_path / "big.tflite"
    big.write_bytes(firmware_models.conv_model(height=144, width=144, channels=3, filters=16))
    firmware_dir = tmp_path / "fw"
    with pytest.raises(RNNPoolError, match=r"does not fit nucleo_f446re: RAM does not fit: .* misses [\d,]+ B"):
        firmware_export.export_model(big, firmware_dir, board="nucleo_f446re")
    assert not firmware_dir.exists()
    # The bigger SRAM of the F429 takes it.
    _, fit = firmware_export.export_model(big, firmware_dir, board="nucleo_f429zi")
    assert fit.fits


def test_a_failed_export_keeps_the_previous_sources(conv_path, tmp_path):
    firmware_export.export_model(conv_path, tmp_path / "fw")
    before = {p.name: p.read_bytes() for p in (tmp_path / "fw" / "generated").iterdir()}
    np.save(tmp_path / "wrong.npy", np.zeros((1, 8, 8, 3), np.int8))
    with pytest.raises(RNNPoolError, match=r"shape \(1, 8, 8, 3\).*needs \(1, 16, 16, 3\)"):
        firmware_export.export_model(conv_path, tmp_path / "fw", tmp_path / "wrong.npy")
    after = {p.name: p.read_bytes() for p in (tmp_path / "fw" / "generated").iterdir()}
    assert after == before


def test_an_export_interrupted_mid_write_leaves_the_previous_set(conv_path, tmp_path, monkeypatch):
    """The generated files form one set: a failure after some files are written (here the
    fourth) leaves the previous set whole, the folder's README too, and no staging folder."""
    generated = tmp_path / "fw" / "generated"
    generated.mkdir(parents=True)
    (generated / "README.md").write_text("what this folder is for\n")
    firmware_export.export_model(conv_path, tmp_path / "fw")
    before = {p.name: p.read_bytes() for p in generated.iterdir()}
    assert sorted(before) == sorted(GENERATED + ["README.md"])

    real_write = firmware_sources.atomic_write_text
    written = []

    def failing_write(path, text):
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(path)
        return real_write(path, text)

    monkeypatch.setattr(firmware_sources, "atomic_write_text", failing_write)
    np.save(tmp_path / "other.npy", np.ones((1, 16, 16, 3), np.int8))
    with pytest.raises(OSError, match="No space left"):
        firmware_export.export_model(conv_path, tmp_path / "fw", tmp_path / "other.npy")
    assert len(written) == 3  # the failure came mid-set
    assert {p.name: p.read_bytes() for p in generated.iterdir()} == before
    assert sorted(p.name for p in (tmp_path / "fw").iterdir()) == ["generated"]


def test_exported_files_have_the_usual_modes(conv_path, tmp_path):
    old = os.umask(0o022)
    try:
        firmware_export.export_model(conv_path, tmp_path / "fw")
        generated = tmp_path / "fw" / "generated"
        assert {stat.S_IMODE(p.stat().st_mode) for p in generated.iterdir()} == {0o644}
        assert stat.S_IMODE(generated.stat().st_mode) == 0o755
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not a model at all", "not a .tflite model"),
        (None, "truncated or corrupted"),
    ],
)
def test_export_rejects_bad_model_files(tmp_path, conv_path, data, message):
    path = tmp_path / "bad.tflite"
    path.write_bytes(data if data is not None else conv_path.read_bytes()[:200])
    with pytest.raises(RNNPoolError, match=message):
        firmware_export.export_model(path, tmp_path / "fw")


def test_export_cli(conv_path, tmp_path, capsys):
    assert cli.main(["export", str(conv_path), "--firmware", str(tmp_path / "fw"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ops"] == ["CONV_2D"] and report["verdict_fits"] is True
    assert cli.main(["export", str(tmp_path / "missing.tflite"), "--firmware", str(tmp_path / "fw")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["export", str(conv_path), "--firmware", str(tmp_path / "fw"), "--board", "nope"]) == 2
    assert "unknown board 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_export_and_emulate_reject_non_finite_input(conv_path, tmp_path, capsys, bad):
    x = np.zeros((1, 16, 16, 3), np.float32)
    x[0, 3, 4, 1] = bad
    np.save(tmp_path / "x.npy", x)
    for command in (["export", str(conv_path), "--firmware", str(tmp_path / "fw")], ["emulate", str(conv_path)]):
        assert cli.main([*command, "--input", str(tmp_path / "x.npy")]) == 2
        err = capsys.readouterr().err
        if command[0] == "emulate" and "TFLM_DIR" in err:
            continue  # emulate names TFLM_DIR first when it is not set
        assert f"input file {tmp_path / 'x.npy'} holds" in err and "(1 of 768 elements)" in err, err
    assert not (tmp_path / "fw").exists()


def test_export_names_a_directory_given_as_the_model(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path), "--firmware", str(tmp_path / "fw")]) == 2
    assert f"model file {tmp_path} is a directory, not a file" in capsys.readouterr().err


def test_generated_ops_list_only_the_model_ops_with_rnnpool_as_custom():
    info = firmware_model.ModelInfo(("CONV_2D", "RNNPool", "FULLY_CONNECTED"), (), (), 5, ("RNNPool",))
    header = firmware_sources._ops_header(info)
    assert "kOpCount = 3;" in header
    assert re.findall(r"resolver\.(\w+)\(", header) == ["AddConv2D", "AddCustom", "AddFullyConnected"]
    assert '#include "rnnpool_tflm.h"' in header and "RNNPOOL_CUSTOM_CODE" in header
    with pytest.raises(RNNPoolError, match="custom operator 'Other' is not supported"):
        firmware_model.check_ops_supported(firmware_model.ModelInfo(("Other",), (), (), 1, ("Other",)), None)


@pytest.mark.skipif(
    not os.environ.get(tflm_sources.TFLM_ENV), reason="TFLM_DIR is not set (TFLM's op resolver header is needed)"
)
def test_resolver_method_names_match_tflm():
    """For every builtin MicroMutableOpResolver registers, the schema name maps to its method
    (the same derivation as TFLM's generate_micro_mutable_op_resolver_from_model.py)."""
    root = tflm_sources.tflm_dir()
    header = (root / "tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    pairs = re.findall(r"TfLiteStatus (Add\w+)\([^{]*\{\s*return AddBuiltin\(BuiltinOperator_(\w+),", header)
    assert len(pairs) >= 90
    wrong = [
        (method, op, firmware_model.resolver_method(op))
        for method, op in pairs
        if firmware_model.resolver_method(op) != method
    ]
    assert wrong == []
