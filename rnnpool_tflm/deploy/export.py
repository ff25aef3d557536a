"""`rnnpool-tflm export`: a model's firmware sources, if the model fits the board.

Picks the test input and runs the model on the host for the expected output
(deploy/host_run.py), asks the one fit verdict (deploy/fit.py: the arena measured on the
emulated Cortex-M4 and the firmware built for the board when TFLM_DIR is set, estimates
otherwise; the same verdict `check --board` gives), and writes the generated sources
(deploy/sources.py) into DIR/generated/ as one set: they are written into a sibling
folder that then replaces the old one, so an interruption or a failure leaves the
previous set whole.
"""

from __future__ import annotations

import pathlib
from typing import Optional, Tuple

from ..core import boards
from ..core.files import replaced_directory, require_file, require_output_dir
from . import fit as fitting
from .host_run import prepare
from .sources import GENERATED_FILES, Generated, write_sources

GENERATED = "generated"


def export_model(
    model_path: pathlib.Path,
    firmware_dir: pathlib.Path,
    input_path: Optional[pathlib.Path] = None,
    board: str = "nucleo_f446re",
    detector=None,
) -> Tuple[Generated, fitting.Fit]:
    """The `export` command: refuses a model that does not fit `board`, else writes the sources.
    `detector` (a runtime.detection_native.DetectorSetup): the firmware also post-processes the
    outputs into boxes and prints them (docs/detection.md); the fit counts its buffers."""
    model_path = require_file(model_path, "model file")
    if input_path is not None:
        require_file(input_path, "input file")
    target = boards.get_board(board)
    out_dir = require_output_dir(pathlib.Path(firmware_dir) / GENERATED, "firmware folder")
    model = model_path.read_bytes()
    info, inputs, expected = prepare(model, input_path, name=str(model_path))
    fit = fitting.assess(
        model,
        target,
        model_path=model_path,
        input_path=input_path,
        host_run=lambda *_: list(expected),
        detector=detector,
    )
    fitting.refuse_unless_fits(fit)
    manifest = {
        "arena_figure_bytes": fit.arena.bytes,
        "arena_figure_source": fit.arena.label,
        "fit": fit.as_dict(),
        "fit_judged_on": "built firmware" if fit.firmware.built else "estimated firmware",
    }
    if fit.arena.output_matches_host is not None:
        manifest["emulated_output_matches_host"] = fit.arena.output_matches_host
    # The other files of the folder (its README) are kept; the generated ones go as one set.
    with replaced_directory(out_dir, keep=lambda name: name not in GENERATED_FILES) as staging:
        generated = write_sources(
            staging, model, info, inputs, expected, fit.arena_bytes, model_path.stem, target.name, manifest, detector
        )
    return generated.moved_to(out_dir), fit
