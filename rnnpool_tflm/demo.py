"""The demo pipeline behind `rnnpool-tflm demo`, one stage per function."""

from __future__ import annotations

import json
import os
import pathlib
import time
from typing import Dict

from . import __version__
from .files import atomic_write_text


def _small_model(keras, seed: int):
    from .layers import RNNPool
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((32, 32, 1), name="image"),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        RNNPool(4, 2, (8, 8), name="rnnpool"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4, name="logits"),
    ], name="line_orientation_rnnpool")


class _ProgressCallback:
    """Keras callback showing one progress bar over all epochs."""

    def __new__(cls, keras, epochs: int):
        from tqdm.auto import tqdm

        class Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = tqdm(total=epochs, desc="train", unit="epoch", disable=None)

            def on_epoch_end(self, epoch, logs=None):
                self.bar.set_postfix(loss=f"{logs['loss']:.3f}", acc=f"{logs.get('accuracy', 0):.3f}")
                self.bar.update(1)

            def on_train_end(self, logs=None):
                self.bar.close()
        return Callback()


def train(out: pathlib.Path, quick: bool, seed: int) -> Dict:
    from ._keras import keras
    from .datasets import line_orientation

    n_train, epochs = (1024, 4) if quick else (4096, 8)
    x, y = line_orientation(n_train, seed=seed)
    xv, yv = line_orientation(512, seed=seed + 1)
    model = _small_model(keras, seed)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  ["accuracy"])
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, callbacks=[_ProgressCallback(keras, epochs)])
    _, accuracy = model.evaluate(xv, yv, verbose=0)
    path = out / "float_model.keras"
    tmp = out / ".float_model.keras.tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)
    return {"model": str(path), "val_accuracy": float(accuracy), "train_seconds": time.perf_counter() - start,
            "epochs": epochs, "train_images": n_train}


def run_demo(out_dir: str, quick: bool = False, seed: int = 0) -> Dict:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {"version": __version__, "quick": quick}
    report["train"] = train(out, quick, seed)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    print(f"float model: val accuracy {report['train']['val_accuracy']:.3f} -> {report['train']['model']}")
    print(f"report: {out / 'report.json'}")
    return report
