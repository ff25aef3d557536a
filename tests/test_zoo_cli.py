"""`convert` and `check` take zoo:NAME as `profile` does: a float zoo model with random
weights (seeded, so both commands build the same model), calibrated on the user's data."""

import json

import numpy as np
import pytest

from rnnpool_tflm.cli import main as cli
from rnnpool_tflm.tflite import model as tfm


def _run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_zoo_model_without_representative_data_says_what_is_needed(capsys, tmp_path):
    code, out, err = _run(capsys, "convert", "zoo:face_m4_strided_conv", "-o", str(tmp_path / "m.tflite"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "zoo:face_m4_strided_conv is a float model with random weights" in err
    assert "--representative FILE.npz holding an array 'image' [N, 240, 320, 1]" in err
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["convert", "zoo:no_such_model", "-o", "{tmp}/m.tflite"], "unknown zoo model 'no_such_model'"),
        (["check", "zoo:face_m4"], "convert zoo:face_m4 first: rnnpool-tflm convert zoo:face_m4 -o MODEL.tflite"),
        (["check", "{tmp}/missing.tflite", "--keras", "zoo:face_m4"], "does not exist"),
    ],
)
def test_zoo_errors_are_one_line(capsys, tmp_path, args, message):
    code, out, err = _run(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_convert_zoo_face_m4_then_check_against_the_same_zoo_model(capsys, tmp_path, monkeypatch):
    """The brief's command line, then parity against zoo:face_m4 rebuilt by `check`."""
    monkeypatch.delenv("TFLM_DIR", raising=False)  # the arena estimate, not a firmware build
    rep = tmp_path / "rep.npz"
    np.savez(rep, x=np.random.default_rng(0).random((4, 240, 320, 1), dtype=np.float32))
    out_path = tmp_path / "face_m4.tflite"
    code, out, err = _run(capsys, "convert", "zoo:face_m4", "-o", str(out_path), "--representative", str(rep))
    assert code == 0, err
    assert "RNNPool x1" in out and "validated: 1 RNNPool op(s)" in out
    m = tfm.read_model(out_path.read_bytes())
    assert sum(tfm.is_rnnpool(m, op) for op in m.subgraphs[0].operators) == 1
    # Post-training quantization of random weights: parity is close, not within 2 LSB.
    code, out, err = _run(
        capsys, "check", str(out_path), "--keras", "zoo:face_m4", "--data", str(rep), "--max-lsb", "64", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["rnnpool_bitexact"] is True and report["cosine"] > 0.99, report
