"""Builds the custom ops' C kernels (RNNPool, InvertedResidual) and the detector
post-processing into one host shared library loaded with ctypes.

The kernel is plain C99 with no Python API; it is built as an extension so
that `pip install` compiles it for the host. Wheels also carry the C sources
(_csrc/) so the op contract header is readable at run time.
"""

import pathlib
import shutil

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parent
# Every custom op's portable C core (its TFLM registration, .cc, is not part of the host library),
# and the detector post-processing.
CSRC_DIRS = [
    ROOT / "custom_ops" / "rnnpool",
    ROOT / "custom_ops" / "inverted_residual",
    ROOT / "custom_ops" / "common",
    ROOT / "custom_ops" / "conv",
    ROOT / "custom_ops" / "detection",
]
SOURCES = sorted(str(p.relative_to(ROOT)) for d in CSRC_DIRS for p in d.glob("*.c"))


class BuildPyWithSources(build_py):
    """Copies the custom ops' sources (headers, C, C++) into the built package as _csrc/ (flat)."""

    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "rnnpool_tflm" / "_csrc"
        target.mkdir(parents=True, exist_ok=True)
        for csrc in CSRC_DIRS:
            for path in csrc.iterdir():
                if path.suffix in (".c", ".h", ".cc"):
                    shutil.copy2(path, target / path.name)


setup(
    ext_modules=[
        Extension(
            "rnnpool_tflm._rnnpool_c",
            sources=SOURCES,
            include_dirs=[str(d.relative_to(ROOT)) for d in CSRC_DIRS],
            extra_compile_args=[
                "-std=c99",
                "-O2",
                "-Wall",
                "-Wextra",
                "-fno-fast-math",
                "-Werror=implicit-function-declaration",
            ],
            libraries=["m"],
            py_limited_api=False,
        )
    ]
    if SOURCES
    else [],
    cmdclass={"build_py": BuildPyWithSources},
)
