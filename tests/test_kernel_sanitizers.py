"""The C kernel under AddressSanitizer and UndefinedBehaviorSanitizer.

A host driver (tests/m4/main_host.c + harness.c) built with gcc
-fsanitize=address,undefined runs vector files written here (golden outputs
from the Python references) with every buffer allocated at exactly the size
the kernel asks for; the validator, prepare and eval are fuzzed
(tests/m4/fuzz_validator.c) with libFuzzer for a bounded time, or with a long
pseudo-random run where clang's libFuzzer is missing. Runtime about 40 s.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest
from test_kernel_host import KernelCase, random_cases

from rnnpool_tflm.core.config import RNNPoolConfig
from rnnpool_tflm.core.sources import source_dir
from rnnpool_tflm.core.weights import RNNPoolWeights
from rnnpool_tflm.reference import rnnpool_float
from rnnpool_tflm.runtime import native

HARNESS = pathlib.Path(__file__).resolve().parent / "m4"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
C_FLAGS = ["-std=c99", "-g", "-O1", "-Wall", "-Wextra", "-Werror"]
FUZZ_SECONDS = 20

pytestmark = pytest.mark.slow


def _compile(compiler: str, sources, out: pathlib.Path, extra=()) -> None:
    cmd = [
        compiler,
        *C_FLAGS,
        *SANITIZE,
        *extra,
        f"-I{source_dir()}",
        f"-I{source_dir('common')}",
        f"-I{HARNESS}",
        *map(str, sources),
        "-lm",
        "-o",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"


def _kernel_sources():
    return sorted(source_dir().glob("*.c"))


@pytest.fixture(scope="module")
def host_driver(tmp_path_factory) -> pathlib.Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the ASan/UBSan build needs it")
    out = tmp_path_factory.mktemp("asan") / "rnnpool_vectors"
    _compile("gcc", [HARNESS / "main_host.c", HARNESS / "harness.c", *_kernel_sources()], out)
    return out


# -- vector files (format in tests/m4/main_host.c) ---------------------------------------------


def _array(values, dtype) -> bytes:
    flat = np.ascontiguousarray(values, dtype=dtype).reshape(-1)
    return np.int32(flat.size).tobytes() + flat.tobytes()


def _header(variant: int, cfg: native.CConfig) -> bytes:
    return b"RPV2" + np.int32(variant).tobytes() + bytes(cfg)


def write_int8_vectors(path: pathlib.Path, case: KernelCase, expected: np.ndarray | None = None) -> pathlib.Path:
    p = case.params
    cfg = native.make_config(p.config, case.x.shape)
    expected = case.expected if expected is None else expected
    parts = [
        _header(0, cfg),
        np.float32(p.input_scale).tobytes(),
        np.int32(p.input_zero_point).tobytes(),
        np.float32(p.output_scale).tobytes(),
        np.int32(p.output_zero_point).tobytes(),
        np.array(
            [p.w1_scale.size, p.u1_scale.size, p.w2_scale.size, p.u2_scale.size, expected.size], np.int32
        ).tobytes(),
        _array(p.w1, np.int8),
        _array(p.w1_scale, np.float32),
        _array(p.u1, np.int8),
        _array(p.u1_scale, np.float32),
        _array(p.bias1, np.int32),
        _array(p.w2, np.int8),
        _array(p.w2_scale, np.float32),
        _array(p.u2, np.int8),
        _array(p.u2_scale, np.float32),
        _array(p.bias2, np.int32),
        _array(p.scalars, np.int16),
        _array(case.x, np.int8),
        _array(expected, np.int8),
    ]
    path.write_bytes(b"".join(parts))
    return path


def write_float_vectors(path: pathlib.Path, x, weights: RNNPoolWeights, config: RNNPoolConfig) -> pathlib.Path:
    params = native.F32Params(weights)
    expected = rnnpool_float(x, weights, config)
    k = params._keep
    parts = [
        _header(1, native.make_config(config, x.shape)),
        np.float32(1e-5).tobytes(),
        np.int32(expected.size).tobytes(),
        *(_array(k[name], np.float32) for name in ("w1", "u1", "bias1", "w2", "u2", "bias2", "scalars")),
        _array(x, np.float32),
        _array(expected, np.float32),
    ]
    path.write_bytes(b"".join(parts))
    return path


def _run(driver: pathlib.Path, files) -> subprocess.CompletedProcess:
    return subprocess.run([str(driver), *map(str, files)], capture_output=True, text=True, timeout=300)


def test_int8_and_float_vectors_are_exact_under_sanitizers(host_driver, tmp_path):
    rng = np.random.default_rng(2024)
    files = [write_int8_vectors(tmp_path / f"s8_{i}.bin", case) for i, case in enumerate(random_cases(rng, 80))]
    for i in range(12):
        config = RNNPoolConfig.create(
            tuple(int(v) for v in rng.integers(1, 5, 2)),
            tuple(int(v) for v in rng.integers(1, 5, 2)),
            tuple(int(v) for v in rng.integers(1, 9, 2)),
            ("valid", "same")[i % 2],
            ("sigmoid", "hard_sigmoid")[i // 2 % 2],
            ("tanh", "hard_tanh")[i // 4 % 2],
        )
        weights = RNNPoolWeights.random(
            int(rng.integers(1, 9)), *config.hidden_dims, rng, zeta=float(rng.normal(0, 3)), nu=float(rng.normal(-2, 3))
        )
        x = rng.standard_normal(
            (int(rng.integers(1, 3)), int(rng.integers(4, 10)), int(rng.integers(4, 10)), weights.channels)
        ).astype(np.float32)
        files.append(write_float_vectors(tmp_path / f"f32_{i}.bin", x, weights, config))
    done = _run(host_driver, files)
    assert done.returncode == 0 and done.stderr == "", done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count(": ok ") == len(files)
    assert f"done files={len(files)} failures=0" in done.stdout


def test_the_driver_reports_a_wrong_output(host_driver, tmp_path):
    case = next(random_cases(np.random.default_rng(5), 1))
    wrong = case.expected.copy()
    wrong.reshape(-1)[0] ^= 1
    done = _run(host_driver, [write_int8_vectors(tmp_path / "wrong.bin", case, wrong)])
    assert done.returncode == 1 and "FAIL" in done.stdout and "mismatches=1 " in done.stdout


def _libfuzzer_works(tmp_path: pathlib.Path) -> bool:
    if shutil.which("clang") is None:
        return False
    probe = tmp_path / "probe.c"
    probe.write_text(
        "#include <stdint.h>\n#include <stddef.h>\n"
        "int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) { (void)d; (void)n; return 0; }\n"
    )
    done = subprocess.run(
        ["clang", "-fsanitize=fuzzer", str(probe), "-o", str(tmp_path / "probe")], capture_output=True, text=True
    )
    return done.returncode == 0


def test_fuzzing_the_validator_prepare_and_eval_finds_no_crash(tmp_path):
    sources = [HARNESS / "fuzz_validator.c", *_kernel_sources()]
    if _libfuzzer_works(tmp_path):
        fuzzer = tmp_path / "fuzz"
        _compile("clang", sources, fuzzer, extra=["-fsanitize=fuzzer"])
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        # libFuzzer's RSS limit reads the peak RSS, which Linux carries over from the process that
        # forked it (pytest with TensorFlow loaded: gigabytes); limit single allocations instead.
        done = subprocess.run(
            [
                str(fuzzer),
                f"-max_total_time={FUZZ_SECONDS}",
                "-seed=1",
                "-print_final_stats=1",
                "-rss_limit_mb=0",
                "-malloc_limit_mb=2048",
                str(corpus),
            ],
            capture_output=True,
            text=True,
            timeout=FUZZ_SECONDS + 120,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        runs = int(next(line for line in done.stderr.splitlines() if "number_of_executed_units" in line).split()[-1])
        assert runs > 1000
    elif shutil.which("gcc") is not None:  # no libFuzzer: a long pseudo-random run under the sanitizers
        fuzzer = tmp_path / "fuzz_standalone"
        _compile("gcc", sources, fuzzer, extra=["-DRNNPOOL_FUZZ_STANDALONE"])
        done = subprocess.run([str(fuzzer), "200000", "1"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        assert "done iterations=200000" in done.stdout
    else:
        pytest.skip("neither clang (libFuzzer) nor gcc is installed")


def test_a_long_randomized_run_reaches_eval_without_a_crash(tmp_path):
    """The fuzz target's own driver: pseudo-random inputs that do reach prepare and eval."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    fuzzer = tmp_path / "fuzz_standalone"
    _compile("gcc", [HARNESS / "fuzz_validator.c", *_kernel_sources()], fuzzer, extra=["-DRNNPOOL_FUZZ_STANDALONE"])
    done = subprocess.run([str(fuzzer), "60000", "7"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    counts = dict(item.split("=") for item in done.stdout.split()[1:])
    assert int(counts["evaluated_s8"]) > 100 and int(counts["evaluated_f32"]) > 100


# -- the TFLM op's flexbuffer option parser (custom_ops/rnnpool/rnnpool_options.h) ----------------


def _options_fuzzer(tmp_path: pathlib.Path, header_dir: pathlib.Path, name: str) -> pathlib.Path:
    """tests/m4/fuzz_rnnpool_options.cc built standalone with g++ and the sanitizers, against the
    rnnpool_options.h in `header_dir` (TFLM's downloads supply flexbuffers.h)."""
    from rnnpool_tflm.toolchain import tflm_tree

    if not tflm_tree.tflm_dir(required=False):
        pytest.skip("TFLM_DIR is not set (the option parser needs its flatbuffers headers)")
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    flexbuffers = tflm_tree.tflm_dir() / tflm_tree.DOWNLOADS / "flatbuffers" / "include"
    out = tmp_path / name
    cmd = [
        "g++",
        "-std=c++17",
        "-g",
        "-O1",
        "-Wall",
        "-Wextra",
        *SANITIZE,
        "-DRNNPOOL_FUZZ_STANDALONE",
        f"-I{header_dir}",
        f"-I{source_dir()}",
        f"-I{source_dir('common')}",
        f"-I{flexbuffers}",
        str(HARNESS / "fuzz_rnnpool_options.cc"),
        "-o",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr[-4000:]}"
    return out


def test_fuzzing_the_option_parser_finds_no_crash(tmp_path):
    fuzzer = _options_fuzzer(tmp_path, source_dir(), "fuzz_options")
    done = subprocess.run([str(fuzzer), "100000", "5"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    counts = dict(item.split("=") for item in done.stdout.split()[1:])
    # Both the rejecting and the accepting paths were reached.
    assert int(counts["parsed"]) > 100000 and int(counts["accepted"]) > 1000


def test_the_option_fuzzer_finds_an_unchecked_key(tmp_path):
    """Guard against a fuzz target that cannot fail: the parser without its check that a key
    ends inside the buffer (as it was before issue 11) reads past it, and the run says so."""
    broken = tmp_path / "broken"
    broken.mkdir()
    text = (source_dir() / "rnnpool_options.h").read_text()
    check = re.compile(
        r"\n *if \(!TerminatedInside\(key, buffer, length\)\)\s*"
        r'return Refuse\(error, cap, "an option key runs past the options", nullptr\);'
    )
    without, removed = check.subn("", text)
    assert removed == 1
    (broken / "rnnpool_options.h").write_text(without)
    fuzzer = _options_fuzzer(tmp_path, broken, "broken_fuzz")
    done = subprocess.run([str(fuzzer), "100000", "5"], capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "heap-buffer-overflow" in done.stderr, done.stderr[-2000:]
