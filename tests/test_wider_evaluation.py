"""WIDER FACE protocol against hand-worked cases (every expected AP below is worked out in the comments
from the official rules, never by the code under test), the file readers and `eval-face`."""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.io import savemat

from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.detection.evaluation import average_precision, box_overlaps, evaluate, normalize_scores, thresholds
from rnnpool_tflm.detection.evaluation_files import (
    evaluate_files,
    read_ground_truth,
    read_predictions,
    read_subsets,
    write_prediction_file,
)

A = [0, 0, 9, 9]  # x y w h: spans 0..9, 10 x 10 pixels under the +1 convention
B = [100, 100, 9, 9]
FAR = [300, 300, 9, 9]  # overlaps nothing


def det(box, score):
    return list(box) + [score]


def ap(faces, predictions, subsets=None, subset="all"):
    faces = {k: np.array(v, float).reshape(-1, 4) for k, v in faces.items()}
    predictions = {k: np.array(v, float).reshape(-1, 5) for k, v in predictions.items()}
    return evaluate(faces, predictions, subsets)[subset].ap


def test_plus_one_pixel_convention_on_a_borderline_iou():
    # Face 0..9 (area 10*10 = 100). Detection x 0..4: width 5, area 50, intersection 50 -> IoU 50/100 = 0.5,
    # a hit. (Without the +1, 36/81 = 0.44 would miss.) Detection x 0..3: 40/100 = 0.4, a miss.
    np.testing.assert_allclose(box_overlaps(np.array([[0, 0, 4, 9], [0, 0, 3, 9]]), np.array([A])), [[0.5], [0.4]])
    assert ap({"i": [A]}, {"i": [det([0, 0, 4, 9], 0.9)]}) == 1.0
    assert ap({"i": [A]}, {"i": [det([0, 0, 3, 9], 0.9)]}) == 0.0


def test_box_overlaps_of_disjoint_and_touching_boxes():
    # Touching at x = 9: under the +1 convention they share the column x = 9 (1 x 10 pixels).
    np.testing.assert_allclose(
        box_overlaps(np.array([[9, 0, 9, 9], [10, 0, 9, 9]]), np.array([A])), [[10 / 190], [0.0]]
    )


def test_a_second_detection_of_the_same_face_is_a_false_positive():
    # Faces A, B. Scores 1, .75, .5 normalise to 1, .5, 0. In score order: A1 takes A; A2 (IoU .82 with A,
    # already taken) is a false positive; B1 takes B.
    # t > .5: {A1}: P 1, R .5.   0 < t <= .5: {A1, A2}: P .5, R .5.   t = 0: all: P 2/3, R 1.
    # AP = .5 * 1 + .5 * 2/3 = 5/6 (the envelope lifts P .5 up to 2/3 at R .5, which adds nothing).
    faces = {"i": [A, B]}
    predictions = {"i": [det(A, 1.0), det([1, 0, 9, 9], 0.75), det(B, 0.5)]}
    assert ap(faces, predictions) == pytest.approx(5 / 6)
    result = evaluate({"i": np.array(faces["i"], float)}, {"i": np.array(predictions["i"], float)})["all"]
    levels = thresholds()
    at_half = np.nonzero(levels == 0.5)[0][0]
    assert (result.precision[at_half], result.recall[at_half]) == (0.5, 0.5)
    assert (result.precision[-1], result.recall[-1]) == (pytest.approx(2 / 3), 1.0)
    assert result.faces == 2


def test_detections_are_matched_in_score_order_not_file_order():
    # The file lists a loose duplicate (.5) before the exact box (1.0). In score order the exact box takes A
    # (P 1 R 1 for every t > 0) and the duplicate is the false positive -> AP 1. In file order the loose one
    # would take A and the exact box would be the false positive: AP .5.
    assert ap({"i": [A]}, {"i": [det([1, 0, 9, 9], 0.5), det(A, 1.0)]}) == 1.0


