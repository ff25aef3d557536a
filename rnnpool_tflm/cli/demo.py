"""The pipeline behind `rnnpool-tflm demo`: built-in data -> float training -> QAT ->
int8 .tflite with the RNNPool custom op -> check (parity, arena, board) -> firmware
files -> emulated Cortex-M4 run (when TFLM sources are available) -> memory plot,
report.json and a summary table. One function per stage; each returns the part of
the report it owns.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from typing import Callable, Dict

import numpy as np

from .. import __version__
from ..core import progress
from ..core.errors import RNNPoolError
from ..core.files import atomic_write_bytes
from .demo_report import format_rows, write_report

BOARD = "nucleo_f446re"
CLASSES = 4


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    image_size: int = 64
    train_images: int = 4096
    val_images: int = 1024
    float_epochs: int = 8
    qat_epochs: int = 2
    seed: int = 0


QUICK = DemoSettings(train_images=2048, val_images=512, float_epochs=3, qat_epochs=1)


# -- models --------------------------------------------------------------------------------------


def demo_model(size: int, seed: int = 0):
    """The demo classifier: Conv2D 3x3 stride 2 -> RNNPool(patch 8, stride 4, h1 = h2 = 16)
    -> two MobileNetV2 inverted residuals -> global average pooling -> Dense."""
    from ..analysis.zoo import inverted_residual
    from ..core.keras import keras
    from ..layer.rnnpool import RNNPool

    L = keras.layers
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 1), name="image")
    x = L.ReLU(name="stem_relu")(L.Conv2D(8, 3, strides=2, padding="same", name="stem")(inputs))
    x = RNNPool(8, 4, (16, 16), name="rnnpool")(x)
    x = inverted_residual(x, 2, 64, 1, "block1")
    x = inverted_residual(x, 2, 64, 1, "block2")
    outputs = L.Dense(CLASSES, name="logits")(L.GlobalAveragePooling2D(name="gap")(x))
    model = keras.Model(inputs, outputs, name="demo_rnnpool")
    # A short run has a few hundred steps: with Keras' default momentum (0.99) the BN moving
    # statistics would still lag the weights at the end, and validation would be poor.
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.momentum = 0.9
    return model


def demo_baseline(size: int):
    """What the RNNPool replaces, for the memory plot: MobileNetV2-style inverted residuals
    (t = 6) that downsample the stem's map by 4 in two stride-2 steps."""
    from ..analysis.zoo import inverted_residual
    from ..core.keras import keras

    L = keras.layers
    inputs = keras.Input((size, size, 1), name="image")
    x = L.ReLU(name="stem_relu")(L.Conv2D(8, 3, strides=2, padding="same", name="stem")(inputs))
    x = inverted_residual(x, 6, 16, 2, "down1")
    x = inverted_residual(x, 6, 64, 2, "down2")
    x = inverted_residual(x, 2, 64, 1, "block1")
    x = inverted_residual(x, 2, 64, 1, "block2")
    outputs = L.Dense(CLASSES, name="logits")(L.GlobalAveragePooling2D(name="gap")(x))
    return keras.Model(inputs, outputs, name="demo_strided_baseline")


# -- stages --------------------------------------------------------------------------------------


def _compile(model, learning_rate: float):
    from ..core.keras import keras

    model.compile(
        keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    )
    return model


