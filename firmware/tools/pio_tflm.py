"""PlatformIO extra script (pre:): TFLM (never vendored), the RNNPool op, the generated model
and the board's facts from the board record.

TFLM comes from $TFLM_DIR, or is fetched once at the pinned commit by
tools/fetch_tflm.sh into ~/.cache/rnnpool-tflm (a connected machine). Its library is
the emulated build's (rnnpool_tflm.deploy.build.tflm_library: what TFLM's Makefile
builds for cortex_m_generic with CMSIS-NN kernels), compiled with PlatformIO's
toolchain and cached; the custom ops are compiled from ../custom_ops/rnnpool and
../custom_ops/inverted_residual, the detector post-processing from ../custom_ops/detection,
the model from generated/ (`rnnpool-tflm export`).
The environment's name is a board of rnnpool_tflm/core/boards.py: its clock, console
and memory sizes become the defines (deploy.build.board_defines) and PlatformIO's size
limits; the app gets the emulated build's warnings (deploy.build.APP_WARNINGS).
"""

import os
import pathlib
import subprocess
import sys

Import("env")  # noqa: F821  (provided by PlatformIO/SCons)

FIRMWARE = pathlib.Path(env.subst("$PROJECT_DIR")).resolve()  # noqa: F821
REPO = FIRMWARE.parent
sys.path.insert(0, str(REPO))
from rnnpool_tflm.core import boards  # noqa: E402
from rnnpool_tflm.deploy import build as fb  # noqa: E402
from rnnpool_tflm.toolchain import tflm_tree as tflm_sources  # noqa: E402

BOARD = boards.get_board(env["PIOENV"])  # noqa: F821
# The record's memory is what `pio run` checks the image against (RAM: the arena's block).
env.BoardConfig().update("upload.maximum_ram_size", BOARD.arena_block.size)  # noqa: F821
env.BoardConfig().update("upload.maximum_size", BOARD.flash.size)  # noqa: F821


def tflm_root() -> pathlib.Path:
    if os.environ.get(tflm_sources.TFLM_ENV, "").strip():
        return tflm_sources.tflm_dir()
    print("TFLM_DIR is not set: fetching TFLM at the pinned commit (tools/fetch_tflm.sh)")
    done = subprocess.run(
        ["bash", str(FIRMWARE / "tools" / "fetch_tflm.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return tflm_sources.check_tflm_dir(pathlib.Path(done.stdout.strip().splitlines()[-1]))


if not (FIRMWARE / "generated" / "model_data.h").is_file():
    sys.stderr.write("firmware/generated/ holds no model: run `rnnpool-tflm export MODEL.tflite --firmware firmware`\n")
    env.Exit(1)  # noqa: F821


def arm_toolchain_first() -> None:
    """PlatformIO's pinned toolchain first on PATH, for the TFLM library built below."""
    package = env.PioPlatform().get_package_dir("toolchain-gccarmnoneeabi")  # noqa: F821
    if package:
        os.environ["PATH"] = os.pathsep.join([os.path.join(package, "bin"), os.environ.get("PATH", "")])


ROOT = tflm_root()
arm_toolchain_first()
# TFLM as the emulated build compiles it (TFLM's Makefile's source list, flags and
# optimisation levels: rnnpool_tflm.deploy.build.tflm_library), built once per TFLM tree and
# compiler into the toolkit's cache (~/.cache/rnnpool-tflm or $RNNPOOL_TFLM_CACHE) and
# shared by every environment, `emulate` and `check`.
LIBRARY = fb.tflm_library(ROOT, log=print)


def define(flag: str):
    """-DNAME or -DNAME=VALUE as a CPPDEFINES entry (string values escaped for the shell)."""
    name, _, value = flag[2:].partition("=")
    if not value:
        return name
    if value.startswith('"'):
        return (name, env.StringifyMacro(value.strip('"')))  # noqa: F821
    return (name, value)


# The CPU flags are explicit: PlatformIO's bare-metal defaults come after this pre: script.
# Ours (the app, the op, the model, the platform) get the board's defines from the record
# and the emulated build's warnings.
env.Append(  # noqa: F821
    CPPPATH=[
        str(FIRMWARE / "src"),
        str(FIRMWARE / "generated"),
        str(REPO / "custom_ops" / "rnnpool"),
        str(REPO / "custom_ops" / "inverted_residual"),
        str(REPO / "custom_ops" / "common"),
        str(REPO / "custom_ops" / "conv"),
        str(REPO / "custom_ops" / "detection"),
        str(FIRMWARE / "platform"),
        *map(str, LIBRARY.include_dirs),
    ],
    CPPDEFINES=[define(d) for d in fb.TFLM_DEFINES] + [define(f"-D{d}") for d in fb.board_defines(BOARD)],
    CCFLAGS=[*fb.CPU_FLAGS, *fb.COMMON_FLAGS, *fb.APP_WARNINGS],
    CFLAGS=list(fb.C_FLAGS),
    CXXFLAGS=list(fb.CXX_FLAGS),
    LINKFLAGS=[*fb.CPU_FLAGS, *fb.LINK_FLAGS, f"-L{FIRMWARE / 'platform'}"],  # the scripts INCLUDE sections.ld
    LIBS=[env.File(str(LIBRARY.path)), "m"],  # noqa: F821
)

# The custom ops (compiled from custom_ops/, not copied), the model, the board start-up/console.
env.BuildSources(
    "$BUILD_DIR/rnnpool_op",
    str(REPO / "custom_ops" / "rnnpool"),  # noqa: F821
    src_filter="-<*> +<*.c> +<rnnpool_tflm.cc>",
)
env.BuildSources(
    "$BUILD_DIR/inverted_residual_op",
    str(REPO / "custom_ops" / "inverted_residual"),  # noqa: F821
    src_filter="-<*> +<*.c> +<inverted_residual_tflm.cc> +<inverted_residual_options.cc>",
)
env.BuildSources(
    "$BUILD_DIR/narrow_conv",
    str(REPO / "custom_ops" / "conv"),  # noqa: F821
    src_filter="-<*> +<*.c> +<narrow_conv_tflm.cc>",
)
env.BuildSources(
    "$BUILD_DIR/detection",
    str(REPO / "custom_ops" / "detection"),  # noqa: F821
    src_filter="-<*> +<*.c>",
)
env.BuildSources("$BUILD_DIR/generated", str(FIRMWARE / "generated"), src_filter="-<*> +<*.cc>")  # noqa: F821
env.BuildSources(
    "$BUILD_DIR/platform",
    str(FIRMWARE / "platform"),  # noqa: F821
    src_filter="-<*> " + " ".join(f"+<{s}>" for s in fb.platform_sources(BOARD)),
)
