"""The command line: help, version, and one-line errors instead of tracebacks."""

import re
import subprocess
import sys

import rnnpool_tflm


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "rnnpool_tflm.cli.main", *args], capture_output=True, text=True, timeout=300
    )


def test_version_and_help():
    done = _run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"rnnpool-tflm {rnnpool_tflm.__version__}"
    done = _run("--help")
    assert done.returncode == 0
    listed = set(re.findall(r"^    ([a-z-]+)  ", done.stdout, re.M))
    assert listed >= {"demo", "convert", "check", "export", "emulate", "profile", "bench"}, listed


def test_unknown_subcommand_is_a_usage_error():
    done = _run("frobnicate")
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_errors_are_one_line_without_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = _run("demo", "--quick", "--out", str(blocker / "sub"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("rnnpool-tflm demo: error:")
