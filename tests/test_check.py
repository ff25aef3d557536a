"""`rnnpool-tflm check` and `convert` end to end: acceptance metrics, JSON, exit status,
and bad input (issue 4)."""

import json

import models_for_tests as mft
import numpy as np
import pytest

from rnnpool_tflm.check.checker import check_model
from rnnpool_tflm.cli import main as cli
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.tflite import model as tfm


@pytest.mark.parametrize("hard", [False, True], ids=["sigmoid_tanh_int8_io", "hard_activations_float_io"])
def test_acceptance_parity(hard):
    """QAT model -> .tflite: top-1 agreement >= 99 %, max error <= 2 LSB, RNNPool bit-exact,
    float -> int8 accuracy drop <= 1 point (all on the 512 validation images)."""
    acc = mft.acceptance(hard)
    r = acc.report
    print(
        f"\n{'hard' if hard else 'soft'}: float acc {acc.float_accuracy:.4f}, QAT acc {acc.qat_accuracy:.4f}, "
        f"int8 acc {r.tflite_accuracy:.4f}, top-1 agreement {r.top1_agreement:.4f}, max err "
        f"{r.max_abs_err_lsb} LSB, RMSE {r.rmse:.5f}, cosine {r.cosine:.6f}, RNNPool mismatches "
        f"{r.rnnpool_mismatches}, model {r.model_bytes} B"
    )
    assert r.rnnpool_bitexact and r.rnnpool_mismatches == [0]
    assert r.top1_agreement >= 0.99
    assert r.max_abs_err_lsb <= 2
    assert acc.float_accuracy - r.tflite_accuracy <= 0.01
    assert r.ok and r.samples == mft.VAL_SAMPLES


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    """The soft acceptance QAT model as .keras, its validation data as .npz, and bad models."""
    acc = mft.acceptance(False)
    root = tmp_path_factory.mktemp("cli")
    keras_path = root / "qat.keras"
    acc.qat_model.save(keras_path)
    _, _, xv, yv = mft.line_data()
    np.savez(root / "val.npz", x=xv[:200], y=yv[:200])
    np.savez(root / "wrong_shape.npz", x=np.zeros((10, 28, 28, 1), np.float32))
    with_nan = xv[:20].copy()
    with_nan[3, 0, 0, 0] = np.nan
    np.savez(root / "nan.npz", x=with_nan, y=yv[:20])
    with_inf = xv[:20].copy()
    with_inf[0, 1, 2, 0] = -np.inf
    np.savez(root / "inf.npz", x=with_inf)
    (root / "a_folder").mkdir()
    good = acc.conversion.tflite
    (root / "good.tflite").write_bytes(good)
    (root / "not_a_model.tflite").write_text("this is a text file, not a flatbuffer\n")
    (root / "truncated.tflite").write_bytes(good[: len(good) // 2])
    bad = {}
    m = tfm.read_model(good)
    code = next(c for c in m.operatorCodes if tfm._text(c.customCode) == "RNNPool")
    code.customCode = "MysteryOp"
    bad["unknown_op"] = tfm.write_model(m)
    m = tfm.read_model(good)
    op = next(o for o in m.subgraphs[0].operators if tfm.is_rnnpool(m, o))
    from flatbuffers import flexbuffers

    options = flexbuffers.Loads(bytes(op.customOptions))
    options["patch_rows"] = 4  # the output shape no longer follows
    op.customOptions = np.frombuffer(flexbuffers.Dumps(options), np.uint8)
    bad["inconsistent_options"] = tfm.write_model(m)
    m = tfm.read_model(good)
    m.subgraphs[0].tensors[3].buffer = 100000
    bad["corrupted"] = tfm.write_model(m)
    for name, data in bad.items():
        (root / f"{name}.tflite").write_bytes(data)
    return root


def _run(capsys, args):
    code = cli.main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_cli_convert_then_check_json(cli_files, capsys, monkeypatch):
    monkeypatch.delenv("TFLM_DIR", raising=False)  # the estimate, not a firmware build
    out_path = cli_files / "cli_out.tflite"
    code, out, err = _run(capsys, ["convert", str(cli_files / "qat.keras"), "-o", str(out_path)])
    assert code == 0, err
    assert "RNNPool x1" in out and "model bytes" in out and "match the op contract" in out
    assert out_path.read_bytes()[4:8] == b"TFL3"
    assert not list(cli_files.glob(".cli_out.tflite*"))  # no temporary left behind
    code, out, err = _run(
        capsys,
        [
            "check",
            str(out_path),
            "--keras",
            str(cli_files / "qat.keras"),
            "--data",
            str(cli_files / "val.npz"),
            "--board",
            "nucleo_f446re",
            "--json",
        ],
    )
    assert code == 0, err
    report = json.loads(out)
    for key in (
        "top1_agreement",
        "max_abs_err_lsb",
        "rmse",
        "cosine",
        "rnnpool_bitexact",
        "arena_bytes",
        "arena_exact",
        "model_bytes",
        "board",
        "fits",
    ):
        assert key in report
    assert report["rnnpool_bitexact"] is True and report["top1_agreement"] >= 0.99
    assert report["max_abs_err_lsb"] <= 2 and report["board"] == "nucleo_f446re" and report["fits"] is True
    assert report["arena_exact"] is False and report["arena_bytes"] > 0
    assert report["model_bytes"] == out_path.stat().st_size


def test_check_fails_with_one_line_reason(cli_files, capsys, monkeypatch):
    """Parity against the wrong Keras model fails: exit status 1 and the reason."""
    monkeypatch.delenv("TFLM_DIR", raising=False)
    other = cli_files / "other.keras"
    mft.acceptance(True).qat_model.save(other)
    code, out, err = _run(
        capsys, ["check", str(cli_files / "good.tflite"), "--keras", str(other), "--data", str(cli_files / "val.npz")]
    )
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rnnpool-tflm check: failed:") and "LSB" in lines[0]
    assert "check FAILED" in out


@pytest.mark.parametrize(
    "name, message",
    [
        ("not_a_model", "not a .tflite model"),
        ("truncated", "truncated or corrupted"),
        ("corrupted", "corrupted model"),
        ("unknown_op", "unknown custom operator 'MysteryOp'"),
        ("inconsistent_options", "does not match the options"),
    ],
)
def test_check_rejects_bad_models(cli_files, capsys, name, message):
    code, out, err = _run(capsys, ["check", str(cli_files / f"{name}.tflite")])
    assert code == 2
    assert err.startswith("rnnpool-tflm check: error:") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "{root}/missing.tflite"], "does not exist"),
        (["check", "{root}/a_folder"], "model file {root}/a_folder is a directory, not a file"),
        (["check", "{root}/good.tflite", "--data", "{root}/a_folder"], "data file {root}/a_folder is a directory"),
        (
            ["check", "{root}/good.tflite", "--data", "{root}/nan.npz"],
            "data file {root}/nan.npz array 'x' holds NaN values",
        ),
        (["check", "{root}/good.tflite", "--data", "{root}/inf.npz"], "array 'x' holds inf values (1 of"),
        (["check", "{root}/good.tflite", "--data", "{root}/missing.npz"], "does not exist"),
        (["check", "{root}/good.tflite", "--data", "{root}/wrong_shape.npz"], "data of the wrong shape"),
        (["check", "{root}/good.tflite", "--board", "arduino_uno"], "unknown board"),
        (["convert", "{root}/missing.keras", "-o", "{root}/x.tflite"], "does not exist"),
        (["convert", "{root}/good.tflite", "-o", "{root}/x.tflite", "--float-io"], "is converted already: --float-io"),
        (
            ["convert", "{root}/qat.keras", "-o", "{root}/x.tflite", "--representative", "{root}/missing.npz"],
            "does not exist",
        ),
    ],
)
def test_cli_bad_arguments(cli_files, capsys, args, message):
    code, out, err = _run(capsys, [a.format(root=cli_files) for a in args])
    assert code == 2 and message.format(root=cli_files) in err, err


