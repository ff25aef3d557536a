"""A detector's post-processing in the firmware: the generated configuration, the box lines the
firmware prints, and (with TFLM_DIR) the emulated Cortex-M4's boxes against the host's."""

import json
import os
import shutil
import struct

import numpy as np
import pytest

from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.deploy import build as firmware_build
from rnnpool_tflm.deploy import emulate as firmware_run
from rnnpool_tflm.deploy import sources as firmware_sources
from rnnpool_tflm.detection import on_device
from rnnpool_tflm.runtime.detection_native import DetectorSetup, HeadGeometry
from rnnpool_tflm.tflite.model_info import ModelInfo, TensorInfo
from rnnpool_tflm.toolchain import tflm_tree as tflm_sources

INT8 = 9  # schema TensorType


def _tiny_detector():
    """A 16x16 detector: head 0 2x2 (max-out), head 1 1x1; int8 outputs, and its ModelInfo."""
    setup = DetectorSetup(
        (16, 16), (HeadGeometry(2, 2, 8, 8.0), HeadGeometry(1, 1, 16, 16.0)), 2, True, (0.1, 0.2), 0.05, 0.3, 10, 4
    )
    shapes = [(1, *s) for s in setup.output_shapes()]
    outputs = [np.zeros(s, np.int8) for s in shapes]
    outputs[1][0, 0, 1, 3] = 40  # prior 1: a face (scale 0.1: logit 4)
    outputs[3][0, 0, 0, 1] = 20  # prior 4: a weaker face
    info = ModelInfo(
        ("CONV_2D",),
        (TensorInfo("image", INT8, (1, 16, 16, 1), 0.004, -128),),
        tuple(TensorInfo(f"out{i}", INT8, s, 0.1, 0) for i, s in enumerate(shapes)),
        1,
    )
    return setup, outputs, info


def _write(tmp_path, detector):
    setup, outputs, info = _tiny_detector()
    return firmware_sources.write_sources(
        tmp_path / "generated",
        b"TFL3-not-a-model",
        info,
        [np.zeros((1, 16, 16, 1), np.int8)],
        outputs,
        4096,
        "tiny",
        "netduinoplus2",
        detector=setup if detector else None,
    )


def test_a_detector_gets_its_configuration_and_the_host_boxes(tmp_path):
    generated = _write(tmp_path, detector=True)
    header = (generated.directory / "detector_config.h").read_text()
    assert "#define RNNPOOL_DETECTOR 1" in header
    # scratch A(8*5) + A(16*5) + A(5) = 40 + 80 + 8 (K = min(10, 5 priors)); anchors and variances exact in hex
    assert "#define RNNPOOL_DETECTION_SCRATCH_BYTES 128u" in header and "#define RNNPOOL_DETECTION_TOP_K 4" in header
    assert "{2, 2, 8, 0x1.0000000000000p+3f}" in header and "0x1.99999a0000000p-4f" in header
    record = generated.manifest["detector"]
    assert record["scratch_bytes"] == 128
    setup, outputs, info = _tiny_detector()
    reference = on_device.reference_detect(setup, outputs, [0.1] * 4, [0] * 4)
    assert [b[6] for b in record["host_boxes"]] == reference.priors.tolist()[:4]
    assert [b[4] for b in record["host_boxes"]] == [float(s) for s in reference.scores[:4]]
    assert json.loads((generated.directory / "manifest.json").read_text())["detector"] == record


def test_other_models_get_rnnpool_detector_0(tmp_path):
    generated = _write(tmp_path, detector=False)
    assert "#define RNNPOOL_DETECTOR 0" in (generated.directory / "detector_config.h").read_text()
    assert "detector" not in generated.manifest


def _bits(v: float) -> str:
    return f"0x{struct.unpack('<I', struct.pack('<f', v))[0]:08x}"


def test_box_lines_are_read_exactly_and_compared_with_the_host(tmp_path):
    generated = _write(tmp_path, detector=True)
    host = generated.manifest["detector"]["host_boxes"]
    lines = [f"box: {' '.join(_bits(v) for v in b[:5])} {b[5]} {b[6]} (px 1 2 3 4, score 0.900)" for b in host]
    text = "\n".join(
        ["output_matches_expected: yes", "detection_ticks: 1000", f"detections: {len(host)}", *lines, "status: 0"]
    )
    run = firmware_run.FirmwareRun(0, text, firmware_run.parse_output(text))
    assert [list(b) for b in run.boxes] == host
    emulation = firmware_run.Emulation("netduinoplus2", run, None, generated)
    assert emulation.boxes_match_host is True
    assert emulation.boxes_in_pixels()[0][:4] == [round(v * 16, 3) for v in host[0][:4]]
    changed = text.replace(lines[0].split()[5], _bits(np.nextafter(np.float32(host[0][4]), np.float32(0))))
    other = firmware_run.FirmwareRun(0, changed, firmware_run.parse_output(changed))
    assert firmware_run.Emulation("netduinoplus2", other, None, generated).boxes_match_host is False
    with pytest.raises(RNNPoolError, match="malformed box line"):
        firmware_run.parse_box("0x3f800000 nonsense")
    # a model that is not a detector has no boxes to compare
    plain = firmware_run.FirmwareRun(0, "status: 0", {"status": "0"})
    assert plain.boxes is None
    assert firmware_run.Emulation("netduinoplus2", plain, None, _write(tmp_path / "b", False)).boxes_match_host is None


