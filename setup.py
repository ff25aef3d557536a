"""Builds the RNNPool C kernel into a host shared library loaded with ctypes.

The kernel is plain C99 with no Python API; it is built as an extension so
that `pip install` compiles it for the host. Wheels also carry the C sources
(_csrc/) so the op contract header is readable at run time.
"""

import pathlib
import shutil

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parent
CSRC = ROOT / "custom_ops" / "rnnpool"
SOURCES = sorted(str(p.relative_to(ROOT)) for p in CSRC.glob("*.c"))


class BuildPyWithSources(build_py):
    """Copies custom_ops/rnnpool (headers and C) into the built package as _csrc/."""

    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "rnnpool_tflm" / "_csrc"
        target.mkdir(parents=True, exist_ok=True)
        for path in CSRC.iterdir():
            if path.suffix in (".c", ".h", ".cc"):
                shutil.copy2(path, target / path.name)


setup(
    ext_modules=[Extension(
        "rnnpool_tflm._rnnpool_c",
        sources=SOURCES,
        include_dirs=[str(CSRC.relative_to(ROOT))],
        extra_compile_args=["-std=c99", "-O2", "-Wall", "-Wextra", "-fno-fast-math",
                            "-Werror=implicit-function-declaration"],
        libraries=["m"],
        py_limited_api=False,
    )] if SOURCES else [],
    cmdclass={"build_py": BuildPyWithSources},
)
