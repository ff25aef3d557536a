"""`detect` and `eval-face MODEL`: images in and out, runners for Keras / .tflite / the emulated M4,
and AP on synthetic faces and a WIDER FACE folder (the protocol itself: test_wider_evaluation.py)."""

import json
import os
import shutil

import face_models
import numpy as np
import pytest
from PIL import Image

from rnnpool_tflm.cli import main as cli
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.detection import face_evaluation, images, runners
from rnnpool_tflm.detection.evaluation_files import read_prediction_file
from rnnpool_tflm.detection.postprocess import Detections
from rnnpool_tflm.detection.synthetic import synthetic_face_image


class Oracle(runners.DetectorRunner):
    """A runner that 'detects' given boxes (normalised), one list per image in call order."""

    kind = "keras"
    name = "oracle"

    def __init__(self, input_shape, answers):
        self.input_shape, self.answers, self.seen = tuple(input_shape), list(answers), []

    def detect(self, batch, config=None, batch_size=16):
        batch = self.check_images(batch)
        self.seen.append(batch)
        out = []
        for _ in batch:
            boxes = np.asarray(self.answers.pop(0), np.float32).reshape(-1, 4)
            out.append(
                Detections(
                    boxes,
                    np.linspace(0.9, 0.5, len(boxes)).astype(np.float32),
                    np.ones(len(boxes), np.int32),
                    np.arange(len(boxes), dtype=np.int32),
                )
            )
        return out


# -- images ----------------------------------------------------------------------------------------------


def test_images_are_resized_and_made_monochrome_with_notes(tmp_path):
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:, :40] = [255, 0, 0]
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    loaded = images.load_image(tmp_path / "colour.png", (30, 40, 1))
    assert loaded.model_input.shape == (30, 40, 1) and loaded.size == (60, 80)
    assert loaded.notes == ("resized from 80x60 to 40x30", "converted to monochrome")
    # red -> 0.2989 grey (ITU-R 601 weights), black stays 0
    np.testing.assert_allclose(loaded.model_input[15, 5, 0], 0.2989, atol=2e-3)
    assert loaded.model_input[15, 30, 0] == 0.0
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    grey = images.load_image(tmp_path / "grey.png", (60, 80, 1))
    assert grey.notes == ()  # already grey and the right size
    np.testing.assert_allclose(grey.model_input[0, 0, 0], 1.0, atol=1e-6)
    colour = images.load_image(tmp_path / "colour.png", (60, 80, 3))
    assert colour.notes == () and colour.model_input.shape == (60, 80, 3)


def test_unreadable_images_are_named_in_the_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(RNNPoolError, match="cannot read image .*broken.png"):
        images.load_image(tmp_path / "broken.png", (30, 40, 1))
    with pytest.raises(RNNPoolError, match="does not exist"):
        images.load_image(tmp_path / "absent.jpg", (30, 40, 1))


def test_boxes_are_drawn_on_their_border_only():
    drawn = np.asarray(images.draw_detections(np.zeros((40, 60, 3), np.uint8), [[10, 20, 50, 35]], [0.9]))
    assert tuple(drawn[30, 10]) == (255, 40, 40) and tuple(drawn[30, 50]) == (255, 40, 40)  # left/right edge
    assert tuple(drawn[28, 30]) == (0, 0, 0)  # inside


# -- evaluation ------------------------------------------------------------------------------------------


def test_synthetic_evaluation_of_perfect_and_empty_detections():
    shape = (96, 128, 1)
    truth = [synthetic_face_image(4, i, shape)[1] for i in range(6)]
    perfect = face_evaluation.evaluate_synthetic(Oracle(shape, truth), count=6, seed=4, batch_size=4)
    faces = sum(len(t) for t in truth)
    assert perfect.ap["all"] == pytest.approx(1.0) and perfect.results["all"].faces == faces
    assert perfect.images == 6 and perfect.detections == faces
    none = face_evaluation.evaluate_synthetic(Oracle(shape, [[]] * 6), count=6, seed=4)
    assert none.ap["all"] == 0.0
    # a face moved by half its width is no hit: AP = share of faces still found
    moved = [t.copy() for t in truth]
    moved[0][:, [0, 2]] += (moved[0][:, 2:3] - moved[0][:, 0:1]) * 0.6
    half = face_evaluation.evaluate_synthetic(Oracle(shape, moved), count=6, seed=4)
    assert half.ap["all"] < 1.0
    assert json.loads(json.dumps(perfect.as_json()))["ap"]["all"] == pytest.approx(1.0)


