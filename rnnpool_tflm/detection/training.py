"""Training a zoo face detector: the Python API behind `rnnpool-tflm train-face`.

    result = train_face(TrainSettings(data="synthetic", model="face_m4", epochs=10), "runs/face")
    result.best            # runs/face/best.keras: the detector with the lowest validation loss

One run = one folder:

    settings.json      the TrainSettings (what --resume continues)
    backup/            the full training state (weights, optimizer, epoch and step), every
                       `checkpoint_steps` steps; --resume restores it mid-epoch; removed at the end
    best.keras         the detector (float, or QAT with qat=True) of the epoch with the lowest
    best.json          validation loss, and that epoch and loss
    final.keras        the detector after the last epoch
    history.json/.csv  Keras' history: loss, loc_loss, conf_loss and val_* per epoch
    logs/              TensorBoard scalars per epoch (train/, validation/)
    data.json          what the data reader used and skipped (WIDER FACE: annotation issues,
                       images and faces skipped, dropped, clipped; see wider_data.py)

Data: 'synthetic' (the built-in faces: `train_images` of set `seed`, `val_images` of set
seed + 1, the set `eval-face --data synthetic` scores by default) or 'wider:DIR' (the official
layout: WIDER_train with S3FD augmentation, WIDER_val resized, `val_images` of it; bad
annotations and images are skipped by wider_data's rules, counted and reported).

`batch_size` is the global batch: under tf.distribute (distribute.py) each of R replicas gets
batch_size / R images of every step, and the step is the single-device step (global loss
normalisation, BatchNormalization and QAT ranges over the global batch). With qat=True the detector is wrapped by
quantize.quantize_model and its activation ranges are calibrated on training images before the
first step; `init` starts from a saved detector (usually a float run's best.keras).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import pathlib
import secrets
import shutil
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from ..core import progress
from ..core.errors import RNNPoolError
from ..core.files import atomic_write_text
from ..core.keras import keras
from .dataset import detection_batches, synthetic_source
from .detectors import build_face_detector, detector_priors, face_detector_spec
from .distribute import global_batch_statistics, is_chief, make_strategy
from .face_evaluation import parse_data
from .trainer import DetectorTrainer

SETTINGS_FILE = "settings.json"
BACKUP_DIR = "backup"
CALIBRATION_IMAGES = 64


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    data: str = "synthetic"  # 'synthetic' or 'wider:DIR'
    model: str = "face_m4"  # a zoo face detector (detectors.FACE_DETECTORS)
    epochs: int = 10
    batch_size: int = 32  # global, split between the replicas
    learning_rate: float = 1e-3  # Adam, cosine decay to 5 % over the run
    qat: bool = False
    init: Optional[str] = None  # a saved detector to start from
    input_size: Optional[Tuple[int, int]] = None  # (rows, cols); default the detector's own
    train_images: int = 2048  # synthetic: the training set size
    val_images: int = 256  # synthetic: the validation set; WIDER: first N of val (0: all)
    checkpoint_steps: int = 200
    seed: int = 0
    shuffle_and_flip: bool = True  # synthetic: a new order and random flips every epoch
    bn_momentum: Optional[float] = 0.9  # BatchNormalization moving averages (PyTorch's 0.1, as EdgeML);
    # None keeps the model's (Keras: 0.99, too slow for short runs)

    def __post_init__(self):
        parse_data(self.data)
        face_detector_spec(self.model)
        for name in ("epochs", "batch_size", "train_images", "checkpoint_steps"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise RNNPoolError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.val_images, (int, np.integer)) or self.val_images < 0:
            raise RNNPoolError(f"val_images must be a non-negative integer, got {self.val_images!r}")
        if not (
            isinstance(self.learning_rate, (int, float))
            and math.isfinite(self.learning_rate)
            and self.learning_rate > 0
        ):
            raise RNNPoolError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if self.bn_momentum is not None and not 0.0 <= self.bn_momentum < 1.0:
            raise RNNPoolError(f"bn_momentum must be in [0, 1), got {self.bn_momentum!r}")
        if self.input_size is not None:
            size = tuple(self.input_size)
            if len(size) != 2 or any(not isinstance(v, (int, np.integer)) or v < 16 for v in size):
                raise RNNPoolError(f"input_size must be (rows, cols), each at least 16, got {self.input_size!r}")
            object.__setattr__(self, "input_size", tuple(int(v) for v in size))

    def input_shape(self) -> Tuple[int, int, int]:
        spec = face_detector_spec(self.model)
        rows, cols = self.input_size or spec.input_shape[:2]
        return int(rows), int(cols), spec.input_shape[2]

    def as_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> TrainSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise RNNPoolError(f"{SETTINGS_FILE} has unknown settings {sorted(unknown)}")
        d = dict(d)
        if d.get("input_size") is not None:
            d["input_size"] = tuple(d["input_size"])
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    run_dir: pathlib.Path
    detector: object  # the Keras detector after the last epoch
    history: Dict[str, List[float]]  # per epoch, all epochs of the run (resumed ones included)
    best: pathlib.Path
    final: pathlib.Path
    data_report: dict
    replicas: int


# -- data --------------------------------------------------------------------------------------


def _sources(settings: TrainSettings, shape) -> Tuple[tf.data.Dataset, tf.data.Dataset, dict, Optional[int]]:
    """(train source, validation source, data report, training images or None when unknown)."""
    kind, root = parse_data(settings.data)
    if kind == "synthetic":
        train = synthetic_source(settings.train_images, shape, seed=settings.seed)
        val = synthetic_source(max(settings.val_images, 1), shape, seed=settings.seed + 1)
        report = {
            "data": "synthetic",
            "train_images": settings.train_images,
            "train_set": settings.seed,
            "val_images": max(settings.val_images, 1),
            "val_set": settings.seed + 1,
        }
        return train, val, report, settings.train_images
    from .wider_data import read_wider, wider_dataset

    train_index = read_wider(root, "train")
    val_index = read_wider(root, "val", keep_empty=True)
    train = wider_dataset(train_index, shape, augment=True, shuffle=True, seed=settings.seed)
    val = wider_dataset(val_index, shape, augment=False, shuffle=False)
    if settings.val_images:
        val = val.take(settings.val_images)
    report = {
        "data": f"wider:{root}",
        "train": train_index.report.as_dict(),
        "val": val_index.report.as_dict(),
        "train_summary": train_index.report.summary(),
        "val_summary": val_index.report.summary(),
    }
    return train, val, report, len(train_index)


def _distributable(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Multi-worker: each worker takes its share of the elements (the sources are not files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _calibration_images(source: tf.data.Dataset, count: int = CALIBRATION_IMAGES) -> np.ndarray:
    images = []
    for element in source.take(count):
        image = element["image"] if isinstance(element, dict) else element[0]
        image = np.asarray(image)
        images.append(image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32))
    if not images:
        raise RNNPoolError("the training data has no image")
    return np.stack(images)


# -- the detector ------------------------------------------------------------------------------


def _load_or_build(settings: TrainSettings, shape, calibration: Optional[Callable[[], np.ndarray]]):
    from ..quantize.model import calibrate_ranges, is_quantized_model, load_model, quantize_model

    keras.utils.set_random_seed(settings.seed)
    if settings.init:
        path = pathlib.Path(settings.init)
        if not path.exists():
            raise RNNPoolError(f"init model {path} does not exist")
        try:
            detector = load_model(str(path))
        except (OSError, ValueError, ImportError) as exc:
            raise RNNPoolError(f"cannot load the init model {path}: {exc}") from None
        got = tuple(int(d) for d in detector.inputs[0].shape[1:])
        if got != tuple(shape):
            raise RNNPoolError(f"init model {path} takes {got} images, this run {tuple(shape)}")
        if is_quantized_model(detector) and not settings.qat:
            raise RNNPoolError(f"init model {path} is a QAT model; continue it with qat=True (--qat)")
    else:
        detector = build_face_detector(settings.model, shape)
    if settings.bn_momentum is not None:
        for layer in detector.submodules:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = settings.bn_momentum
    if settings.qat and not is_quantized_model(detector):
        detector = quantize_model(detector)
        if calibration is not None:
            calibrate_ranges(detector, calibration())
    return detector


def _build_detector(
    settings: TrainSettings, shape, calibration: Callable[[], np.ndarray], strategy: tf.distribute.Strategy
):
    """The detector to train, its variables in `strategy`'s scope. The weights (QAT ranges
    calibrated) are made on one device and copied in, so that they are the same whatever the strategy:
    a calibration pass run in a MirroredStrategy's cross-replica context gives other ranges."""
    detector = _load_or_build(settings, shape, calibration)
    if strategy is tf.distribute.get_strategy():
        return detector
    weights = detector.get_weights()
    with strategy.scope():
        twin = _load_or_build(settings, shape, None)
        twin.set_weights(weights)
    return twin