def _save_keras(model, path: pathlib.Path) -> None:
    """Keras writes by name; save next to the target and rename, so a failure keeps the old file."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def make_data(settings: DemoSettings):
    from ..analysis.datasets import line_orientation

    x, y = line_orientation(settings.train_images, size=settings.image_size, seed=settings.seed)
    xv, yv = line_orientation(settings.val_images, size=settings.image_size, seed=settings.seed + 1)
    return x, y, xv, yv


def train_float(out: pathlib.Path, settings: DemoSettings, data):
    x, y, xv, yv = data
    model = _compile(demo_model(settings.image_size, settings.seed), 1e-2)
    start = time.perf_counter()
    model.fit(
        x,
        y,
        epochs=settings.float_epochs,
        batch_size=64,
        verbose=0,
        callbacks=progress.keras_callbacks("train (float)", settings.float_epochs),
    )
    accuracy = float(model.evaluate(xv, yv, verbose=0, batch_size=256)[1])
    _save_keras(model, out / "float_model.keras")
    return model, {
        "model": "float_model.keras",
        "val_accuracy": accuracy,
        "epochs": settings.float_epochs,
        "train_images": settings.train_images,
        "seconds": round(time.perf_counter() - start, 1),
    }


def train_qat(out: pathlib.Path, settings: DemoSettings, data, float_model):
    from ..quantize import model as quantize

    x, y, xv, yv = data
    start = time.perf_counter()
    qat = quantize.quantize_model(float_model)
    quantize.calibrate_ranges(qat, x)
    _compile(qat, 1e-3)
    qat.fit(
        x,
        y,
        epochs=settings.qat_epochs,
        batch_size=64,
        verbose=0,
        callbacks=progress.keras_callbacks("train (QAT)", settings.qat_epochs),
    )
    accuracy = float(qat.evaluate(xv, yv, verbose=0, batch_size=256)[1])
    _save_keras(qat, out / "qat_model.keras")
    return qat, {
        "model": "qat_model.keras",
        "val_accuracy": accuracy,
        "epochs": settings.qat_epochs,
        "seconds": round(time.perf_counter() - start, 1),
    }


def convert_stage(out: pathlib.Path, qat):
    from ..convert.keras_converter import convert_model

    result = convert_model(qat)
    path = atomic_write_bytes(out / "model.tflite", result.tflite)
    s = result.summary
    return path, {
        "model": path.name,
        "model_bytes": s.model_bytes,
        "operators": s.ops,
        "rnnpool_ops": s.rnnpool_ops,
        "parameters": s.parameters,
        "fused_blocks": len(result.fusion.fused) if result.fusion else 0,
        "offline_memory_plan": result.memory_plan is not None,
    }


def low_ram_stage(out: pathlib.Path, qat, tflite: bytes, data) -> Dict:
    """Before/after of the low-RAM conversion: the plain graph as stock TFLM plans it
    (`--no-fuse --memory-plan greedy`) against the default conversion (fused blocks, padding in
    RNNPool, offline memory plan): Cortex-M4 arena estimates and the outputs' SHA-256 on the
    same validation image (equal: byte-identical outputs)."""
    from ..arena import estimate_arena
    from ..convert.keras_converter import convert_model
    from ..deploy.host_run import coerce_input, host_outputs
    from ..runtime.host import output_sha256
    from ..tflite.model_info import read_model_info

    plain = convert_model(qat, fuse=False, memory_plan="greedy").tflite
    plain_path = atomic_write_bytes(out / "model_no_fuse.tflite", plain)
    image = data[2][:1]  # the models take one image (batch 1)

    def figures(model: bytes) -> Dict:
        info = read_model_info(model)
        estimate = estimate_arena(model, "cortex-m4")
        x = coerce_input(image, info.inputs[0], "the validation image")
        return {
            "arena_estimate_bytes": max(estimate.total_bytes, estimate.min_arena_bytes),
            "output_sha256": output_sha256(host_outputs(model, [x], info)),
        }

    before, after = figures(plain), figures(tflite)
    return {
        "plain_model": plain_path.name,
        "plain": before,
        "default": after,
        "outputs_identical": before["output_sha256"] == after["output_sha256"],
    }


def check_stage(tflite_path: pathlib.Path, qat, data):
    from ..check.checker import check_model

    _, _, xv, yv = data
    with progress.activity("check"):  # the arena may be measured on the emulated Cortex-M4
        report = check_model(tflite_path, keras_model=qat, data=([xv], yv), board=BOARD)
    return report, report.as_json()


def export_stage(out: pathlib.Path, tflite_path: pathlib.Path, data):
    from ..deploy.export import export_model

    input_path = out / "test_input.npy"
    buffer = _npy_bytes(data[2][:1])
    atomic_write_bytes(input_path, buffer)
    with progress.activity("export"):  # may build the firmware for the board
        generated, verdict = export_model(tflite_path, out / "firmware", input_path, BOARD)
    m = generated.manifest
    return {
        "directory": str(generated.directory.relative_to(out)),
        "files": [f.name for f in generated.files],
        "board": verdict.board,
        "fits": verdict.fits,
        "arena_bytes_with_margin": m["arena_bytes"],
        "arena_figure_source": m["arena_figure_source"],
    }


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def emulate_stage(out: pathlib.Path, tflite_path: pathlib.Path) -> Dict:
    """The firmware on the emulated STM32F405 (mps2-an386 if it does not fit), or why not."""
    from ..deploy.fit import can_build_firmware

    if not can_build_firmware():
        return {"ran": False, "reason": "needs TFLM sources (TFLM_DIR), arm-none-eabi-gcc and qemu-system-arm"}
    from ..deploy.emulate import measure_arena

    with progress.activity("emulate", echo_notes=True) as note:
        emulation = measure_arena(tflite_path, out / "test_input.npy", log=note)
    return {"ran": True, **emulation.as_dict()}


def memory_stage(out: pathlib.Path, settings: DemoSettings, float_model, tflite: bytes):
    """Paper-convention peak and TFLM arena of the demo model and of its strided baseline, plotted."""
    from ..analysis.profile import LoadedModel, plot_memory, profile
    from ..core import boards

    # The memory plot needs the estimates only (check and export measured the model already).
    ours = profile(LoadedModel("RNNPool model", keras_model=float_model), board=BOARD, tflite=tflite, measure=False)
    base = profile(
        LoadedModel("strided-conv baseline", keras_model=demo_baseline(settings.image_size)), board=BOARD, measure=False
    )
    plot = plot_memory([ours, base], out / "memory.png", boards.get_board(BOARD))

    def summary(p):
        arena = p.tflm.report.estimate.total_bytes if p.tflm.available else None
        return {
            "paper_convention_peak_bytes": p.analysis.peak_bytes,
            "tflm_arena_estimate_bytes": arena,
            "params": p.analysis.total_params,
            "macs": p.analysis.total_macs,
        }

    return {"plot": plot.name, "rnnpool_model": summary(ours), "baseline": summary(base)}


# -- the pipeline --------------------------------------------------------------------------------


def summary_table(report: Dict) -> str:
    c, t, q = report["check"], report["train"], report["qat"]
    mem = report["memory"]
    emu = report["emulate"]
    rows = [
        ("float accuracy (val)", f"{t['val_accuracy']:.2%}"),
        ("QAT accuracy (val)", f"{q['val_accuracy']:.2%}"),
        ("int8 accuracy (val)", f"{c['tflite_accuracy']:.2%}" if c.get("tflite_accuracy") is not None else "-"),
        ("top-1 agreement int8 vs QAT", f"{c['top1_agreement']:.2%}"),
        ("max abs error", f"{c['max_abs_err_lsb']} LSB"),
        ("RNNPool op vs golden reference", "bit-exact" if c["rnnpool_bitexact"] else "MISMATCH"),
        ("model (flash)", f"{c['model_bytes']:,} B"),
        (f"tensor arena, Cortex-M4 ({c['arena_label']})", f"{c['arena_bytes']:,} B"),
        (f"fits {c['board']}", "yes" if c["fits"] else "NO"),
        (
            "arena estimate: plain graph -> fused + offline plan",
            f"{report['low_ram']['plain']['arena_estimate_bytes']:,} B -> "
            f"{report['low_ram']['default']['arena_estimate_bytes']:,} B "
            f"(outputs {'identical' if report['low_ram']['outputs_identical'] else 'DIFFERENT'})",
        ),
        (
            "paper-convention peak RAM: RNNPool / baseline",
            f"{mem['rnnpool_model']['paper_convention_peak_bytes']:,} B / "
            f"{mem['baseline']['paper_convention_peak_bytes']:,} B",
        ),
        (
            "emulated Cortex-M4 output = host",
            ("yes" if emu["output_matches_host"] else "NO") if emu["ran"] else f"skipped ({emu['reason']})",
        ),
    ]
    if emu["ran"]:
        rows.append(("emulated Cortex-M4 instructions per inference", f"{emu['instructions']:,}"))
    return format_rows(rows)


def run_demo(out_dir: str = "demo_out", quick: bool = False, seed: int = 0, log: Callable[[str], None] = print) -> Dict:
    """Runs every stage, writes OUT/report.json (also when a stage fails: with the error), and
    returns the report. Raises RNNPoolError when the check fails."""
    settings = dataclasses.replace(QUICK if quick else DemoSettings(), seed=seed)
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RNNPoolError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    report: Dict = {"version": __version__, "quick": quick, "settings": dataclasses.asdict(settings), "board": BOARD}
    start = time.perf_counter()

    def save() -> None:
        report["seconds"] = round(time.perf_counter() - start, 1)
        write_report(out, report)

    try:
        log(
            f"data: {settings.train_images} + {settings.val_images} line-orientation images "
            f"{settings.image_size}x{settings.image_size}, {CLASSES} classes"
        )
        data = make_data(settings)
        float_model, report["train"] = train_float(out, settings, data)
        log(f"float model: val accuracy {report['train']['val_accuracy']:.2%}")
        qat, report["qat"] = train_qat(out, settings, data, float_model)
        log(f"QAT model: val accuracy {report['qat']['val_accuracy']:.2%}")
        tflite_path, report["convert"] = convert_stage(out, qat)
        log(
            f"converted: {tflite_path} ({report['convert']['model_bytes']:,} B, "
            f"{report['convert']['rnnpool_ops']} RNNPool custom op)"
        )
        report["low_ram"] = low_ram_stage(out, qat, tflite_path.read_bytes(), data)
        low = report["low_ram"]
        log(
            f"low-RAM conversion: arena {low['plain']['arena_estimate_bytes']:,} B (plain graph) -> "
            f"{low['default']['arena_estimate_bytes']:,} B, outputs "
            f"{'identical' if low['outputs_identical'] else 'DIFFERENT'}"
        )
        log("checking on the host (tflite-micro interpreter + the custom ops' kernels) ...")
        check, report["check"] = check_stage(tflite_path, qat, data)
        if check.ok:
            log("exporting the firmware files ...")
            report["export"] = export_stage(out, tflite_path, data)
        else:
            report["export"] = {"skipped": "the check failed"}
        report["emulate"] = emulate_stage(out, tflite_path) if check.ok else {"ran": False, "reason": "check failed"}
        log("profiling memory ...")
        report["memory"] = memory_stage(out, settings, float_model, tflite_path.read_bytes())
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        save()
        raise
    report["passed"] = (
        check.ok
        and report["low_ram"]["outputs_identical"]
        and report["emulate"].get("output_matches_host", True) is not False
    )
    save()
    log("")
    log(summary_table(report))
    log("")
    log(
        f"report: {out / 'report.json'}; memory plot: {out / report['memory']['plot']}; "
        f"firmware files: {out / report['export']['directory']}"
        if check.ok
        else f"report: {out / 'report.json'}"
    )
    if not check.ok:
        raise RNNPoolError("the check failed: " + "; ".join(check.failures))
    if not report["low_ram"]["outputs_identical"]:
        raise RNNPoolError("the fused, offline-planned model's outputs differ from the plain graph's")
    if not report["passed"]:
        raise RNNPoolError("the emulated Cortex-M4 output differs from the host's")
    return report


__all__ = ["run_demo", "demo_model", "demo_baseline", "DemoSettings", "QUICK", "summary_table"]
