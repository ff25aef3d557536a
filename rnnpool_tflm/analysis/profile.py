"""What `rnnpool-tflm profile` reports: per layer the Keras-side figures (output shape,
parameters, MACs, activation bytes, the paper-convention memory of its unit) and per
TFLite operator the TFLM arena (tensors alive, high-water mark), totals, and a plot.

Two outside pieces plug in, each through one small function here:
* `tflite_for(model)`: the int8 flatbuffer, from `rnnpool_tflm.convert.convert`;
* `arena_for(model_bytes, target)`: the per-operator arena plan, from
  `rnnpool_tflm.arena.arena_report`.
When one is missing or fails, that part of the profile says so (never a made-up figure).
"""

from __future__ import annotations

import dataclasses
import io
import os
import pathlib
from typing import Callable, Optional, Sequence, Tuple

from ..core.errors import RNNPoolError
from ..core.files import atomic_write_bytes
from .counts import KIB, ModelAnalysis, format_paper_bytes

ZOO_PREFIX = "zoo:"


@dataclasses.dataclass
class LoadedModel:
    label: str
    keras_model: object = None  # a Keras model, when MODEL is one
    tflite: Optional[bytes] = None  # the flatbuffer, when MODEL is a .tflite


@dataclasses.dataclass
class TflmPart:
    """The TFLM side of a profile: the arena report, or why there is none."""

    available: bool
    note: str = ""
    target: str = ""
    report: object = None  # rnnpool_tflm.arena.ArenaReport
    model_bytes: Optional[int] = None
    verdict: object = None  # rnnpool_tflm.deploy.fit.Fit: the board verdict check/export give

    def as_dict(self) -> dict:
        if not self.available:
            return {"available": False, "note": self.note}
        e = self.report.estimate
        return {
            "available": True,
            "note": self.note,
            "target": self.target,
            "model_bytes": self.model_bytes,
            "arena_bytes": e.total_bytes,
            "arena_label": e.label,
            "arena_certain": e.certain,
            "head_bytes": e.head_bytes,
            "tail_bytes": e.tail_bytes,
            "peak_op": self.report.peak_op,
            "greedy_arena_bytes": e.greedy_total_bytes,
            "ops": [
                {
                    "index": op.index,
                    "op": op.op,
                    "live_bytes": op.live_bytes,
                    "high_water_bytes": op.high_water_bytes,
                    "greedy_high_water_bytes": op.greedy_high_water_bytes,
                    "arena_high_water_bytes": op.arena_high_water_bytes,
                    "live": [{"kind": b.kind, "name": b.name, "bytes": b.size} for b in op.live],
                }
                for op in self.report.ops
            ],
            "notes": list(e.notes),
            "verdict": self.verdict.as_dict() if self.verdict is not None else None,
        }


@dataclasses.dataclass
class Profile:
    label: str
    analysis: Optional[ModelAnalysis]
    analysis_note: str
    tflm: TflmPart
    board: Optional[object] = None  # rnnpool_tflm.core.boards.Board

    def as_dict(self) -> dict:
        board = None
        if self.board is not None:
            board = {
                "name": self.board.name,
                "arena_block_bytes": self.board.arena_block.size,
                "flash_bytes": self.board.flash_bytes,
            }
            if self.analysis is not None:
                board["paper_peak_fits"] = self.analysis.peak_bytes <= self.board.arena_block.size
        return {
            "model": self.label,
            "keras": self.analysis.as_dict() if self.analysis is not None else None,
            "keras_note": self.analysis_note,
            "tflm": self.tflm.as_dict(),
            "board": board,
        }


# -- loading ------------------------------------------------------------------------------------

ZOO_SEED = 0  # zoo models get random weights drawn with this seed: every command builds the same model


def load(spec: str) -> LoadedModel:
    """MODEL as the commands take it: `zoo:NAME` (a float zoo model, random weights drawn with
    ZOO_SEED), a .keras/.h5 file or SavedModel folder, or a .tflite."""
    spec = str(spec)
    if spec.startswith(ZOO_PREFIX):
        from ..core.keras import keras
        from .zoo import build_zoo_model

        name = spec[len(ZOO_PREFIX) :]
        keras.utils.set_random_seed(ZOO_SEED)
        return LoadedModel(f"{ZOO_PREFIX}{name}", keras_model=build_zoo_model(name))
    path = pathlib.Path(spec)
    if not path.exists():
        raise RNNPoolError(
            f"model {spec!r} not found (give a .keras/.h5 file, a SavedModel folder, a .tflite, "
            f"or {ZOO_PREFIX}NAME for a zoo model)"
        )
    if path.suffix.lower() == ".tflite":
        data = path.read_bytes()
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise RNNPoolError(f"{spec} is not a TFLite flatbuffer (no TFL3 identifier)")
        return LoadedModel(path.name, tflite=data)
    if not (path.is_dir() or path.suffix.lower() in (".keras", ".h5", ".hdf5")):
        raise RNNPoolError(f"{spec}: expected a .keras/.h5 file, a SavedModel folder or a .tflite")
    from ..quantize.model import load_model
    from . import zoo as models  # noqa: F401  (registers the zoo's L2Norm layer for deserialization)

    try:
        return LoadedModel(path.name, keras_model=load_model(str(path)))
    except (OSError, ValueError, RNNPoolError):
        raise
    except Exception as exc:  # a corrupt file makes Keras raise many kinds of errors
        raise RNNPoolError(f"cannot load {spec} as a Keras model: {exc}") from None