def test_only_the_best_face_of_a_detection_counts():
    # Faces A (x 0..9) and A' (x 5..14). d1 = A takes A. d2 (x 2..11) has IoU 80/120 with A (taken) and
    # 70/130 = .54 with A': its best face is A, so it is a false positive although A' is free.
    # Normalised scores 1, 0: R .5 with P 1, then P .5 -> AP = .5.
    assert ap({"i": [A, [5, 0, 9, 9]]}, {"i": [det(A, 1.0), det([2, 0, 9, 9], 0.5)]}) == pytest.approx(0.5)


def test_faces_outside_the_subset_are_neither_hits_nor_misses():
    # Subset = {A}. B1 hits B (outside): not a proposal. X is a false positive, A1 takes A.
    # Scores 1, .75, .5 -> 1, .5, 0.  t > .5: no proposal (R 0).  0 < t <= .5: {X}: P 0, R 0.
    # t = 0: {X, A1}: P .5, R 1.  AP = 1 * .5 = .5.
    # Every face ("all"): B1 takes B: P 1 R .5, then P .5 R .5, then P 2/3 R 1 -> AP 5/6.
    faces = {"i": [A, B]}
    predictions = {"i": [det(B, 1.0), det(FAR, 0.75), det(A, 0.5)]}
    subsets = {"sub": {"i": np.array([0])}}
    assert ap(faces, predictions, subsets, "sub") == pytest.approx(0.5)
    assert ap(faces, predictions, subsets, "all") == pytest.approx(5 / 6)
    # An undetected face outside the subset is no miss: A found -> subset AP 1, but only half of "all".
    assert ap(faces, {"i": [det(A, 0.9)]}, subsets, "sub") == 1.0
    assert ap(faces, {"i": [det(A, 0.9)]}, subsets, "all") == 0.5


def test_images_the_subset_does_not_list_are_not_evaluated():
    # Subset lists image "i" only; the false positive in "j" does not count there, but does in "all".
    faces = {"i": [A], "j": [B]}
    predictions = {"i": [det(A, 0.5)], "j": [det(FAR, 1.0)]}
    subsets = {"sub": {"i": np.array([0])}}
    assert ap(faces, predictions, subsets, "sub") == 1.0
    # all: FAR (1.0) false positive, then A (0.0): R .5 at P .5; B never found -> AP .25
    assert ap(faces, predictions, subsets, "all") == pytest.approx(0.25)


def test_empty_images():
    # An image without faces is not compared: its detection is no false positive (official behaviour).
    assert ap({"i": [A], "empty": []}, {"i": [det(A, 0.2)], "empty": [det(FAR, 0.9)]}) == 1.0
    # An image without detections (or without a prediction entry) still has its faces missed:
    # A found, B never -> P 1 up to R .5 -> AP .5.
    assert ap({"i": [A], "j": [B]}, {"i": [det(A, 0.2)], "j": []}) == 0.5
    assert ap({"i": [A], "j": [B]}, {"i": [det(A, 0.2)]}) == 0.5
    # No detections anywhere: AP 0; no faces anywhere: AP undefined (None).
    assert ap({"i": [A]}, {}) == 0.0
    assert ap({"empty": []}, {"empty": [det(A, 0.9)]}) is None


def test_all_misses_give_ap_zero():
    assert ap({"i": [A, B]}, {"i": [det(FAR, 0.9), det([200, 0, 9, 9], 0.4)]}) == 0.0


def test_a_perfect_detector_gives_ap_one():
    faces = {"i": [A, B], "j": [[20, 30, 40, 50]], "k": [[5, 5, 60, 70]]}
    predictions = {"i": [det(A, 0.3), det(B, 0.9)], "j": [det([20, 30, 40, 50], 0.55)], "k": [det([5, 5, 60, 70], 0.1)]}
    assert ap(faces, predictions) == 1.0
    # All scores equal (min-max normalisation would divide 0 by 0): every detection counts -> still 1.
    assert ap(faces, {k: [d[:4] + [0.7] for d in v] for k, v in predictions.items()}) == 1.0


