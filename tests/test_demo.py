"""`rnnpool-tflm demo --quick`: the README's main job runs end to end and its report
shows the trained model, parity passing, the arena figure and the written files."""

import json

import pytest

from rnnpool_tflm.cli import main as cli


@pytest.mark.slow
def test_quick_demo_runs_the_whole_pipeline(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TFLM_DIR", raising=False)  # the estimate path: no firmware build here
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # a user's file in the folder survives
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())

    assert report["passed"] is True and "error" not in report
    assert report["train"]["val_accuracy"] > 0.9  # 4 classes: chance is 0.25
    c = report["check"]
    assert c["rnnpool_bitexact"] and c["top1_agreement"] >= 0.99 and c["max_abs_err_lsb"] <= 2
    assert c["board"] == "nucleo_f446re" and c["fits"] is True
    assert c["arena_bytes"] > 0 and c["arena_exact"] is False
    assert c["model_bytes"] == (out / "model.tflite").stat().st_size
    assert report["convert"]["rnnpool_ops"] == 1 and report["convert"]["operators"]["RNNPool"] == 1
    generated = out / report["export"]["directory"]
    assert {"model_data.cc", "manifest.json"} <= {p.name for p in generated.iterdir()}
    assert report["emulate"]["ran"] is False and "TFLM_DIR" in report["emulate"]["reason"]
    mem = report["memory"]
    assert (out / mem["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert mem["rnnpool_model"]["paper_convention_peak_bytes"] < mem["baseline"]["paper_convention_peak_bytes"]
    low = report["low_ram"]  # before/after of the low-RAM conversion, same output bytes
    assert low["outputs_identical"] is True and len(low["plain"]["output_sha256"]) == 64
    assert low["plain"]["arena_estimate_bytes"] > 0 and low["default"]["arena_estimate_bytes"] > 0
    assert (out / low["plain_model"]).stat().st_size > 0
    assert f"{low['plain']['arena_estimate_bytes']:,} B -> {low['default']['arena_estimate_bytes']:,} B" in printed
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left
    assert f"{c['arena_bytes']:,} B" in printed and "bit-exact" in printed


def test_demo_rejects_an_output_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert cli.main(["demo", "--quick", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(target) in err
