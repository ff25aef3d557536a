"""train_face / `rnnpool-tflm train-face`: the run folder, resume mid-epoch, WIDER FACE input with bad
annotations, the command's errors, and the same training under MirroredStrategy as on one device."""

import io
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rnnpool_tflm.cli.main import main
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.core.keras import keras
from rnnpool_tflm.detection.training import TrainSettings, train_face
from rnnpool_tflm.quantize.model import is_quantized_model, load_model

TINY = dict(
    data="synthetic",
    model="face_m4",
    batch_size=4,
    input_size=(48, 64),
    train_images=16,
    val_images=4,
    learning_rate=3e-3,
)
QUIET = dict(log=lambda line: None)


def test_run_folder_holds_history_best_final_and_tensorboard(tmp_path):
    result = train_face(TrainSettings(epochs=2, **TINY), tmp_path / "run", **QUIET)
    run = tmp_path / "run"
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [1, 2]
    assert set(history) >= {"loss", "loc_loss", "conf_loss", "val_loss", "val_loc_loss", "val_conf_loss"}
    assert all(np.isfinite(v) for v in history["loss"] + history["val_loss"])
    csv_rows = (run / "history.csv").read_text().splitlines()
    assert len(csv_rows) == 3 and csv_rows[0].split(",")[0] == "epoch"
    best = json.loads((run / "best.json").read_text())
    assert best["val_loss"] == min(history["val_loss"])
    assert best["epoch"] == history["val_loss"].index(best["val_loss"]) + 1
    assert not (run / "backup").exists()  # removed once the run finished
    final = load_model(str(run / "final.keras"))
    assert final.inputs[0].shape[1:] == (48, 64, 1)
    for got, want in zip(final.get_weights(), result.detector.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    # TensorBoard scalars, one per epoch, in train/ and validation/
    for split, key in (("train", "loss"), ("validation", "val_loss")):
        events = list((run / "logs" / split).glob("events.out.tfevents.*"))
        values = [
            (e.step, float(tf.make_ndarray(v.tensor)))
            for f in events
            for e in tf.compat.v1.train.summary_iterator(str(f))
            for v in e.summary.value
            if v.tag == "epoch_loss"
        ]
        assert [s for s, _ in values] == [0, 1]
        np.testing.assert_allclose([v for _, v in values], history[key], rtol=1e-6)


class _Stop(Exception):
    pass


class _StopAt(keras.callbacks.Callback):
    """Stops the run (as a crash would) before training batch `batch` of epoch `epoch`."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise _Stop()


class _FirstStep(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = None
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.epoch is None:
            self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.seen is None:
            self.seen = (self.epoch, batch, int(self.model.optimizer.iterations.numpy()))


def test_resume_continues_mid_epoch_from_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    settings = TrainSettings(epochs=3, checkpoint_steps=2, **TINY)  # 4 steps per epoch
    with pytest.raises(_Stop):
        train_face(settings, run, callbacks=[_StopAt(epoch=1, batch=3)], **QUIET)
    assert (run / "backup").is_dir()
    assert json.loads((run / "history.json").read_text())["epoch"] == [1]
    with pytest.raises(RNNPoolError, match="already holds a training run"):
        train_face(settings, run, **QUIET)
    first = _FirstStep()
    result = train_face(None, run, resume=True, callbacks=[first], **QUIET)
    # checkpoints after steps 2, 4, 6: the stop before step 8 (epoch 1, batch 3) resumes after step 6
    assert first.seen == (1, 2, 6)
    assert result.history["epoch"] == [1, 2, 3]
    with pytest.raises(RNNPoolError, match="finished its 3 epochs"):
        train_face(None, run, resume=True, **QUIET)
    with pytest.raises(RNNPoolError, match="nothing to resume"):
        train_face(None, tmp_path / "empty", resume=True, **QUIET)


def test_qat_run_from_a_float_run(tmp_path):
    float_run = train_face(TrainSettings(epochs=1, **TINY), tmp_path / "float", **QUIET)
    qat = train_face(TrainSettings(epochs=1, qat=True, init=str(float_run.best), **TINY), tmp_path / "qat", **QUIET)
    assert is_quantized_model(qat.detector)
    assert is_quantized_model(load_model(str(qat.best)))
    with pytest.raises(RNNPoolError, match="is a QAT model"):
        train_face(TrainSettings(epochs=1, init=str(qat.best), **TINY), tmp_path / "again", **QUIET)
    other_size = dict(TINY, input_size=(64, 64))
    with pytest.raises(RNNPoolError, match="takes"):
        train_face(TrainSettings(epochs=1, init=str(float_run.best), **other_size), tmp_path / "size", **QUIET)


def _jpeg(path: pathlib.Path, width: int, height: int, boxes=()):
    pixels = np.full((height, width, 3), 40, np.uint8)
    for x, y, w, h in boxes:
        pixels[max(y, 0) : y + h, max(x, 0) : x + w] = 220
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue())


def test_wider_data_with_bad_annotations_and_images_trains_and_reports_the_skips(tmp_path):
    root = tmp_path / "WIDER"
    lines = []
    for split in ("train", "val"):
        names = []
        for i in range(6):
            name = f"0--Parade/{split}_{i}.jpg"
            _jpeg(root / f"WIDER_{split}" / "images" / name, 160, 120, [(20 + 10 * i, 30, 30, 36)])
            names.append(f"{name}\n1\n{20 + 10 * i} 30 30 36 0 0 0 0 0 0\n")
        (root / f"WIDER_{split}" / "images" / "0--Parade" / "not_an_image.jpg").write_text("text")
        names += [
            "0--Parade/not_an_image.jpg\n1\n1 1 5 5 0 0 0 0 0 0\n",
            "0--Parade/missing.jpg\n1\n1 1 5 5 0 0 0 0 0 0\n",
            f"0--Parade/{split}_0.jpg\n1\n1 1 5 5 0 0 0 0 0 0\n",  # annotated twice
            f"0--Parade/{split}_1x.jpg\nmany\n",  # malformed count
            f"0--Parade/{split}_2x.jpg\n2\n10 10 twenty 20 0 0 0 0 0 0\n500 500 9 9 0 0 0 0 0 0\n",
        ]
        _jpeg(root / f"WIDER_{split}" / "images" / f"0--Parade/{split}_2x.jpg", 160, 120)
        # a face outside the image (dropped) next to one crossing its border (clipped)
        _jpeg(root / f"WIDER_{split}" / "images" / f"0--Parade/{split}_edge.jpg", 160, 120, [(140, 10, 30, 30)])
        names.append(f"0--Parade/{split}_edge.jpg\n2\n140 10 30 30 0 0 0 0 0 0\n300 300 10 10 0 0 0 0 0 0\n")
        (root / "wider_face_split").mkdir(parents=True, exist_ok=True)
        (root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt").write_text("".join(names))
        lines.append(names)
    result = train_face(
        TrainSettings(data=f"wider:{root}", model="face_m4", epochs=1, batch_size=2, input_size=(48, 64), val_images=0),
        tmp_path / "run",
        **QUIET,
    )
    report = json.loads((tmp_path / "run" / "data.json").read_text())
    train = report["train"]
    assert train["images_used"] == 7  # 6 good + the edge image
    assert train["images_skipped"] == {"unreadable_image": 1, "missing_file": 1, "no_faces": 1}
    assert train["faces_dropped"] == {"outside_image": 2}  # 500,500 and 300,300
    assert train["faces_clipped"] == 1
    assert train["annotation_issues"]["malformed_box"] == 1
    assert train["annotation_issues"]["malformed_count"] == 1
    assert train["annotation_issues"]["duplicate_image"] == 1
    assert "skipped" in report["train_summary"]
    assert np.isfinite(result.history["loss"][0])


def _cli(*args):
    return main(["train-face", *map(str, args)])


def test_cli_errors_are_one_line(tmp_path, capsys):
    cases = [
        (["-o", tmp_path / "a"], "give --data synthetic or --data wider:DIR"),
        (["--data", "imagenet", "-o", tmp_path / "b"], "--data must be 'synthetic' or 'wider:DIR'"),
        (["--data", "synthetic", "--model", "yolo", "-o", tmp_path / "c"], "unknown face detector"),
        (["--data", "synthetic", "--epochs", "0", "-o", tmp_path / "d"], "epochs must be a positive integer"),
        (["--resume", "-o", tmp_path / "e"], "nothing to resume"),
        (["--resume", "--data", "synthetic", "-o", tmp_path / "f"], "--resume continues RUN_DIR"),
        (["--data", f"wider:{tmp_path / 'none'}", "-o", tmp_path / "g"], "is not a WIDER FACE folder"),
        (["--data", "synthetic", "--strategy", "multiworker", "-o", tmp_path / "h"], "needs TF_CONFIG"),
        (["--data", "synthetic", "--init", tmp_path / "nothing.keras", "-o", tmp_path / "i"], "does not exist"),
    ]
    for args, message in cases:
        assert _cli(*args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("rnnpool-tflm train-face: error:") and message in err, (args, err)
        assert "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        _cli("--data", "synthetic", "--input-size", "big", "-o", tmp_path / "j")
    assert exc.value.code == 2 and "ROWSxCOLS" in capsys.readouterr().err


def test_cli_trains_and_prints_json(tmp_path, capsys):
    assert (
        _cli(
            "--data",
            "synthetic",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--input-size",
            "48x64",
            "--train-images",
            "8",
            "--val-images",
            "4",
            "--json",
            "-o",
            tmp_path / "run",
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["replicas"] == 1 and out["last_epoch"]["epoch"] == 1
    assert pathlib.Path(out["best"]).is_file() and pathlib.Path(out["final"]).is_file()
    assert _cli("--data", "synthetic", "--epochs", "1", "-o", tmp_path / "run") == 2
    assert "already holds a training run" in capsys.readouterr().err


@pytest.mark.slow
def test_qat_training_under_mirrored_strategy_matches_one_device(tmp_path):
    """Two logical CPUs in a subprocess (the device configuration must precede TensorFlow's start)."""
    script = pathlib.Path(__file__).with_name("distributed_face_training.py")
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    # The first step is the same step to float precision, QAT included: the batch statistics are
    # bitwise the one-device ones (distribute.py; before, QAT's first loss differed by 0.4 %). From
    # then on the replicas' gradients add up in another order (weights 3e-6 apart after one step, as
    # in float training); QAT's rounding amplifies that (measured: 0.25 % at most over 8 steps).
    for kind, curve_rtol in (("float", 1e-3), ("qat", 1e-2)):
        one, mirrored = runs[f"{kind}_one"], runs[f"{kind}_mirrored"]
        assert one["replicas"] == 1 and mirrored["replicas"] == 2
        assert len(one["step_losses"]) == len(mirrored["step_losses"]) == 8
        np.testing.assert_allclose(mirrored["step_losses"][:2], one["step_losses"][:2], rtol=1e-5, err_msg=kind)
        for key in ("step_losses", "val_loss", "weights_abs_sum"):
            np.testing.assert_allclose(mirrored[key], one[key], rtol=curve_rtol, err_msg=f"{kind} {key}")