def test_scores_are_normalised_over_the_whole_dataset():
    out = normalize_scores(
        {"i": np.array([det(A, 2.0), det(B, 4.0)]), "j": np.array([det(A, 6.0)]), "k": np.zeros((0, 5))}
    )
    np.testing.assert_allclose(out["i"][:, 4], [0.0, 0.5])
    np.testing.assert_allclose(out["j"][:, 4], [1.0])
    assert out["k"].shape == (0, 5)
    # An increasing affine change of every score changes nothing (the duplicate case: 5/6).
    faces = {"i": [A, B]}
    assert ap(faces, {"i": [det(A, 13.0), det([1, 0, 9, 9], 10.5), det(B, 8.0)]}) == pytest.approx(5 / 6)


def test_scores_of_images_not_in_the_ground_truth_do_not_normalise():
    # A (hit in i) .9, FAR (false positive in j) .85 -> 1 and 0: A alone above every t > 0 gives P 1 R .5,
    # then P .5 R .5 -> AP .5. Had "ghost" (not annotated) joined the normalisation, A and FAR would map to
    # .50045 and .500425, under the same thresholds: P .5 R .5 only -> AP .25.
    faces = {"i": [A], "j": [B]}
    predictions = {"i": [det(A, 0.9)], "j": [det(FAR, 0.85)], "ghost": [det(A, -1000.0), det(A, 1000.0)]}
    assert ap(faces, predictions) == pytest.approx(0.5)


def test_average_precision_takes_the_precision_envelope():
    # mrec 0 .2 .4 .4 .6 1, mpre 0 1 .5 .8 .6 0 -> envelope 1 1 .8 .8 .6 0
    # AP = .2*1 + .2*.8 + .2*.6 + .4*0 = .48   (without the envelope: .2 + .1 + .12 = .42)
    assert average_precision(np.array([0.2, 0.4, 0.4, 0.6]), np.array([1.0, 0.5, 0.8, 0.6])) == pytest.approx(0.48)
    # A threshold without proposals (precision 0/0) is skipped, as MATLAB's max skips NaN.
    assert average_precision(np.array([0.0, 0.5]), np.array([np.nan, 1.0])) == pytest.approx(0.5)


def test_thresholds_are_the_official_ones():
    levels = thresholds()
    assert len(levels) == 1000 and levels[0] == 0.999 and levels[-1] == 0.0
    assert levels[499] == 0.5 and np.all(np.diff(levels) < 0)


# --- files: ground truth, submissions, split .mat files, and the command ---------------------------------

GT = """\
0--Parade/0_a.jpg
2
0 0 9 9 0 0 0 0 0 0
100 100 9 9 0 0 0 0 0 0
0--Parade/0_b.jpg
1
0 0 19 19 0 0 0 0 0 0
1--Handshaking/1_c.jpg
1
50 50 9 9 0 0 0 0 0 0
"""
EVENTS = ("0--Parade", "1--Handshaking")
FILES = (("0_a", "0_b"), ("1_c",))
# 1-based face indices per image, as the official split files
KEEP = {"easy": (([1], [1]), ([],)), "medium": (([1, 2], [1]), ([],)), "hard": (([1, 2], [1]), ([1],))}
BOXES = ((np.array([A, B], float), np.array([[0, 0, 19, 19]], float)), (np.array([[50, 50, 9, 9]], float),))


def _cell(items):
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def write_split(path, keep, with_lists=True, boxes=BOXES):
    content = {"gt_list": _cell([_cell([np.array(k, float).reshape(-1, 1) for k in event]) for event in keep])}
    if with_lists:
        content["event_list"] = _cell(list(EVENTS))
        content["file_list"] = _cell([_cell(list(f)) for f in FILES])
    if boxes is not None:
        content["face_bbx_list"] = _cell([_cell(list(b)) for b in boxes])
    savemat(str(path), content)


@pytest.fixture
def submission(tmp_path):
    gt = tmp_path / "wider_face_val_bbx_gt.txt"
    gt.write_text(GT)
    splits = tmp_path / "ground_truth"
    splits.mkdir()
    for subset, keep in KEEP.items():
        write_split(splits / f"wider_{subset}_val.mat", keep)
    predictions = tmp_path / "pred"
    write_prediction_file(predictions, "0--Parade", "0_a", np.array([det(A, 0.9)]))
    write_prediction_file(predictions, "0--Parade", "0_b", np.array([det([0, 0, 19, 19], 0.8)]))
    write_prediction_file(predictions, "1--Handshaking", "1_c", np.array([det(FAR, 0.7)]))
    return gt, predictions, splits