def save_detector(model, path) -> pathlib.Path:
    """model.save, atomically (Keras writes by name: save beside the target, then rename)."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")
    try:
        model.save(tmp)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# -- the run's files ---------------------------------------------------------------------------


class RunFiles(keras.callbacks.Callback):
    """After every epoch: history.json/.csv and, when the validation loss improved, best.keras +
    best.json (only the chief writes). The history of a resumed run continues the old one."""

    def __init__(self, run_dir: pathlib.Path, detector, write: bool):
        super().__init__()
        self.run_dir, self.detector, self.write = run_dir, detector, write
        self.history: Dict[str, List[float]] = _read_history(run_dir)
        best = _read_json(run_dir / "best.json")
        self.best_loss = best["val_loss"] if best else math.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if k != "lr"}
        epochs = self.history.setdefault("epoch", [])
        if epoch + 1 in epochs:  # an epoch re-run after a resume replaces its old row
            cut = epochs.index(epoch + 1)
            self.history = {k: v[:cut] for k, v in self.history.items()}
        self.history.setdefault("epoch", []).append(epoch + 1)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if not self.write:
            return
        atomic_write_text(self.run_dir / "history.json", json.dumps(self.history, indent=1) + "\n")
        atomic_write_text(self.run_dir / "history.csv", _as_csv(self.history))
        val_loss = logs.get("val_loss", logs.get("loss"))
        if val_loss is not None and math.isfinite(val_loss) and val_loss < self.best_loss:
            self.best_loss = val_loss
            save_detector(self.detector, self.run_dir / "best.keras")
            atomic_write_text(
                self.run_dir / "best.json",
                json.dumps({"epoch": epoch + 1, "val_loss": val_loss, "logs": logs}, indent=1) + "\n",
            )


class TensorBoardScalars(keras.callbacks.Callback):
    """The epoch losses as TensorBoard scalars (logs/train, logs/validation: epoch_loss, ...), the
    layout of Keras' TensorBoard callback. Written with TensorFlow's own summary op, so training
    does not need the tensorboard package (only viewing the logs does)."""

    def __init__(self, log_dir: pathlib.Path):
        super().__init__()
        from tensorflow.core.framework import summary_pb2

        self.writers = {split: tf.summary.create_file_writer(str(log_dir / split)) for split in ("train", "validation")}
        self.metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        )

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self.writers[split].as_default():
                tf.summary.write(
                    f"epoch_{name}", tf.constant(float(value), tf.float32), step=epoch, metadata=self.metadata
                )
        for writer in self.writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()


def _as_csv(history: Dict[str, List[float]]) -> str:
    buffer = io.StringIO()
    keys = ["epoch"] + sorted(k for k in history if k != "epoch")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(keys)
    for row in zip(*(history[k] for k in keys), strict=True):
        writer.writerow(row)
    return buffer.getvalue()


def _read_json(path: pathlib.Path) -> Optional[dict]:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise RNNPoolError(f"{path} is not valid JSON ({exc}); the run folder is damaged") from None


def _read_history(run_dir: pathlib.Path) -> Dict[str, List[float]]:
    return _read_json(run_dir / "history.json") or {}


def _prepare_run_dir(
    run_dir: pathlib.Path, settings: Optional[TrainSettings], resume: bool, epochs: Optional[int]
) -> TrainSettings:
    """The settings of this run: new ones written to an empty folder, or a stopped run's."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RNNPoolError(f"run folder {run_dir} exists and is not a folder")
    saved_path = run_dir / SETTINGS_FILE
    if not resume:
        if settings is None:
            raise RNNPoolError("give the training settings (or resume=True to continue a run)")
        if saved_path.exists():
            raise RNNPoolError(
                f"{run_dir} already holds a training run; --resume continues it, or choose another folder"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved_path, json.dumps(settings.as_json(), indent=1) + "\n")
        return settings
    saved = _read_json(saved_path)
    if saved is None:
        raise RNNPoolError(f"nothing to resume in {run_dir}: no {SETTINGS_FILE} (start a run there without --resume)")
    stored = TrainSettings.from_json(saved)
    if settings is not None and dataclasses.replace(settings, epochs=stored.epochs) != stored:
        changed = [
            f.name
            for f in dataclasses.fields(stored)
            if f.name != "epochs" and getattr(settings, f.name) != getattr(stored, f.name)
        ]
        raise RNNPoolError(f"--resume continues {run_dir} with its own settings; these differ: {', '.join(changed)}")
    if epochs is not None and epochs != stored.epochs:
        stored = dataclasses.replace(stored, epochs=epochs)
        atomic_write_text(saved_path, json.dumps(stored.as_json(), indent=1) + "\n")
    done = len(_read_history(run_dir).get("epoch", []))
    if (run_dir / "final.keras").exists() and done >= stored.epochs:
        raise RNNPoolError(
            f"{run_dir} finished its {stored.epochs} epochs ({run_dir / 'final.keras'}); to train "
            f"further start a new run with --init {run_dir / 'final.keras'}"
        )
    return stored


