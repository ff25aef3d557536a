"""The tree stays formatted: ruff (lint + format) for Python and clang-format for C/C++, with
the configurations in pyproject.toml and .clang-format. Fix with:

    ./dev run ruff check --fix . && ./dev run ruff format .
    ./dev run clang-format -i $(git ls-files '*.c' '*.cc' '*.h' | grep -v firmware/generated)
"""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
C_SUFFIXES = (".c", ".cc", ".h")


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(pathlib.Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (it is in the dev extras: pip install -e '.[dev]')")
    return path


def _tracked_c_sources():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the C sources are listed by git")
    names = [n for n in listed.stdout.decode().split("\0") if n.endswith(C_SUFFIXES)]
    return [n for n in names if not n.startswith("firmware/generated/")]


def test_ruff_lint_is_clean():
    run = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_python_is_ruff_formatted():
    run = subprocess.run(
        [_tool("ruff"), "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_c_sources_are_clang_formatted():
    sources = _tracked_c_sources()
    assert sources, "no C/C++ sources found"
    run = subprocess.run(
        [_tool("clang-format"), "--dry-run", "-Werror", *sources], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-4000:]