# Normalised scores: A1 1, C1 .5, FAR (in 1_c) 0 -- one false positive after two hits.
# easy {A, C}: P 1 up to R 1 -> AP 1.   medium {A, B, C}: R 2/3 at P 1 -> 2/3.   hard = all {A, B, C, D}: .5
EXPECTED = {"all": 0.5, "easy": 1.0, "medium": 2 / 3, "hard": 0.5}


def test_evaluate_files_with_official_split_files(submission):
    gt, predictions, splits = submission
    results, found, truth = evaluate_files(predictions, gt, splits)
    assert {k: r.ap for k, r in results.items()} == pytest.approx(EXPECTED)
    assert {k: r.faces for k, r in results.items()} == {"all": 4, "easy": 2, "medium": 3, "hard": 4}
    assert found.missing == () and found.unknown == ()
    assert truth.events["1_c"] == "1--Handshaking"
    results, _, _ = evaluate_files(predictions, gt)
    assert list(results) == ["all"] and results["all"].ap == pytest.approx(0.5)


def test_split_lists_from_wider_face_val_mat(submission, tmp_path):
    gt, _, _ = submission
    folder = tmp_path / "lists_apart"
    folder.mkdir()
    for subset, keep in KEEP.items():
        write_split(folder / f"wider_{subset}_val.mat", keep, with_lists=False, boxes=None)
    with pytest.raises(RNNPoolError, match="no event_list/file_list"):
        read_subsets(folder, read_ground_truth(gt))
    savemat(
        str(folder / "wider_face_val.mat"),
        {"event_list": _cell(list(EVENTS)), "file_list": _cell([_cell(list(f)) for f in FILES])},
    )
    subsets = read_subsets(folder, read_ground_truth(gt))
    np.testing.assert_array_equal(subsets["medium"]["0_a"], [0, 1])
    assert subsets["easy"]["1_c"].size == 0


@pytest.mark.parametrize(
    "keep, boxes, message",
    [
        ((([1], [2]), ([],)), BOXES, r"lists faces \[2\] but has 1"),
        ((([0], [1]), ([],)), BOXES, r"lists faces \[0\]"),
        (
            KEEP["easy"],
            ((np.array([A], float), np.array([A], float)), (np.array([A], float),)),
            "has 1 faces there but 2",
        ),
    ],
)
def test_split_files_that_disagree_with_the_ground_truth(submission, keep, boxes, message):
    gt, _, splits = submission
    write_split(splits / "wider_easy_val.mat", keep, boxes=boxes)
    with pytest.raises(RNNPoolError, match=message):
        read_subsets(splits, read_ground_truth(gt))


def test_split_folder_errors(submission, tmp_path):
    gt, _, splits = submission
    (splits / "wider_hard_val.mat").unlink()
    with pytest.raises(RNNPoolError, match="wider_hard_val.mat"):
        read_subsets(splits, read_ground_truth(gt))
    (splits / "wider_hard_val.mat").write_text("not a mat file")
    with pytest.raises(RNNPoolError, match="cannot read .* as a MATLAB"):
        read_subsets(splits, read_ground_truth(gt))
    other = tmp_path / "other_gt.txt"
    other.write_text("0--Parade/0_a.jpg\n2\n0 0 9 9 0 0 0 0 0 0\n100 100 9 9 0 0 0 0 0 0\n")
    write_split(splits / "wider_hard_val.mat", KEEP["hard"])
    with pytest.raises(RNNPoolError, match="lists image 0_b .* does not have"):
        read_subsets(splits, read_ground_truth(other))


