"""PlatformIO extra script: TFLM (never vendored), the RNNPool op and the generated model.

TFLM comes from $TFLM_DIR, or is fetched once at the pinned commit by
tools/fetch_tflm.sh into ~/.cache/rnnpool-tflm (a connected machine). Its
library sources and flags are the ones the emulated build uses
(rnnpool_tflm.toolchain.tflm_tree / rnnpool_tflm.deploy.build: what TFLM's Makefile
builds for cortex_m_generic with CMSIS-NN kernels); the RNNPool op is compiled
from ../custom_ops/rnnpool and ../custom_ops/inverted_residual, the detector post-processing
from ../custom_ops/detection, the model from generated/ (`rnnpool-tflm export`).
"""
import os
import pathlib
import subprocess
import sys

Import("env")  # noqa: F821  (provided by PlatformIO/SCons)

FIRMWARE = pathlib.Path(env.subst("$PROJECT_DIR")).resolve()  # noqa: F821
REPO = FIRMWARE.parent
sys.path.insert(0, str(REPO))
from rnnpool_tflm.deploy import build as fb  # noqa: E402
from rnnpool_tflm.toolchain import tflm_tree as tflm_sources  # noqa: E402


def tflm_root() -> pathlib.Path:
    if os.environ.get(tflm_sources.TFLM_ENV, "").strip():
        return tflm_sources.tflm_dir()
    print("TFLM_DIR is not set: fetching TFLM at the pinned commit (tools/fetch_tflm.sh)")
    done = subprocess.run(["bash", str(FIRMWARE / "tools" / "fetch_tflm.sh")], check=True,
                          stdout=subprocess.PIPE, text=True)
    return tflm_sources.check_tflm_dir(pathlib.Path(done.stdout.strip().splitlines()[-1]))


if not (FIRMWARE / "generated" / "model_data.h").is_file():
    sys.stderr.write("firmware/generated/ holds no model: run `rnnpool-tflm export MODEL.tflite --firmware firmware`\n")
    env.Exit(1)  # noqa: F821

ROOT = tflm_root()
SOURCES = tflm_sources.library_sources(ROOT)


def define(flag: str):
    """-DNAME or -DNAME=VALUE as a CPPDEFINES entry (string values escaped for the shell)."""
    name, _, value = flag[2:].partition("=")
    if not value:
        return name
    if value.startswith('"'):
        return (name, env.StringifyMacro(value.strip('"')))  # noqa: F821
    return (name, value)


# The CPU flags are explicit (PlatformIO's bare-metal defaults are appended after this
# pre: script runs, so the library environments cloned below would miss them).
env.Append(  # noqa: F821
    CPPPATH=[str(FIRMWARE / "src"), str(FIRMWARE / "generated"), str(REPO / "custom_ops" / "rnnpool"),
             str(REPO / "custom_ops" / "inverted_residual"), str(REPO / "custom_ops" / "detection"),
             str(FIRMWARE / "platform"), *map(str, tflm_sources.include_dirs(ROOT))],
    CPPDEFINES=[define(d) for d in fb.TFLM_DEFINES],
    CCFLAGS=[*fb.CPU_FLAGS, *fb.COMMON_FLAGS],
    CFLAGS=list(fb.C_FLAGS),
    CXXFLAGS=list(fb.CXX_FLAGS),
    LINKFLAGS=[*fb.CPU_FLAGS, *fb.LINK_FLAGS],
    LIBS=["m"],
)

# TFLM at the Makefile's optimisation levels, as three static libraries. The clones are
# taken before the platform's builder names its tools, so they name the Arm toolchain
# themselves (the names ststm32's builder/main.py uses); without this they would run
# the host's cc/c++.
ARM_TOOLS = dict(AR="arm-none-eabi-gcc-ar", AS="arm-none-eabi-as", CC="arm-none-eabi-gcc",
                 CXX="arm-none-eabi-g++", RANLIB="arm-none-eabi-gcc-ranlib")
libraries = []
for name, group, opt in (("tflm_core", SOURCES.core, fb.CORE_OPT), ("tflm_kernels", SOURCES.kernels, fb.KERNEL_OPT),
                         ("cmsis_nn", SOURCES.third_party_kernels, fb.THIRD_PARTY_KERNEL_OPT)):
    lib_env = env.Clone()  # noqa: F821
    lib_env.Replace(ARFLAGS=["rc"], **ARM_TOOLS)
    lib_env.Append(CCFLAGS=[opt, "-w"])
    objects = [lib_env.Object(target=os.path.join("$BUILD_DIR", name, rel.replace("/", "__") + ".o"),
                              source=str(ROOT / rel)) for rel in group]
    libraries.append(lib_env.StaticLibrary(os.path.join("$BUILD_DIR", name), objects))
env.Prepend(LIBS=libraries)  # noqa: F821

# The custom ops (compiled from custom_ops/, not copied), the model, the board start-up/console.
env.BuildSources("$BUILD_DIR/rnnpool_op", str(REPO / "custom_ops" / "rnnpool"),  # noqa: F821
                 src_filter="-<*> +<*.c> +<rnnpool_tflm.cc>")
env.BuildSources("$BUILD_DIR/inverted_residual_op", str(REPO / "custom_ops" / "inverted_residual"),  # noqa: F821
                 src_filter="-<*> +<*.c> +<inverted_residual_tflm.cc> +<inverted_residual_options.cc>")
env.BuildSources("$BUILD_DIR/detection", str(REPO / "custom_ops" / "detection"),  # noqa: F821
                 src_filter="-<*> +<*.c>")
env.BuildSources("$BUILD_DIR/generated", str(FIRMWARE / "generated"), src_filter="-<*> +<*.cc>")  # noqa: F821
env.BuildSources("$BUILD_DIR/platform", str(FIRMWARE / "platform"),  # noqa: F821
                 src_filter="-<*> +<startup_cm4.c> +<boards/uart_stm32f4.c> +<cycle_counter.c>")