def _wider_folder(tmp_path):
    """WIDER_val/images/<event>/*.jpg, wider_face_split/wider_face_val_bbx_gt.txt: two readable
    images (80x60 and 40x50) and one that is not an image."""
    root = tmp_path / "wider"
    event = root / "WIDER_val" / "images" / "0--Parade"
    event.mkdir(parents=True)
    Image.fromarray(np.full((60, 80, 3), 120, np.uint8)).save(event / "0_a.jpg")
    Image.fromarray(np.full((50, 40, 3), 60, np.uint8)).save(event / "0_b.jpg")
    (event / "0_c.jpg").write_bytes(b"not a jpeg")
    (root / "wider_face_split").mkdir()
    (root / "wider_face_split" / "wider_face_val_bbx_gt.txt").write_text(
        "0--Parade/0_a.jpg\n2\n10 10 20 20 0 0 0 0 0 0\n50 5 20 30 0 0 0 0 0 0\n"
        "0--Parade/0_b.jpg\n1\n0 0 39 49 0 0 0 0 0 0\n"
        "0--Parade/0_c.jpg\n1\n1 1 5 5 0 0 0 0 0 0\n"
    )
    return root


def test_wider_evaluation_scales_boxes_back_to_each_image(tmp_path):
    root = _wider_folder(tmp_path)
    # normalised (x1, y1, x2, y2) of the faces: the evaluation scales them back by each image's size
    answers = [[[10 / 80, 10 / 60, 30 / 80, 30 / 60], [50 / 80, 5 / 60, 70 / 80, 35 / 60]], [[0, 0, 39 / 40, 49 / 50]]]
    oracle = Oracle((24, 32, 1), answers)
    result = face_evaluation.evaluate_wider(oracle, root, save_predictions=tmp_path / "pred")
    # 3 of 4 faces found, no false positive: the unreadable image's face is a miss
    assert result.ap["all"] == pytest.approx(0.75) and result.results["all"].faces == 4
    assert result.images == 3 and result.detections == 3
    assert len(result.notes) == 1 and "0_c.jpg" in result.notes[0]
    assert oracle.seen[0].shape == (2, 24, 32, 1)  # both resized to the model's input
    saved = read_prediction_file(tmp_path / "pred" / "0--Parade" / "0_a.txt")
    np.testing.assert_allclose(saved[:, :4], [[10, 10, 20, 20], [50, 5, 20, 30]], atol=1e-3)
    # count: only the first image, and only its faces count
    first = face_evaluation.evaluate_wider(Oracle((24, 32, 1), answers[:1]), root, count=1)
    assert first.ap["all"] == pytest.approx(1.0) and first.results["all"].faces == 2


def test_bad_data_specs_and_counts():
    with pytest.raises(RNNPoolError, match="'synthetic' or 'wider:DIR'"):
        face_evaluation.parse_data("wider:")
    with pytest.raises(RNNPoolError, match="positive number"):
        face_evaluation.evaluate_synthetic(Oracle((96, 128, 1), []), count=0)
    with pytest.raises(RNNPoolError, match="takes images"):
        Oracle((96, 128, 1), [[]]).detect(np.zeros((1, 96, 128, 3), np.float32))


# -- the Keras and .tflite runners, the commands ---------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "face_m4.keras"
    face_models.face_m4().save(path)
    return path