def test_ground_truth_with_issues_is_refused(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("e/x.jpg\n2\n0 0 9 9 0 0 0 0 0 0\n")
    with pytest.raises(RNNPoolError, match="1 count_mismatch"):
        read_ground_truth(gt)
    gt.write_text("e/x.jpg\n0\n0 0 0 0 0 0 0 0 0 0\nf/x.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n")
    with pytest.raises(RNNPoolError, match="two images are named x"):
        read_ground_truth(gt)


def test_submission_reader(tmp_path):
    folder = tmp_path / "pred"
    written = write_prediction_file(folder, "0--Parade", "0_a", np.array([det([1.5, 2, 3, 4], 0.123456789)]))
    assert written.read_text() == "0_a\n1\n1.5 2 3 4 0.123456789\n"
    (folder / "flat_b.txt").write_text("some/dir/flat_b.jpg\n0\n")  # flat layout, name with folder and .jpg
    (folder / "stray.txt").write_text("stray\n0\n")
    found = read_predictions(folder, ["0_a", "flat_b", "never"])
    np.testing.assert_array_equal(found.detections["0_a"], [[1.5, 2, 3, 4, 0.123456789]])
    assert found.detections["flat_b"].shape == (0, 5)
    assert found.missing == ("never",) and found.unknown == ("stray",)


@pytest.mark.parametrize(
    "text, message",
    [
        ("other\n0\n", "names image 'other'"),
        ("x\n", "first two lines"),
        ("x\nmany\n", "non-negative integer"),
        ("x\n2\n1 2 3 4 0.5\n", "count says 2 detection"),
        ("x\n1\n1 2 3 0.5\n", "line 3: expected finite numbers"),
        ("x\n1\n1 2 inf 4 0.5\n", "line 3"),
    ],
)
def test_malformed_prediction_files(tmp_path, text, message):
    (tmp_path / "x.txt").write_text(text)
    with pytest.raises(RNNPoolError, match=message):
        read_predictions(tmp_path, ["x"])


def test_duplicate_prediction_stems(tmp_path):
    for event in ("a", "b"):
        write_prediction_file(tmp_path, event, "x", np.zeros((0, 5)))
    with pytest.raises(RNNPoolError, match="two prediction files for image x"):
        read_predictions(tmp_path, ["x"])


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "rnnpool_tflm.cli.main", "eval-face", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_eval_face_command(submission):
    gt, predictions, splits = submission
    done = _cli("--predictions", predictions, "--gt", gt, "--splits", splits, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ap"] == pytest.approx(EXPECTED)
    assert report["faces"] == {"all": 4, "easy": 2, "medium": 3, "hard": 4} and report["images"] == 3
    (predictions / "1--Handshaking" / "1_c.txt").unlink()
    done = _cli("--predictions", predictions, "--gt", gt)
    assert done.returncode == 0, done.stderr
    # Without 1_c's false positive: A1, C1 hit; B, D missed -> R .5 at P 1 -> AP .5.
    assert "  all     0.5000   (4 faces)" in done.stdout
    assert "1 image(s) have no prediction file" in done.stderr


def test_eval_face_errors_are_one_line(submission, tmp_path):
    gt, predictions, _ = submission
    done = _cli("--predictions", predictions, "--gt", tmp_path / "absent.txt")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip() == f"rnnpool-tflm eval-face: error: WIDER FACE annotation file "
        f"{tmp_path / 'absent.txt'} does not exist"
    )
    done = _cli("model.keras", "--data", tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--data must be 'synthetic' or 'wider:DIR'" in done.stderr
    done = _cli(tmp_path / "absent.keras", "--data", "synthetic")
    assert (
        done.returncode == 2
        and done.stderr.strip() == f"rnnpool-tflm eval-face: error: model {tmp_path / 'absent.keras'} does not exist"
    )


def _official_loops(faces, predictions, keep):
    """A line-by-line transcription of the official evaluation's loops (image_evaluation, image_pr_info,
    dataset_pr_info, VOCap), kept naive on purpose, to check the vectorised implementation against."""
    scores = np.concatenate([p[:, 4] for n, p in predictions.items() if n in faces and len(p)])
    low, high = scores.min(), scores.max()
    pr = np.zeros((1000, 2))
    count_face = 0
    for name, indices in keep.items():
        gt, pred = faces[name], predictions.get(name, np.zeros((0, 5)))
        count_face += len(indices)
        if len(gt) == 0 or len(pred) == 0:
            continue
        pred = pred[np.argsort(-pred[:, 4], kind="stable")].copy()
        pred[:, 4] = (pred[:, 4] - low) / (high - low)
        ignore = np.zeros(len(gt))
        ignore[indices] = 1
        recall_list, proposal_list, pred_recall = np.zeros(len(gt)), np.ones(len(pred)), np.zeros(len(pred))
        for h in range(len(pred)):
            x1, y1, x2, y2 = pred[h, 0], pred[h, 1], pred[h, 0] + pred[h, 2], pred[h, 1] + pred[h, 3]
            overlaps = []
            for gx, gy, gw, gh in gt:
                w = min(x2, gx + gw) - max(x1, gx) + 1
                h_ = min(y2, gy + gh) - max(y1, gy) + 1
                inter = w * h_
                union = (x2 - x1 + 1) * (y2 - y1 + 1) + (gw + 1) * (gh + 1) - inter
                overlaps.append(0.0 if w <= 0 or h_ <= 0 else inter / union)
            idx = int(np.argmax(overlaps))
            if overlaps[idx] >= 0.5:
                if ignore[idx] == 0:
                    recall_list[idx] = -1
                    proposal_list[h] = -1
                elif recall_list[idx] == 0:
                    recall_list[idx] = 1
            pred_recall[h] = np.sum(recall_list == 1)
        for t in range(1000):
            above = np.nonzero(pred[:, 4] >= 1 - (t + 1) / 1000)[0]
            if len(above):
                r = above[-1]
                pr[t] += [np.sum(proposal_list[: r + 1] == 1), pred_recall[r]]
    with np.errstate(invalid="ignore"):
        precision, recall = pr[:, 1] / pr[:, 0], pr[:, 1] / count_face
    mrec, mpre = np.concatenate([[0], recall, [1]]), np.concatenate([[0], precision, [0]])
    for i in range(len(mpre) - 1, 0, -1):
        mpre[i - 1] = np.nanmax([mpre[i - 1], mpre[i]])  # MATLAB's max skips NaN
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


@pytest.mark.parametrize("seed", range(4))
def test_matches_a_transcription_of_the_official_loops(seed):
    rng = np.random.default_rng(seed)
    faces, predictions, keep = {}, {}, {}
    for i in range(25):
        n = int(rng.integers(0, 6))
        gt = np.column_stack([rng.integers(0, 200, (n, 2)), rng.integers(6, 50, (n, 2))]).astype(float)
        found = gt[rng.random(n) < 0.7]
        jitter = rng.integers(-2, 3, found.shape)
        noise = np.column_stack([rng.integers(0, 200, (3, 2)), rng.integers(1, 40, (3, 2))]).astype(float)
        boxes = np.concatenate([found + jitter, found[:1] + 2, noise[: int(rng.integers(0, 4))]])
        scores = rng.choice([0.1, 0.25, 0.5, 0.7, 0.9, 0.95], len(boxes))  # ties across and within images
        faces[f"im{i}"] = gt
        if i % 7:  # some images have no prediction entry
            predictions[f"im{i}"] = np.column_stack([boxes, scores])
        keep[f"im{i}"] = np.flatnonzero(rng.random(n) < 0.6)
    results = evaluate(faces, predictions, {"sub": keep})
    assert results["sub"].ap == pytest.approx(_official_loops(faces, predictions, keep), abs=1e-12)
    every = {k: np.arange(len(v)) for k, v in faces.items()}
    assert results["all"].ap == pytest.approx(_official_loops(faces, predictions, every), abs=1e-12)
    assert 0.05 < results["all"].ap < 0.95  # a case that exercises hits, misses and false positives


def test_a_subset_naming_an_unknown_image_is_an_error():
    with pytest.raises(RNNPoolError, match="lists image ghost"):
        evaluate({"i": np.array([A], float)}, {}, {"sub": {"ghost": np.array([0])}})
    with pytest.raises(RNNPoolError, match=r"lists face 3 of i, which has 1"):
        evaluate({"i": np.array([A], float)}, {}, {"sub": {"i": np.array([2])}})
