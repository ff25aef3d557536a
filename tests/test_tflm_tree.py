"""The TFLM library's sources come from TFLM's own Makefile (toolchain/tflm_tree.py), offline.

Needs a TFLM checkout (TFLM_DIR) and arm-none-eabi-gcc; about 10 s (one `make`)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from rnnpool_tflm.toolchain import tflm_tree

pytestmark = pytest.mark.skipif(
    not os.environ.get(tflm_tree.TFLM_ENV) or shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None,
    reason="TFLM_DIR is not set (or arm-none-eabi-gcc / make are missing): TFLM's Makefile lists the sources",
)


@pytest.fixture
def network_tools_that_fail(tmp_path, monkeypatch):
    """wget, curl and git on PATH that record their call and fail: the listing must not use them."""
    bin_dir, log = tmp_path / "bin", tmp_path / "network.log"
    bin_dir.mkdir()
    for tool in ("wget", "curl", "git"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\nexit 1\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_the_makefile_lists_the_library_offline_and_once(tmp_path, monkeypatch, network_tools_that_fail):
    monkeypatch.setenv("RNNPOOL_TFLM_CACHE", str(tmp_path / "cache"))  # an empty cache: make runs
    root = tflm_tree.tflm_dir()
    had_gen = (root / "gen").exists()
    sources = tflm_tree.library_sources(root)
    assert not network_tools_that_fail.exists()  # no download was tried
    assert (root / "gen").exists() == had_gen  # nothing generated inside TFLM_DIR

    # The CMSIS-NN build: specialised kernels replace the reference ones, at the kernel level.
    assert "tensorflow/lite/micro/kernels/cmsis_nn/conv.cc" in sources.kernels
    assert "tensorflow/lite/micro/kernels/conv.cc" not in sources.kernels + sources.core
    assert "tensorflow/lite/micro/micro_interpreter.cc" in sources.core
    assert "tensorflow/lite/micro/cortex_m_generic/debug_log.cc" in sources.core
    cmsis_nn = sources.third_party_kernels
    assert cmsis_nn and all(f.startswith(f"{tflm_tree.DOWNLOADS}/cmsis_nn/Source/") for f in cmsis_nn)
    assert not [f for f in cmsis_nn if f.endswith(("_f16.c", "_f32.c"))]  # ARM_NN_ENABLE_F16/F32=0
    assert not [f for f in sources.all() if f.endswith("_test.cc")]
    assert len(set(sources.all())) == len(sources.all())

    # Cached per tree: the second call does not run make.
    def no_make(*args, **kwargs):
        raise AssertionError("make ran again")

    monkeypatch.setattr(subprocess, "run", no_make)
    assert tflm_tree.library_sources(root) == sources


def test_a_tree_without_the_pigweed_folder_is_named(tmp_path):
    """TFLM's Makefile would clone pigweed from the network when its folder is missing."""
    root = tflm_tree.tflm_dir()
    fake = tmp_path / "tflm"
    for rel, _ in tflm_tree._REQUIRED:
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).symlink_to(root / rel)
    with pytest.raises(tflm_tree.RNNPoolError, match="lacks the pigweed folder"):
        tflm_tree.check_tflm_dir(fake)
    (fake / tflm_tree.DOWNLOADS / "pigweed").mkdir()
    assert tflm_tree.check_tflm_dir(fake) == fake.resolve()
