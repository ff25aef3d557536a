"""Progress bars (rnnpool_tflm.core.progress) and how the command line switches them."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rnnpool_tflm.core import progress


def test_steps_bar_names_each_step_when_shown(capsys):
    with progress.shown(True), progress.steps("convert", ["calibrate", "TFLite converter"]) as step:
        step("calibrate")
        step("TFLite converter")
    err = capsys.readouterr().err
    assert "convert: 0/2" in err and "calibrate" in err and "convert: 1/2" in err and "TFLite converter" in err
    assert "convert: 2/2" in err


def test_nothing_is_drawn_or_echoed_when_silenced(capsys):
    with progress.shown(False):
        with progress.steps("convert", ["a"]) as step:
            step("a")
        with progress.activity("emulate", echo_notes=True) as note:
            note("building the TFLM library")
        assert progress.keras_callbacks("train", 3) == []
    assert capsys.readouterr() == ("", "")


def test_off_a_terminal_notes_become_lines_and_bars_stay_away(capsys):
    with progress.shown(None):  # pytest's stderr is not a terminal
        with progress.activity("emulate", echo_notes=True) as note:
            note("building the TFLM library (340 files, 2 jobs)")
        with progress.activity("export") as note:
            note("not echoed")
    assert capsys.readouterr().err == "building the TFLM library (340 files, 2 jobs)\n"


def test_activity_redraws_its_elapsed_time(capsys, monkeypatch):
    import time

    monkeypatch.setattr(progress, "TICK_SECONDS", 0.05)
    with progress.shown(True), progress.activity("emulate") as note:
        note("running QEMU")
        time.sleep(0.4)
    err = capsys.readouterr().err
    assert err.count("emulate: 00:00, running QEMU") >= 3, err


def test_bars_draw_past_a_capture_of_native_stderr():
    """runtime.native_output captures fd 2 around native calls: the bar neither vanishes
    into the capture nor pollutes the captured text."""
    script = textwrap.dedent("""
        import os
        from rnnpool_tflm.core import progress
        from rnnpool_tflm.runtime.native_output import captured_stderr_fd
        with progress.shown(True), progress.activity("busy") as note:
            with captured_stderr_fd() as said:
                note("step one")
                os.write(2, b"native text\\n")
        print(repr(said[0]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr("native text\n")
    assert "busy: 00:00, step one" in done.stderr


def test_keras_fit_draws_one_bar_over_the_epochs_with_tqdms_callback(capsys):
    from tqdm.keras import TqdmCallback

    from rnnpool_tflm.core.keras import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with progress.shown(True):
        callbacks = progress.keras_callbacks("train (float)", 2)
    assert len(callbacks) == 1 and isinstance(callbacks[0], TqdmCallback)
    model.fit(np.zeros((32, 3)), np.zeros((32, 1)), epochs=2, batch_size=16, verbose=0, callbacks=callbacks)
    assert callbacks[0].epoch_bar.n == 2  # counted by fit's epoch hooks
    err = capsys.readouterr().err  # drawn at most every 0.1 s: the first state at least
    assert "train (float)" in err and "/2 [" in err and "epoch/s" in err


# -- the command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, drawn", [([], True), (["--quiet"], False), (["--json"], False)])
def test_cli_draws_bars_on_a_terminal_unless_quiet_or_json(capsys, monkeypatch, flags, drawn):
    from rnnpool_tflm.cli import main as cli
    from rnnpool_tflm.cli.commands import check as check_command

    def fake_run(args):
        with progress.steps("check", ["one"]) as step:
            step("one")
        return 0

    monkeypatch.setattr(check_command, "run", fake_run)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main(["check", "model.tflite", *flags]) == 0
    assert ("check: 0/1" in capsys.readouterr().err) == drawn


def test_every_command_takes_quiet(capsys):
    from rnnpool_tflm.cli import main as cli

    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as done:
            cli.main([name, "--help"])
        assert done.value.code == 0
        assert "-q, --quiet" in capsys.readouterr().out, name
