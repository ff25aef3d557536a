"""The InvertedResidual kernel under AddressSanitizer/UBSan: the vector harness (tests/m4/invres_main.c,
host build: every buffer exactly as large as the kernel asks) bit-exact on random blocks; the
validator, prepare and eval fuzzed (tests/m4/fuzz_invres.c), and the TFLM registration's
flexbuffer option parser fuzzed (tests/m4/fuzz_invres_options.cc, needs TFLM_DIR for
flexbuffers.h) -- with libFuzzer for a bounded time when clang's fuzzer and sanitizer runtimes
are installed, else with the targets' own pseudo-random drivers. Runtime about 40 s."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest
from test_inverted_residual_m4 import _listed_cases, _random_cases

from rnnpool_tflm.core.sources import source_dir
from rnnpool_tflm.runtime import invres_harness
from rnnpool_tflm.toolchain import tflm_tree

HARNESS = pathlib.Path(__file__).resolve().parent / "m4"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
C_FLAGS = ["-std=c99", "-g", "-O1", "-Wall", "-Wextra", "-Werror"]
CXX_FLAGS = ["-std=c++17", "-g", "-O1", "-Wall", "-Wextra"]
FUZZ_SECONDS = 20

pytestmark = pytest.mark.slow


def _kernel_sources():
    return sorted(source_dir("inverted_residual").glob("*.c"))


@pytest.fixture(scope="module")
def kernel_objects(tmp_path_factory):
    """The kernel compiled once with the sanitizers (gcc), linked into every driver below."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the ASan/UBSan build needs it")
    out = tmp_path_factory.mktemp("asan_kernel")
    objects = []
    for source in _kernel_sources():
        obj = out / f"{source.stem}.o"
        done = _run(
            ["gcc", *C_FLAGS, *SANITIZE, f"-I{source.parent}", f"-I{source_dir('common')}", "-c", source, "-o", obj]
        )
        assert done.returncode == 0, done.stderr
        objects.append(obj)
    return objects


def _run(cmd, **kwargs):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    return done


def _compile_c(compiler: str, sources, out: pathlib.Path, includes=(), extra=()) -> None:
    cmd = [
        compiler,
        *C_FLAGS,
        *SANITIZE,
        *extra,
        f"-I{source_dir('inverted_residual')}",
        f"-I{source_dir('common')}",
        f"-I{HARNESS}",
        *(f"-I{d}" for d in includes),
        *map(str, sources),
        "-lm",
        "-o",
        str(out),
    ]
    done = _run(cmd)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"


