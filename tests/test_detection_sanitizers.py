"""The C post-processing under AddressSanitizer and UndefinedBehaviorSanitizer: the fuzz target
tests/detection_c/fuzz_detection.c drives the validator, the size functions and detection_run with
arbitrary dims, params, tensors (claimed sizes right or wrong, NaN-filled maps) and buffer sizes,
every buffer allocated at exactly the size passed, and checks the results' invariants (count,
labels, priors, scores above the threshold and in order). libFuzzer for a bounded time where clang
has it, else the target's own pseudo-random driver. About 10 s."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

from rnnpool_tflm.core.sources import DETECTION_DIR

FUZZ = pathlib.Path(__file__).resolve().parent / "detection_c" / "fuzz_detection.c"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
C_FLAGS = ["-std=c99", "-g", "-O1", "-Wall", "-Wextra", "-Werror"]
FUZZ_SECONDS = 15


def _compile(compiler: str, out: pathlib.Path, extra=()) -> None:
    cmd = [
        compiler,
        *C_FLAGS,
        *SANITIZE,
        *extra,
        f"-I{DETECTION_DIR}",
        str(FUZZ),
        *map(str, sorted(DETECTION_DIR.glob("*.c"))),
        "-lm",
        "-o",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"


def _libfuzzer_works(tmp_path: pathlib.Path) -> bool:
    if shutil.which("clang") is None:
        return False
    probe = tmp_path / "probe.c"
    probe.write_text(
        "#include <stdint.h>\n#include <stddef.h>\n"
        "int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) { (void)d; (void)n; return 0; }\n"
    )
    done = subprocess.run(
        ["clang", "-fsanitize=fuzzer,address", str(probe), "-o", str(tmp_path / "probe")],
        capture_output=True,
        text=True,
    )
    return done.returncode == 0


def test_random_inputs_reach_detection_run_without_a_sanitizer_report(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the ASan/UBSan build needs it")
    fuzzer = tmp_path / "fuzz_standalone"
    _compile("gcc", fuzzer, ["-DDETECTION_FUZZ_STANDALONE"])
    done = subprocess.run([str(fuzzer), "300000", "7"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    counts = dict(item.split("=") for item in done.stdout.split()[1:])
    assert counts["iterations"] == "300000"
    # both the rejections and the deep paths are exercised
    assert int(counts["ran_ok"]) > 5000 and int(counts["boxes"]) > 20000 and int(counts["rejected"]) > 5000


def test_libfuzzer_finds_no_crash(tmp_path):
    if not _libfuzzer_works(tmp_path):
        pytest.skip("clang's libFuzzer runtime is not installed (the pseudo-random run above covers the target)")
    fuzzer = tmp_path / "fuzz"
    _compile("clang", fuzzer, ["-fsanitize=fuzzer"])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # libFuzzer's RSS limit reads the peak RSS inherited from pytest; limit single allocations instead.
    done = subprocess.run(
        [
            str(fuzzer),
            f"-max_total_time={FUZZ_SECONDS}",
            "-seed=1",
            "-print_final_stats=1",
            "-rss_limit_mb=0",
            "-malloc_limit_mb=1024",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-4000:]
