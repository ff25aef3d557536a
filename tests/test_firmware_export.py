"""`rnnpool-tflm export`: the generated firmware sources of a model.

Runs without TFLM sources (the host run is the tflite-micro wheel; arena and firmware
size estimated), except the operator-name test, which reads TFLM's
MicroMutableOpResolver (skipped without TFLM_DIR). With TFLM_DIR the same tests take
the path `export` takes there: the arena measured on the emulated Cortex-M4 and the
firmware built for the board. About 20 s without TFLM_DIR, 70 s with it (library cached).
"""

from __future__ import annotations

import json
import os
import pathlib
import re

import numpy as np
import pytest

import firmware_models
from rnnpool_tflm.cli import main as cli
from rnnpool_tflm.deploy import export as firmware_export
from rnnpool_tflm.tflite import model_info as firmware_model
from rnnpool_tflm.deploy import sources as firmware_sources
from rnnpool_tflm.toolchain import tflm_tree as tflm_sources
from rnnpool_tflm.core.errors import RNNPoolError


@pytest.fixture(scope="module")
def conv_path(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("models") / "conv.tflite"
    path.write_bytes(firmware_models.conv_model())
    return path


def _c_array(text: str, name: str) -> list:
    body = re.search(name + r"\[\] = \{(.*?)\};", text, re.S).group(1)
    return [int(v.rstrip("u"), 0) for v in re.findall(r"-?0x[0-9a-f]+u?|-?\d+", body)]


def test_export_writes_model_ops_test_data_and_manifest(conv_path, tmp_path):
    generated, verdict = firmware_export.export_model(conv_path, tmp_path / "fw")
    out = tmp_path / "fw" / "generated"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["detector_config.h", "manifest.json", "model_config.h", "model_data.cc", "model_data.h",
                     "model_ops.h", "test_data.cc", "test_data.h"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left

    model = conv_path.read_bytes()
    source = (out / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in source
    assert bytes(_c_array(source, "g_model_data")) == model

    ops = (out / "model_ops.h").read_text()
    assert "constexpr int kOpCount = 1;" in ops and "resolver.AddConv2D()" in ops

    # The embedded input and expected output: the wheel's interpreter on that input.
    test_data = (out / "test_data.cc").read_text()
    x = np.array(_c_array(test_data, "g_input_0"), np.int8).reshape(1, 16, 16, 3)
    expected = np.array(_c_array(test_data, "g_expected_0"), np.int8)
    host = firmware_export.run_interpreter(model, [x], 1)[0]
    np.testing.assert_array_equal(expected, host.reshape(-1))

    manifest = json.loads((out / "manifest.json").read_text())
    figure = manifest["arena_figure_bytes"]
    assert manifest["arena_bytes"] == firmware_export.with_margin(figure) > figure
    assert f"RNNPOOL_ARENA_BYTES {manifest['arena_bytes']}u" in (out / "model_config.h").read_text()
    assert manifest["outputs"][0]["fnv1a"] == f"0x{firmware_sources.fnv1a32(host.tobytes()):08x}"
    assert verdict.fits and verdict.board == "nucleo_f446re"
    if firmware_export.can_build_firmware():  # TFLM_DIR: the check's measured figure, the built firmware
        assert manifest["arena_figure_source"] == firmware_export.MEASURED_LABEL
        assert manifest["emulated_output_matches_host"] is True
        assert manifest["fit_judged_on"] == "built firmware" and manifest["firmware_flash_bytes"] > len(model)
    else:
        assert manifest["arena_figure_source"] == firmware_export.arena_figure(model)[1]
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
    _, verdict = firmware_export.export_model(big, firmware_dir, board="nucleo_f429zi")
    assert verdict.fits


def test_a_failed_export_keeps_the_previous_sources(conv_path, tmp_path):
    firmware_export.export_model(conv_path, tmp_path / "fw")
    before = {p.name: p.read_bytes() for p in (tmp_path / "fw" / "generated").iterdir()}
    np.save(tmp_path / "wrong.npy", np.zeros((1, 8, 8, 3), np.int8))
    with pytest.raises(RNNPoolError, match=r"shape \(1, 8, 8, 3\).*needs \(1, 16, 16, 3\)"):
        firmware_export.export_model(conv_path, tmp_path / "fw", tmp_path / "wrong.npy")
    after = {p.name: p.read_bytes() for p in (tmp_path / "fw" / "generated").iterdir()}
    assert after == before


@pytest.mark.parametrize("data, message", [
    (b"not a model at all", "not a TensorFlow Lite model"),
    (None, "corrupted or truncated"),
])
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


def test_generated_ops_list_only_the_model_ops_with_rnnpool_as_custom():
    info = firmware_model.ModelInfo(("CONV_2D", "RNNPool", "FULLY_CONNECTED"), (), (), 5, ("RNNPool",))
    header = firmware_sources._ops_header(info)
    assert "kOpCount = 3;" in header
    assert re.findall(r"resolver\.(\w+)\(", header) == ["AddConv2D", "AddCustom", "AddFullyConnected"]
    assert '#include "rnnpool_tflm.h"' in header and "RNNPOOL_CUSTOM_CODE" in header
    with pytest.raises(RNNPoolError, match="custom operator 'Other' is not supported"):
        firmware_model.check_ops_supported(
            firmware_model.ModelInfo(("Other",), (), (), 1, ("Other",)), None)


@pytest.mark.skipif(not os.environ.get(tflm_sources.TFLM_ENV), reason="TFLM_DIR is not set (TFLM's op resolver "
                    "header is needed)")
def test_resolver_method_names_match_tflm():
    """For every builtin MicroMutableOpResolver registers, the schema name maps to its method
    (the same derivation as TFLM's generate_micro_mutable_op_resolver_from_model.py)."""
    root = tflm_sources.tflm_dir()
    header = (root / "tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    pairs = re.findall(r"TfLiteStatus (Add\w+)\([^{]*\{\s*return AddBuiltin\(BuiltinOperator_(\w+),", header)
    assert len(pairs) >= 90
    wrong = [(method, op, firmware_model.resolver_method(op)) for method, op in pairs
             if firmware_model.resolver_method(op) != method]
    assert wrong == []