# -- the two plug-in points -------------------------------------------------------------------


def _calibration_data(keras_model, samples: int = 4) -> list:
    """Random inputs in [0, 1): enough to place every tensor for the memory plan, whose
    sizes do not depend on the quantization ranges."""
    import numpy as np

    rng = np.random.default_rng(0)
    return [
        rng.random((samples,) + tuple(int(d) for d in shape[1:]), dtype=np.float32)
        for shape in (tuple(t.shape) for t in keras_model.inputs)
    ]


def tflite_for(keras_model) -> Tuple[Optional[bytes], str]:
    """The model's int8 .tflite from the project's converter (rnnpool_tflm.convert; a model without
    RNNPool converts to builtin ops only), or (None, why not). A float model is calibrated on random
    data: the memory plan does not depend on the ranges, the numerics would be meaningless."""
    from ..quantize.model import is_quantized_model

    qat = is_quantized_model(keras_model)
    note = "" if qat else "float model converted with random calibration data"
    try:
        try:
            from ..convert import keras_converter as convert_module
        except ImportError as exc:
            if getattr(exc, "name", None) not in (None, "rnnpool_tflm.convert"):
                return None, f"rnnpool_tflm.convert cannot be imported: {exc}"
            return None, (
                "rnnpool_tflm.convert is not available in this installation, so the model cannot be "
                "converted here; pass --tflite FILE (from `rnnpool-tflm convert`)"
            )
        convert = getattr(convert_module, "convert", None)
        if not callable(convert):
            return None, "rnnpool_tflm.convert has no convert(model, representative_data) function"
        data = None if qat else _calibration_data(keras_model)
        return bytes(convert(keras_model, representative_data=data)), note
    except Exception as exc:  # the converter's own message says what it could not handle
        return None, f"conversion failed: {exc}"


def arena_for(model_bytes: bytes, target: str):
    """The per-operator TFLM arena plan, or (None, why not)."""
    try:
        from ..arena import arena_report
    except ImportError:
        return None, "rnnpool_tflm.arena is not available in this installation"
    try:
        return arena_report(model_bytes, target), ""
    except Exception as exc:
        return None, f"arena analysis failed: {exc}"


# -- the profile -------------------------------------------------------------------------------


def profile(
    loaded: LoadedModel,
    board: Optional[str] = None,
    bytes_per_element: int = 1,
    resident_input: bool = False,
    tflite: Optional[bytes] = None,
    target: str = "cortex-m4",
    with_tflm: bool = True,
    measure: Optional[bool] = None,
    detector_for: Optional[Callable[[bytes], object]] = None,
) -> Profile:
    """The profile of a model. With a board, the fit is deploy/fit.py's verdict (the one
    `check --board` and `export` give: the Cortex-M4 arena, measured when `measure`,
    default when TFLM_DIR, the toolchain and QEMU are there; plus margin and firmware).
    `detector_for(tflite)`: the detector post-processing the firmware holds for the
    converted model, or None (the CLI passes detection.on_device's rule, as export uses it)."""
    from ..core import boards
    from .counts import analyze

    board_obj = boards.get_board(board) if board else None
    analysis, note = None, ""
    if loaded.keras_model is not None:
        analysis = analyze(loaded.keras_model, bytes_per_element, resident_input)
    else:
        note = "MODEL is a .tflite: the per-layer Keras figures and the paper-convention peak need the Keras model"

    flatbuffer = tflite if tflite is not None else loaded.tflite
    if not with_tflm:
        tflm = TflmPart(False, "TFLM part skipped (--no-tflm)")
    else:
        why = convert_note = ""
        if flatbuffer is None:
            flatbuffer, why = tflite_for(loaded.keras_model)
            convert_note = why if flatbuffer is not None else ""
        if flatbuffer is None:
            tflm = TflmPart(False, why)
        else:
            report, why = arena_for(flatbuffer, target)
            if report is None:
                tflm = TflmPart(False, why)
            else:
                verdict, fit_note = None, ""
                if board_obj is not None:
                    from ..deploy.fit import assess

                    try:
                        detector = detector_for(flatbuffer) if detector_for is not None else None
                        verdict = assess(flatbuffer, board_obj, measure=measure, detector=detector)
                    except RNNPoolError as exc:
                        fit_note = f"; no board verdict: {exc}"
                label = report.estimate.label
                arena_note = f"arena figures are the toolkit's {label} for {target} (docs/arena.md){fit_note}"
                tflm = TflmPart(
                    True,
                    arena_note + (f"; {convert_note}" if convert_note else ""),
                    target,
                    report,
                    len(flatbuffer),
                    verdict,
                )
    return Profile(loaded.label, analysis, note, tflm, board_obj)


