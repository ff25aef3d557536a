"""`demo --task face` end to end with a tiny budget: report.json's face fields are measured values."""

import json

import numpy as np
import pytest
from PIL import Image

from rnnpool_tflm.cli.face_demo import FaceDemoSettings, run_face_demo
from rnnpool_tflm.deploy.fit import can_build_firmware


@pytest.mark.slow
def test_face_demo_with_a_tiny_budget_reports_ap_and_draws_boxes(tmp_path):
    settings = FaceDemoSettings(
        input_size=(48, 64), train_images=32, val_images=16, float_epochs=1, qat_epochs=1, batch_size=8
    )
    returned = run_face_demo(str(tmp_path), settings=settings, log=lambda line: None)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["face"] == json.loads(json.dumps(returned["face"]))
    ap = report["face"]["ap"]
    for kind in ("float", "qat", "int8"):
        assert isinstance(ap[kind], float) and 0.0 <= ap[kind] <= 1.0, (kind, ap)
    assert report["check"]["rnnpool_bitexact"] is True
    assert report["convert"]["rnnpool_ops"] == 1
    assert (tmp_path / "model.tflite").read_bytes()[4:8] == b"TFL3"
    for run in ("float_run", "qat_run"):
        assert (tmp_path / run / "best.keras").is_file()
    image = np.asarray(Image.open(tmp_path / report["image"]["image"]))
    assert image.shape[:2] == (48, 64)
    if can_build_firmware():
        assert report["emulate"]["ran"] is True
        assert report["face"]["boxes_match_emulated"] is True
    else:
        assert report["face"]["boxes_match_emulated"] is None and report["emulate"]["ran"] is False
