"""The tutorial notebooks: the stored ones are the builder's cells, executed; executed again
(in a kernel of this interpreter, in a temporary folder, without TFLM_DIR) they run from top
to bottom -- their cells assert the pipeline's results -- and show the numbers they promise.

Runtime about 1.5 minutes on 2 cores (quick start ~60 s, paper models ~20 s).
"""

import importlib.util
import pathlib
import re
import shutil
import sys

import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT_S = 300


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(nb, output_type):
    return [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == output_type
    ]


def _stdout(nb) -> str:
    return "".join(out.get("text", "") for out in _outputs(nb, "stream") if out.get("name") == "stdout")


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"no {pattern!r} in the notebook's output"
    return int(match.group(1).replace(",", ""))


def _repository_firmware_files():
    folder = NOTEBOOKS.parent / "firmware" / "generated"
    return {f.name: f.stat().st_mtime_ns for f in folder.iterdir()} if folder.is_dir() else {}


def _run(name, tmp_path, monkeypatch):
    monkeypatch.delenv("TFLM_DIR", raising=False)  # the estimate path: same work on every machine
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / name
    shutil.copy(NOTEBOOKS / name, copy)
    builder = _builder()
    km = builder.kernel_manager()
    assert km.kernel_spec.argv[0] == sys.executable  # the project's interpreter, not a kernelspec's
    before = _repository_firmware_files()
    nb = builder.execute(copy, tmp_path, timeout=CELL_TIMEOUT_S, km=km)
    assert _repository_firmware_files() == before, "the notebook wrote into the repository's firmware/generated"
    return nb


def test_the_stored_notebooks_are_the_builders_cells_executed():
    """The .ipynb files hold exactly the cells of build_notebooks.py, with their outputs."""
    import nbformat

    builder = _builder()
    for name, cells in builder.NOTEBOOKS.items():
        stored = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert [c.source for c in stored.cells] == [c.source for c in cells], name
        code = [c for c in stored.cells if c.cell_type == "code"]
        assert all(c.get("execution_count") for c in code), f"{name} is not executed"
        assert not _outputs(stored, "error"), f"{name} was stored with an error"
        text = "".join(out.get("text", "") for out in _outputs(stored, "stream"))
        assert "/tmp/" not in text, f"{name}: a temporary path in the stored outputs"


@pytest.mark.slow
def test_quickstart_notebook(tmp_path, monkeypatch):
    text = _stdout(_run("01_quickstart.ipynb", tmp_path, monkeypatch))
    assert "check passed" in text and "RNNPool ops vs golden reference: bit-exact" in text
    assert "RNNPool x1" in text and "nucleo_f446re: RAM fits" in text
    assert _number(r"QAT model, validation accuracy: (\d+)\.\d+%", text) >= 90
    checked = _number(r"tensor arena \(Cortex-M4, estimate\): ([\d,]+) B", text)
    exported = _number(r"arena in the firmware: ([\d,]+) B", text)
    assert 0 < checked <= exported
    for name in ("model_data.cc", "model_ops.h", "test_data.cc", "manifest.json"):
        assert name in text


@pytest.mark.slow
def test_paper_models_notebook(tmp_path, monkeypatch):
    nb = _run("02_paper_models.ipynb", tmp_path, monkeypatch)
    text = _stdout(nb)
    for model in (
        "mobilenetv2",
        "mobilenetv2_rnnpool",
        "mobilenetv2_vww",
        "mobilenetv2_rnnpool_vww",
        "face_quant",
        "face_m4",
    ):
        assert re.search(rf"^{model} +[14] ", text, re.M), f"no table row for {model}"
    arena = _number(r"TFLM arena on Cortex-M4 \(estimate\): ([\d,]+) B", text)
    peak = _number(r"paper-convention peak RAM: ([\d,]+) B with the input image in RAM", text)
    assert peak == 320 * 240 + 40 * 30 * 64 + 40 * 30 * 32 and arena > peak
    for board in ("nucleo_f446re", "disco_f407vg", "nucleo_f429zi", "nucleo_f439zi"):
        assert f"{board}: RAM does not fit" in text
    assert "TFLM peak at op" in text and "block1_expand" in text
    # after: fused blocks, padding in RNNPool, offline plan -- same output bytes, fits the F439
    match = re.search(r"plain graph ([\d,]+) B -> ([\d,]+) B", text)
    assert match, "no before/after arena line"
    before, after = (int(g.replace(",", "")) for g in match.groups())
    assert before == arena and after <= 180_224
    assert re.search(r"fused: 4 inverted-residual block", text)
    assert "nucleo_f439zi: RAM fits" in text
    pngs = [out for out in _outputs(nb, "display_data") if "image/png" in out.get("data", {})]
    assert len(pngs) == 2  # MobileNetV2 and Face-M4 memory plots, inline


@pytest.mark.slow
def test_face_detection_notebook(tmp_path, monkeypatch):
    nb = _run("03_face_detection.ipynb", tmp_path, monkeypatch)
    text = _stdout(nb)
    for name in ("best.keras", "history.json", "settings.json"):
        assert name in text, f"the float run folder has no {name}"
    assert "InvertedResidual" in text and "RNNPool" in text  # the converted detector's operators
    ap = {m.group(1): float(m.group(2)) for m in re.finditer(r"^AP (float|QAT|int8) +([\d.]+)$", text, re.M)}
    assert set(ap) == {"float", "QAT", "int8"}, text
    assert ap["float"] > 0.1, "the float detector found (almost) nothing"
    assert abs(ap["int8"] - ap["QAT"]) <= 0.05, ap  # the int8 model scores like the QAT model it simulates
    assert "nucleo_f446re: RAM fits" in text
    pngs = [out for out in _outputs(nb, "display_data") if "image/png" in out.get("data", {})]
    assert len(pngs) == 2  # the synthetic faces with their boxes, the int8 model's boxes