# -- text ----------------------------------------------------------------------------------------


def _shape(shapes) -> str:
    return ", ".join("x".join(str(d) for d in s) for s in shapes)


def _short_tensor_name(name: str) -> str:
    """'model_builtin_part/block1_dw/depthwise;...' -> 'block1_dw/depthwise' (the converter's
    fused names repeat the model scope and list every fused op)."""
    name = name.split(";")[0]
    parts = name.split("/")
    return "/".join(parts[1:]) if len(parts) > 2 else name


def format_profile(p: Profile, max_live: int = 6) -> str:
    out = io.StringIO()
    w = lambda line="": out.write(line + "\n")  # noqa: E731
    w(f"profile of {p.label}")
    a = p.analysis
    if a is None:
        w(f"  Keras layers: unavailable ({p.analysis_note})")
    else:
        peak = a.peak_unit
        w(
            f"  Keras layers ({a.bytes_per_element} byte(s) per activation element"
            f"{', input image resident' if a.resident_input else ''}); 'unit' is the paper's appendix E.2 step "
            "holding the layer, '*' marks the peak"
        )
        w(
            f"  {'#':>3} {'layer':<34} {'type':<22} {'output':<16} {'params':>9} {'MACs':>13} "
            f"{'act bytes':>10} {'unit':>4} {'unit bytes':>11}"
        )
        for layer, mem in zip(a.layers, a.layer_memory_bytes()):
            mark = "*" if peak is not None and layer.unit == peak.index else " "
            unit = "" if layer.unit is None else str(layer.unit)
            w(
                f"  {layer.index:>3} {layer.name[:34]:<34} {layer.kind[:22]:<22} {_shape(layer.output_shapes)[:16]:<16} "
                f"{layer.params:>9,} {layer.macs:>13,} {layer.output_elements * a.bytes_per_element:>10,} "
                f"{unit:>4} {mem:>11,}{mark}"
            )
        w(f"  total: {a.total_params:,} parameters, {a.total_macs:,} MACs ({a.total_macs / 1e6:.2f} M)")
        if peak is not None:
            w(
                f"  peak RAM, paper convention (E.2): {a.peak_bytes:,} B = {format_paper_bytes(a.peak_bytes)} "
                f"at unit {peak.index} ({peak.kind}: {peak.name})"
            )
    t = p.tflm
    if not t.available:
        w(f"  TFLM arena: unavailable ({t.note})")
    else:
        e = t.report.estimate
        planned = e.greedy_total_bytes is not None  # offline plan: TFLM's greedy plan side by side
        w(f"  TFLM arena per operator: live = planned tensors + scratch alive at the op ({t.note})")
        greedy_head = f" {'greedy plan':>11}" if planned else ""
        w(f"  {'#':>3} {'op':<22} {'live bytes':>11} {'high-water':>11}{greedy_head}  tensors alive")
        for op in t.report.ops:
            mark = " <- peak" if op.index == t.report.peak_op else ""
            names = ", ".join(f"{_short_tensor_name(b.name)}({b.size:,})" for b in op.live[:max_live])
            more = f", +{len(op.live) - max_live} more" if len(op.live) > max_live else ""
            greedy = f" {op.greedy_high_water_bytes:>11,}" if planned else ""
            w(
                f"  {op.index:>3} {op.op[:22]:<22} {op.live_bytes:>11,} {op.high_water_bytes:>11,}{greedy}  "
                f"{names}{more}{mark}"
            )
        w(
            f"  TFLM arena: {e.total_bytes:,} B = {e.total_bytes / KIB:.1f} KiB (planned tensors {e.head_bytes:,} + "
            f"persistent {e.tail_bytes:,}); model {t.model_bytes:,} B"
            f"{'' if e.certain else '; uncertain parts: see notes'}"
        )
        if planned:
            w(
                f"  offline memory plan (convert --memory-plan offline); TFLM's greedy plan would need "
                f"{e.greedy_total_bytes:,} B"
            )
        for note in e.notes:
            w(f"    note: {note}")
    if a is not None and t.available:
        w(f"  side by side: paper-convention peak {a.peak_bytes:,} B vs TFLM arena {t.report.estimate.total_bytes:,} B")
    if p.board is not None:
        if t.available and t.verdict is not None:
            w(f"  board: {t.verdict.message()}")
        elif a is not None:
            block = p.board.arena_block.size
            w(
                f"  board {p.board.name}: largest RAM block {block:,} B; the paper-convention peak "
                f"{'fits' if a.peak_bytes <= block else 'does NOT fit'} (no TFLM figure to check the real arena)"
            )
    return out.getvalue().rstrip("\n")