def test_vectors_are_exact_under_sanitizers(tmp_path, kernel_objects):
    cases = [*_listed_cases(), *_random_cases(30)]
    (tmp_path / "invres_cases.h").write_text(invres_harness.cases_header(cases))
    driver = tmp_path / "invres_vectors"
    _compile_c(
        "gcc", [HARNESS / "invres_main.c", HARNESS / "invres_harness.c", *kernel_objects], driver, includes=[tmp_path]
    )
    done = _run([driver], timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count(" ok status=INVRES_OK") == len(cases)
    assert "done failures=0" in done.stdout


def _libfuzzer_works(tmp_path: pathlib.Path, compiler: str) -> bool:
    """clang's libFuzzer and sanitizer runtimes are installed (a probe links)."""
    if shutil.which(compiler) is None:
        return False
    probe = tmp_path / ("probe.c" if compiler == "clang" else "probe.cc")
    probe.write_text(
        "#include <stdint.h>\n#include <stddef.h>\n"
        + ('extern "C" ' if compiler != "clang" else "")
        + "int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) { (void)d; (void)n; return 0; }\n"
    )
    done = _run([compiler, "-fsanitize=fuzzer,address,undefined", probe, "-o", tmp_path / "probe"])
    return done.returncode == 0


def _libfuzzer_run(fuzzer: pathlib.Path, tmp_path: pathlib.Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # libFuzzer's RSS limit reads the peak RSS, which Linux carries over from the process that
    # forked it (pytest with TensorFlow loaded); limit single allocations instead.
    done = _run(
        [
            fuzzer,
            f"-max_total_time={FUZZ_SECONDS}",
            "-seed=1",
            "-print_final_stats=1",
            "-rss_limit_mb=0",
            "-malloc_limit_mb=2048",
            corpus,
        ],
        timeout=FUZZ_SECONDS + 120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    runs = int(next(line for line in done.stderr.splitlines() if "number_of_executed_units" in line).split()[-1])
    assert runs > 1000


def test_fuzzing_the_validator_prepare_and_eval_finds_no_crash(tmp_path, kernel_objects):
    if _libfuzzer_works(tmp_path, "clang"):
        fuzzer = tmp_path / "fuzz"
        _compile_c("clang", [HARNESS / "fuzz_invres.c", *_kernel_sources()], fuzzer, extra=["-fsanitize=fuzzer"])
        _libfuzzer_run(fuzzer, tmp_path)
    else:  # no libFuzzer: a long pseudo-random run under the sanitizers
        fuzzer = tmp_path / "fuzz_standalone"
        _compile_c("gcc", [HARNESS / "fuzz_invres.c", *kernel_objects], fuzzer, extra=["-DINVRES_FUZZ_STANDALONE"])
        done = _run([fuzzer, "60000", "1"], timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        counts = dict(item.split("=") for item in done.stdout.split()[1:])
        assert counts["iterations"] == "60000" and int(counts["evaluated"]) > 1000


@pytest.mark.skipif(
    not os.environ.get(tflm_tree.TFLM_ENV),
    reason="TFLM_DIR is not set (the option parser needs its flatbuffers headers)",
)
def test_fuzzing_the_option_parser_finds_no_crash(tmp_path, kernel_objects):
    root = tflm_tree.tflm_dir()
    flexbuffers = root / tflm_tree.DOWNLOADS / "flatbuffers" / "include"
    core = kernel_objects  # the C core as C, linked into the C++ fuzzer
    sources = [HARNESS / "fuzz_invres_options.cc", source_dir("inverted_residual") / "inverted_residual_options.cc"]
    includes = [f"-I{flexbuffers}", f"-I{source_dir('inverted_residual')}", f"-I{source_dir('common')}"]
    libfuzzer = _libfuzzer_works(tmp_path, "clang++")
    compiler = "clang++" if libfuzzer else "g++"
    if shutil.which(compiler) is None:
        pytest.skip("no C++ compiler")
    fuzzer = tmp_path / "fuzz_options"
    extra = ["-fsanitize=fuzzer"] if libfuzzer else ["-DINVRES_FUZZ_STANDALONE"]
    done = _run([compiler, *CXX_FLAGS, *SANITIZE, *extra, *includes, *sources, *core, "-o", fuzzer])
    assert done.returncode == 0, done.stderr[-4000:]
    if libfuzzer:
        _libfuzzer_run(fuzzer, tmp_path)
    else:
        done = _run([fuzzer, "100000", "5"], timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        counts = dict(item.split("=") for item in done.stdout.split()[1:])
        # Both the rejecting and the accepting paths were reached.
        assert int(counts["parsed"]) > 100000 and int(counts["accepted"]) > 1000


def test_the_fuzz_driver_catches_what_it_should(tmp_path, kernel_objects):
    """Guard against a fuzz target that cannot fail: an eval the validator accepted but prepare
    rejects must abort. A copy of the target whose prepare always fails is built and run."""
    broken = tmp_path / "broken.c"
    text = (HARNESS / "fuzz_invres.c").read_text()
    broken.write_text(
        text.replace(
            "if (invres_s8_prepare(&cfg, &p, prep, prepared) != INVRES_OK) abort();",
            "if (invres_s8_prepare(&cfg, &p, prep, prepared - 8) != INVRES_OK) abort();",
        )
    )
    fuzzer = tmp_path / "broken_fuzz"
    _compile_c("gcc", [broken, *kernel_objects], fuzzer, extra=["-DINVRES_FUZZ_STANDALONE"])
    done = _run([fuzzer, "20000", "1"], timeout=300)
    assert done.returncode != 0
