"""The tutorial notebooks execute from top to bottom (their cells assert the pipeline's
results) and show the numbers they promise."""

import importlib.util
import pathlib
import shutil

import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stdout(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


def _run(name, tmp_path, monkeypatch):
    monkeypatch.delenv("TFLM_DIR", raising=False)  # the estimate path: same work on every machine
    copy = tmp_path / name
    shutil.copy(NOTEBOOKS / name, copy)
    return _builder().execute(copy, tmp_path)


def test_the_stored_notebooks_are_the_builders_cells():
    """The .ipynb files hold exactly the cells of build_notebooks.py (plus their outputs)."""
    import nbformat
    builder = _builder()
    for name, cells in builder.NOTEBOOKS.items():
        stored = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert [c.source for c in stored.cells] == [c.source for c in cells], name
        assert all(c.get("execution_count") for c in stored.cells if c.cell_type == "code"), f"{name} is not executed"


@pytest.mark.slow
def test_quickstart_notebook(tmp_path, monkeypatch):
    text = _stdout(_run("01_quickstart.ipynb", tmp_path, monkeypatch))
    assert "check passed" in text and "RNNPool ops vs golden reference: bit-exact" in text
    assert "RNNPool x1" in text and "nucleo_f446re: RAM fits" in text
    assert "model_data.cc" in text


@pytest.mark.slow
def test_paper_models_notebook(tmp_path, monkeypatch):
    text = _stdout(_run("02_paper_models.ipynb", tmp_path, monkeypatch))
    assert "TFLM arena on Cortex-M4 (estimate)" in text and "paper-convention peak RAM: 192,000 B" in text
    for board in ("nucleo_f446re", "disco_f407vg", "nucleo_f429zi", "nucleo_f439zi"):
        assert f"{board}: RAM" in text
    assert "face_m4" in text and "mobilenetv2_rnnpool" in text