# -- the run -----------------------------------------------------------------------------------


def train_face(
    settings: Optional[TrainSettings],
    run_dir,
    *,
    resume: bool = False,
    epochs: Optional[int] = None,
    strategy: str = "auto",
    devices: Optional[Sequence[str]] = None,
    tensorboard: bool = True,
    callbacks: Sequence = (),
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Trains (or, with resume=True, continues) a face detector into `run_dir` (module docstring).
    `epochs` with resume: a new total for the stopped run. `strategy`/`devices`: distribute.py.
    `callbacks`: more Keras callbacks for the trainer's fit (they see trainer.detector)."""
    run_dir = pathlib.Path(run_dir)
    distribution = make_strategy(strategy, devices)  # first: multi-worker sets up the runtime
    replicas = distribution.num_replicas_in_sync
    chief = is_chief(distribution)
    if settings is not None and settings.batch_size % replicas:
        raise RNNPoolError(
            f"the global batch size {settings.batch_size} does not split between {replicas} "
            f"replicas; choose a multiple of {replicas}"
        )
    if chief:
        settings = _prepare_run_dir(run_dir, settings, resume, epochs)
    elif settings is None:
        settings = TrainSettings.from_json(_read_json(run_dir / SETTINGS_FILE) or {})
    if settings.batch_size % replicas:
        raise RNNPoolError(f"the global batch size {settings.batch_size} does not split between {replicas} replicas")
    shape = settings.input_shape()

    train_source, val_source, data_report, train_count = _sources(settings, shape)
    if chief:
        atomic_write_text(run_dir / "data.json", json.dumps(data_report, indent=1) + "\n")
    for key in ("train_summary", "val_summary"):
        if key in data_report:
            log(f"{key.split('_')[0]}: " + data_report[key].replace("\n", "\n  "))
    if train_count is not None and train_count < settings.batch_size:
        raise RNNPoolError(f"{train_count} training images make no full batch of {settings.batch_size}")

    detector = _build_detector(settings, shape, lambda: _calibration_images(train_source), distribution)
    with distribution.scope():
        layout, priors = detector_priors(detector)
        trainer = DetectorTrainer(detector, layout)
        steps = (train_count // settings.batch_size) if train_count else None
        rate = settings.learning_rate
        if steps:
            rate = keras.optimizers.schedules.CosineDecay(rate, steps * settings.epochs, alpha=0.05)
        trainer.compile(keras.optimizers.Adam(rate))
        trainer(tf.zeros((1, *shape)), training=False)  # built: BackupAndRestore restores into it

    channels = shape[2]
    synthetic = parse_data(settings.data)[0] == "synthetic"
    mix = synthetic and settings.shuffle_and_flip  # WIDER: its own augmentation (face_augment.py)
    train = detection_batches(
        train_source,
        priors,
        settings.batch_size,
        channels=channels,
        shuffle=train_count if mix else 0,
        flip=mix,
        seed=settings.seed,
    )
    val = detection_batches(val_source, priors, settings.batch_size, channels=channels, drop_remainder=False)

    # Every worker names the same folder: Keras writes the chief's state there (other workers write
    # temporary copies beside it) and restores every worker from it.
    backup = run_dir / BACKUP_DIR
    extra = list(callbacks)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup), save_freq=settings.checkpoint_steps, delete_checkpoint=True),
        RunFiles(run_dir, detector, write=chief),
    ]
    if tensorboard and chief:
        callbacks.append(TensorBoardScalars(run_dir / "logs"))
    callbacks += extra + progress.keras_callbacks("train-face" + (" (QAT)" if settings.qat else ""), settings.epochs)

    log(
        f"training {settings.model}{' (QAT)' if settings.qat else ''} at {shape[1]}x{shape[0]}x{shape[2]} on "
        f"{replicas} replica(s), global batch {settings.batch_size}, {settings.epochs} epoch(s) -> {run_dir}"
    )
    with global_batch_statistics(detector, distribution):
        trainer.fit(
            _distributable(train),
            validation_data=_distributable(val),
            epochs=settings.epochs,
            callbacks=callbacks,
            verbose=0,
        )
    files: RunFiles = callbacks[1]
    final = run_dir / "final.keras"
    if chief:
        save_detector(detector, final)
        shutil.rmtree(backup, ignore_errors=True)  # BackupAndRestore empties it; the run is complete
        if not (run_dir / "best.keras").exists():  # no finite validation loss: the last state is the best known
            shutil.copyfile(final, run_dir / "best.keras")
    return TrainResult(run_dir, detector, files.history, run_dir / "best.keras", final, data_report, replicas)


__all__ = [
    "TrainSettings",
    "TrainResult",
    "train_face",
    "save_detector",
    "RunFiles",
    "TensorBoardScalars",
    "SETTINGS_FILE",
    "BACKUP_DIR",
]