@pytest.mark.slow
def test_eval_face_on_a_keras_model_file(keras_path, capsys):
    assert cli.main(["eval-face", str(keras_path), "--data", "synthetic", "--count", "6", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 6 and 0.0 <= report["ap"]["all"] <= 1.0 and report["detections"] > 0
    # the same numbers from the Python API with the model object
    direct = face_evaluation.evaluate_face_model(face_models.face_m4(), "synthetic", count=6)
    assert direct.ap["all"] == pytest.approx(report["ap"]["all"]) and direct.detections == report["detections"]


@pytest.mark.slow
def test_detect_draws_pngs_and_reports_what_it_changed(keras_path, tmp_path, capsys):
    image = face_models.synthetic_images()[0][0]
    Image.fromarray(np.repeat(image, 3, axis=2)).resize((256, 192)).save(tmp_path / "big.png")
    Image.fromarray(image[..., 0]).save(tmp_path / "exact.png")
    assert (
        cli.main(
            [
                "detect",
                str(keras_path),
                str(tmp_path / "big.png"),
                str(tmp_path / "exact.png"),
                "-o",
                str(tmp_path / "out"),
                "--threshold",
                "0.3",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    big, exact = report["images"]
    assert big["notes"] == ["resized from 256x192 to 128x96", "converted to monochrome"] and exact["notes"] == []
    assert Image.open(big["output"]).size == (256, 192) and Image.open(exact["output"]).size == (128, 96)
    assert all(box[4] >= 0.3 for box in big["boxes"] + exact["boxes"]) and exact["boxes"]
    # the boxes are the runner's detections above the threshold, in the original's pixels
    found = runners.open_detector(
        face_models.face_m4()
    ).detect(  # the saved model's weights
        face_models.synthetic_images()[0][:1].astype(np.float32) / 255
    )
    keep = found[0].scores >= np.float32(0.3)
    np.testing.assert_allclose([b[:4] for b in exact["boxes"]], found[0].boxes[keep] * [128, 96, 128, 96], atol=0.01)


def test_detect_errors_are_one_line(tmp_path, capsys):
    keras_path = tmp_path / "model.keras"  # never loaded: each error comes first
    keras_path.write_bytes(b"not loaded")
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "good.png")
    # images are read before the model loads: a bad one stops the command at once
    assert (
        cli.main(
            [
                "detect",
                str(keras_path),
                str(tmp_path / "good.png"),
                str(tmp_path / "broken.jpg"),
                "-o",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.startswith(
        f"rnnpool-tflm detect: error: cannot read image {tmp_path / 'broken.jpg'}"
    )
    assert cli.main(["detect", str(tmp_path / "broken.jpg"), str(tmp_path / "good.png"), "-o", str(tmp_path)]) == 2
    assert "neither a .tflite flatbuffer nor a Keras model" in capsys.readouterr().err
    assert cli.main(["detect", str(keras_path), str(tmp_path / "good.png"), "-o", str(tmp_path), "--emulate"]) == 2
    assert "converted .tflite" in capsys.readouterr().err
    assert (
        cli.main(["detect", str(keras_path), str(tmp_path / "good.png"), "-o", str(tmp_path), "--threshold", "2"]) == 2
    )
    assert "--threshold must be a score" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_tflite_and_qat_models_evaluate_and_detect(tmp_path, capsys):
    from rnnpool_tflm.quantize.model import quantize_model

    path = tmp_path / "face_m4.tflite"
    path.write_bytes(face_models.face_m4_tflite())
    assert cli.main(["eval-face", str(path), "--data", "synthetic", "--count", "4", "--json"]) == 0
    tflite_report = json.loads(capsys.readouterr().out)
    assert tflite_report["images"] == 4 and tflite_report["model"] == "int8 .tflite on the host"
    # int8 detections follow the float model's: most of its confident boxes are found again
    x = face_models.synthetic_images()[0][:4].astype(np.float32) / 255
    int8 = runners.open_detector(path).detect(x)
    float_ = runners.open_detector(face_models.face_m4()).detect(x)
    assert sum(len(d) for d in int8) > 0
    assert abs(sum(len(d) for d in int8) - sum(len(d) for d in float_)) <= 0.3 * sum(len(d) for d in float_)
    Image.fromarray(face_models.synthetic_images()[0][0][..., 0]).save(tmp_path / "face.png")
    assert cli.main(["detect", str(path), str(tmp_path / "face.png"), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "face.png").is_file() and "1 face(s)" not in capsys.readouterr().err
    qat = quantize_model(face_models.face_m4())
    result = face_evaluation.evaluate_face_model(qat, "synthetic", count=4)
    assert result.images == 4 and result.model == "Keras on the host"


def _missing_firmware() -> str:
    from rnnpool_tflm.deploy import build as firmware_build
    from rnnpool_tflm.deploy import emulate as firmware_run

    if not os.environ.get("TFLM_DIR"):
        return "TFLM_DIR is not set (a tflite-micro checkout of the pinned commit is needed)"
    tools = firmware_build.missing_tools() + ([firmware_run.QEMU] if shutil.which(firmware_run.QEMU) is None else [])
    return f"missing {', '.join(tools)}" if tools else ""


@pytest.mark.tflm
@pytest.mark.slow
@pytest.mark.skipif(bool(_missing_firmware()), reason=_missing_firmware() or "-")
def test_detect_on_the_emulated_m4_gives_the_hosts_boxes(tmp_path, capsys):
    from rnnpool_tflm.detection.on_device import DEVICE_CONFIG

    path = tmp_path / "face_m4.tflite"
    path.write_bytes(face_models.face_m4_tflite())
    image = face_models.synthetic_images()[0][1]
    Image.fromarray(image[..., 0]).save(tmp_path / "face.png")
    assert (
        cli.main(
            [
                "detect",
                str(path),
                str(tmp_path / "face.png"),
                "-o",
                str(tmp_path / "out"),
                "--emulate",
                "--threshold",
                "0",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["run"] == "firmware on the emulated Cortex-M4"
    host = runners.open_detector(path).detect(image[None].astype(np.float32) / 255, DEVICE_CONFIG)[0]
    assert len(report["images"][0]["boxes"]) == len(host) > 1
    np.testing.assert_allclose(
        [b[:4] for b in report["images"][0]["boxes"]], host.boxes * [128, 96, 128, 96], atol=0.006
    )
    np.testing.assert_allclose([b[4] for b in report["images"][0]["boxes"]], host.scores, atol=5e-5)


def _cell(items):
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def test_wider_subsets_leave_out_the_faces_they_do_not_list(tmp_path):
    from scipy.io import savemat

    root = _wider_folder(tmp_path)
    splits = tmp_path / "ground_truth"
    splits.mkdir()
    # easy: only 0_a's first face; medium: 0_a's faces; hard: every face (1-based indices, as the official files)
    keep = {"easy": ([1], [], []), "medium": ([1, 2], [], []), "hard": ([1, 2], [1], [1])}
    for subset, faces in keep.items():
        savemat(
            str(splits / f"wider_{subset}_val.mat"),
            {
                "event_list": _cell(["0--Parade"]),
                "file_list": _cell([_cell(["0_a", "0_b", "0_c"])]),
                "gt_list": _cell([_cell([np.array(k, float).reshape(-1, 1) for k in faces])]),
            },
        )
    # only 0_a's second face is found
    answers = [[[50 / 80, 5 / 60, 70 / 80, 35 / 60]], []]
    result = face_evaluation.evaluate_wider(Oracle((24, 32, 1), answers), root, splits_dir=splits)
    assert result.results["easy"].faces == 1 and result.ap["easy"] == 0.0  # its hit is on a face easy leaves out
    assert result.ap["medium"] == pytest.approx(0.5) and result.ap["hard"] == pytest.approx(0.25)
    with pytest.raises(RNNPoolError, match="for the val split"):
        face_evaluation.evaluate_wider(Oracle((24, 32, 1), []), root, split="train", splits_dir=splits)