@pytest.mark.parametrize(
    "output, representative, message",
    [
        ("{root}/a_folder", None, "output {root}/a_folder is a directory; name a file"),
        ("{root}/good.tflite/sub/x.tflite", None, "cannot be written: {root}/good.tflite is not a directory"),
        ("{root}/x.tflite", "{root}/nan.npz", "representative data file {root}/nan.npz array 'x' holds NaN"),
    ],
)
def test_convert_refuses_before_converting(cli_files, capsys, monkeypatch, output, representative, message):
    """An output that cannot be written or non-finite representative data fail before the
    conversion starts (the converter is never called), with one line naming the path."""
    from rnnpool_tflm.convert import keras_converter

    def not_reached(*args, **kwargs):
        raise AssertionError("the conversion ran before the arguments were checked")

    monkeypatch.setattr(keras_converter, "convert_model", not_reached)
    args = ["convert", str(cli_files / "qat.keras"), "-o", output.format(root=cli_files)]
    if representative:
        args += ["--representative", representative.format(root=cli_files)]
    code, out, err = _run(capsys, args)
    assert code == 2 and message.format(root=cli_files) in err, err


def test_truncations_never_pass_as_models():
    good = mft.acceptance(False).conversion.tflite
    for cut in (4, 12, len(good) // 10, len(good) // 3, len(good) - 100, len(good) - 1):
        with pytest.raises(RNNPoolError):
            tfm.validate_model(tfm.read_model(good[:cut]))


def test_generated_inputs_without_data():
    acc = mft.acceptance(False)
    report = check_model(acc.conversion.tflite, keras_model=acc.qat_model, samples=32, measure_arena=False)
    assert report.samples == 32 and report.rnnpool_bitexact and report.max_abs_err_lsb is not None
