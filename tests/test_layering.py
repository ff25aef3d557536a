"""The package's layering (pyproject.toml [tool.importlinter]): each pipeline stage imports only
from the stages below it, so an import cycle or an upward import fails with the import named."""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _lint_imports():
    exe = shutil.which("lint-imports", path=str(pathlib.Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports (import-linter) is not installed; it is a dev dependency")
    return exe


def test_layers_contract_is_kept():
    done = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    # A copy of the package where core imports cli must be rejected, naming the import.
    copy = tmp_path / "rnnpool_tflm"
    shutil.copytree(ROOT / "rnnpool_tflm", copy, ignore=shutil.ignore_patterns("*.so", "__pycache__", "_csrc"))
    (copy / "core" / "upward.py").write_text("from ..cli import main  # noqa: F401\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    done = subprocess.run(
        [_lint_imports(), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert "rnnpool_tflm.core.upward -> rnnpool_tflm.cli" in done.stdout