# -- on the emulated Cortex-M4 ----------------------------------------------------------------------------


def _missing() -> str:
    if not os.environ.get(tflm_sources.TFLM_ENV):
        return "TFLM_DIR is not set (a tflite-micro checkout of the pinned commit is needed)"
    tools = firmware_build.missing_tools() + ([firmware_run.QEMU] if shutil.which(firmware_run.QEMU) is None else [])
    return f"missing {', '.join(tools)}" if tools else ""


@pytest.mark.tflm
@pytest.mark.slow
@pytest.mark.skipif(bool(_missing()), reason=_missing() or "-")
def test_the_emulated_m4_prints_the_hosts_boxes_for_a_converted_face_m4(tmp_path, capsys):
    import face_models

    from rnnpool_tflm.cli import main as cli

    path = tmp_path / "face_m4.tflite"
    path.write_bytes(face_models.face_m4_tflite())
    image = face_models.synthetic_images()[0][:1].astype(np.float32) / 255.0
    np.save(tmp_path / "image.npy", image)
    assert (
        cli.main(
            ["emulate", str(path), "--input", str(tmp_path / "image.npy"), "--keep", str(tmp_path / "fw"), "--json"]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["output_matches_host"] and report["boxes_match_host"]
    assert 1 < len(report["boxes"]) <= on_device.DEVICE_CONFIG.top_k
    assert report["detection_instructions"] > 0
    # The device's boxes are also the NumPy reference's for the host's outputs, bit for bit.
    manifest = json.loads((tmp_path / "fw" / "generated" / "manifest.json").read_text())
    setup = on_device.tflite_setup(path.read_bytes())
    assert (
        DetectorSetup.from_dict(
            {k: v for k, v in manifest["detector"].items() if k not in ("scratch_bytes", "host_boxes")}
        )
        == setup
    )
    printed = firmware_run.FirmwareRun(0, (tmp_path / "fw" / "qemu_output.txt").read_text(), {})
    printed = firmware_run.FirmwareRun(0, printed.output, firmware_run.parse_output(printed.output)).boxes
    from rnnpool_tflm.runtime import host
    from rnnpool_tflm.tflite.model_info import read_model_info

    info = read_model_info(path.read_bytes())
    model = host.HostModel(path.read_bytes())
    outputs = model.run([host.quantize_inputs(model.input_details[0], image)]).outputs
    reference = on_device.reference_detect(setup, [o[0] for o in outputs], *on_device.output_quantization(info))
    assert [b[6] for b in printed] == reference.priors.tolist()
    np.testing.assert_array_equal(np.array([b[:4] for b in printed], np.float32), reference.boxes)
    np.testing.assert_array_equal(np.array([b[4] for b in printed], np.float32), reference.scores)


@pytest.mark.slow
def test_export_recognises_a_converted_detector_unless_told_not_to(tmp_path, monkeypatch, capsys):
    import face_models

    from rnnpool_tflm.cli import main as cli

    monkeypatch.delenv(tflm_sources.TFLM_ENV, raising=False)  # the estimated fit: no firmware build
    path = tmp_path / "face_m4.tflite"
    path.write_bytes(face_models.face_m4_tflite())
    assert cli.main(["export", str(path), "--firmware", str(tmp_path / "a"), "--board", "nucleo_f429zi", "--json"]) == 0
    with_boxes = json.loads(capsys.readouterr().out)
    assert with_boxes["detector"] is True
    manifest = json.loads((tmp_path / "a" / "generated" / "manifest.json").read_text())
    assert manifest["detector"]["top_k"] == on_device.DEVICE_CONFIG.top_k and manifest["detector"]["host_boxes"]
    assert (
        cli.main(
            ["export", str(path), "--firmware", str(tmp_path / "b"), "--board", "nucleo_f429zi", "--no-boxes", "--json"]
        )
        == 0
    )
    without = json.loads(capsys.readouterr().out)
    assert without["detector"] is False
    assert "#define RNNPOOL_DETECTOR 0" in (tmp_path / "b" / "generated" / "detector_config.h").read_text()
    # The fit counts the post-processing's scratch and its top_k boxes (28 B each), and check --board
    # judges the same firmware export builds (with or without --no-boxes).
    detector_ram = manifest["detector"]["scratch_bytes"] + 28 * manifest["detector"]["top_k"]
    assert with_boxes["verdict_firmware_static_ram"] - without["verdict_firmware_static_ram"] == detector_ram
    for flags, exported in (((), with_boxes), (("--no-boxes",), without)):
        cli.main(["check", str(path), "--samples", "1", "--board", "nucleo_f429zi", "--json", *flags])
        fit = json.loads(capsys.readouterr().out)["fit"]
        assert fit == {k[len("verdict_") :]: v for k, v in exported.items() if k.startswith("verdict_")}
