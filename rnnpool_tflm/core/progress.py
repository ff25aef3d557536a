"""Progress on stderr for the long steps (training, conversion, firmware builds, emulation).

tqdm draws the bars. They show only when stderr is a terminal, and never while
`shown(False)` is in effect: the command line sets that for --quiet and --json, so
stdout carries only results and stderr only bars, messages and errors. `shown(True)`
draws them whatever stderr is (a log file, a test).

    with progress.steps("convert", ["calibrate", "TFLite converter", "RNNPool ops"]) as step:
        step("calibrate"); ...
    with progress.activity("emulate") as note:   # no count to show: elapsed time and the latest note
        run(log=note)
    model.fit(..., callbacks=progress.keras_callbacks("train", epochs))
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from typing import Callable, Iterator, List, Optional, Sequence

# None: bars on a terminal only; False: never; True: always.
_SHOWN: contextvars.ContextVar[Optional[bool]] = contextvars.ContextVar("rnnpool_tflm_progress", default=None)

TICK_SECONDS = 0.5  # how often an activity's elapsed time is redrawn


@contextlib.contextmanager
def shown(show: Optional[bool]) -> Iterator[None]:
    """Within the block, bars show on a terminal (None), never (False) or always (True)."""
    token = _SHOWN.set(show)
    try:
        yield
    finally:
        _SHOWN.reset(token)


def _disabled() -> bool:
    show = _SHOWN.get()
    if show is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return not (isatty is not None and isatty())
    return not show


@contextlib.contextmanager
def bar(**kwargs) -> Iterator[object]:
    """A tqdm bar on stderr that follows the shown() setting (kwargs go to tqdm).

    It draws through its own copy of stderr's file descriptor: code that captures what
    native libraries write to fd 2 (runtime.native_output) neither hides the bar nor
    finds it in the captured text."""
    from tqdm.auto import tqdm

    disable = _disabled()
    stream = None
    if not disable:
        with contextlib.suppress(AttributeError, OSError, ValueError):  # no real file descriptor
            sys.stderr.flush()
            stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    try:
        with tqdm(file=stream or sys.stderr, disable=disable, dynamic_ncols=True, **kwargs) as b:
            yield b
    finally:
        if stream is not None:
            stream.close()


@contextlib.contextmanager
def _ticking(b) -> Iterator[None]:
    """Redraws the bar every TICK_SECONDS, so its elapsed time moves during a long call."""
    if b.disable:
        yield
        return
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(TICK_SECONDS):
            b.refresh()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()


@contextlib.contextmanager
def steps(desc: str, names: Sequence[str]) -> Iterator[Callable[[str], None]]:
    """A bar over named steps; call the yielded function with each step's name as it starts."""
    names = list(names)
    # No rate or ETA: the steps take very different times.
    # Every step is drawn (mininterval=0): there are few, and each may take long.
    with (
        bar(
            total=len(names),
            desc=desc,
            leave=False,
            mininterval=0,
            bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| {elapsed}{postfix}",
        ) as b,
        _ticking(b),
    ):
        started: List[str] = []

        def step(name: str) -> None:
            b.set_postfix_str(name, refresh=not started)
            if started:
                b.update(1)
            started.append(name)

        yield step
        if started:
            b.update(1)


@contextlib.contextmanager
def activity(desc: str, echo_notes: bool = False) -> Iterator[Callable[[str], None]]:
    """For a step with no count (a compiler, an emulator): the elapsed time, redrawn while it
    runs, and the latest note (call the yielded function with a line of text). With
    `echo_notes`, notes print as lines on stderr when no bar is drawn (not a terminal),
    unless shown(False) silences everything."""
    with bar(total=None, desc=desc, bar_format="{desc}: {elapsed}{postfix}", leave=False) as b, _ticking(b):

        def note(text: str) -> None:
            lines = text.strip().splitlines()
            if not b.disable:
                b.set_postfix_str(lines[-1] if lines else "")
            elif echo_notes and _SHOWN.get() is not False:
                print(text, file=sys.stderr)

        yield note


def keras_callbacks(desc: str, epochs: int) -> list:
    """Callbacks for Keras fit drawing one bar over the epochs (tqdm.keras.TqdmCallback);
    none when bars are off, so fit never imports what it does not draw."""
    if _disabled():
        return []
    from tqdm.keras import TqdmCallback

    return [TqdmCallback(epochs=epochs, verbose=0, file=sys.stderr, desc=desc, leave=False)]


__all__ = ["shown", "bar", "steps", "activity", "keras_callbacks", "TICK_SECONDS"]