# -- plot ----------------------------------------------------------------------------------------


def plot_memory(profiles: Sequence[Profile], path, board=None) -> pathlib.Path:
    """PNG of memory over the layers: the paper-convention unit memory per Keras layer (top) and,
    where available, the TFLM arena high-water mark per operator (bottom); all models on the
    same axes. Written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    keras_side = [p for p in profiles if p.analysis is not None]
    tflm_side = [p for p in profiles if p.tflm.available]
    if not keras_side and not tflm_side:
        raise RNNPoolError("nothing to plot: no Keras layers and no TFLM arena for the model(s)")
    rows = int(bool(keras_side)) + int(bool(tflm_side))
    fig, axes = plt.subplots(rows, 1, figsize=(11, 4.2 * rows), squeeze=False)
    axes = [ax[0] for ax in axes]
    styles = [
        dict(color="tab:blue", lw=2.0),
        dict(color="tab:orange", lw=1.6, ls="--"),
        dict(color="tab:green", lw=1.4, ls=":"),
    ]
    block = board.arena_block.size if board is not None else None
    ax_i = 0
    if keras_side:
        ax = axes[ax_i]
        ax_i += 1
        for p, style in zip(keras_side, styles):
            a = p.analysis
            # The input layer belongs to no unit: left out (NaN) rather than drawn at 0.
            mem = [
                b / KIB if layer.unit is not None else float("nan")
                for b, layer in zip(a.layer_memory_bytes(), a.layers)
            ]
            xs = list(range(len(mem)))
            ax.step(xs, mem, where="mid", label=f"{p.label}: peak {format_paper_bytes(a.peak_bytes)}", **style)
            act = [layer.output_elements * a.bytes_per_element / KIB for layer in a.layers]
            ax.plot(xs, act, color=style["color"], lw=0.8, alpha=0.35)
            peak_x = max((i for i in xs if a.layers[i].unit is not None), key=lambda i: mem[i])
            ax.annotate(
                a.peak_unit.name[:40],
                (peak_x, mem[peak_x]),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=7,
                color=style["color"],
            )
        if block:
            ax.axhline(block / KIB, color="tab:red", lw=1, ls="-.", label=f"{board.name} RAM block")
        bpe = keras_side[0].analysis.bytes_per_element
        ax.set_title(
            f"Memory per layer, paper convention (appendix E.2), {bpe} B/element (thin: the layer's output)",
            fontsize=10,
        )
        ax.set_xlabel("Keras layer index")
        ax.set_ylabel("KiB")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8)
    if tflm_side:
        ax = axes[ax_i]
        for p, style in zip(tflm_side, styles):
            ops = p.tflm.report.ops
            ys = [op.arena_high_water_bytes / KIB for op in ops]
            ax.step(
                range(len(ys)),
                ys,
                where="mid",
                label=f"{p.label}: arena {p.tflm.report.estimate.total_bytes / KIB:.1f} KiB",
                **style,
            )
            ax.plot(range(len(ops)), [op.live_bytes / KIB for op in ops], color=style["color"], lw=0.8, alpha=0.35)
            greedy = p.tflm.report.estimate.greedy_total_bytes
            if greedy is not None:  # an offline-planned model: the same model under TFLM's greedy plan
                tail = p.tflm.report.estimate.tail_bytes
                ax.step(
                    range(len(ops)),
                    [(op.greedy_high_water_bytes + tail) / KIB for op in ops],
                    where="mid",
                    color=style["color"],
                    lw=1,
                    ls=":",
                    label=f"{p.label}: TFLM greedy plan {greedy / KIB:.1f} KiB",
                )
        if block:
            ax.axhline(block / KIB, color="tab:red", lw=1, ls="-.", label=f"{board.name} RAM block")
        ax.set_title(f"TFLM arena in use per operator ({tflm_side[0].tflm.target}; thin: tensors alive)", fontsize=10)
        ax.set_xlabel("TFLite operator index")
        ax.set_ylabel("KiB")
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(os.fspath(path), buf.getvalue())


__all__ = [
    "load",
    "profile",
    "format_profile",
    "plot_memory",
    "tflite_for",
    "arena_for",
    "Profile",
    "TflmPart",
    "LoadedModel",
]
