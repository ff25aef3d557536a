"""WIDER FACE annotation parser: the official layout, and each documented skip rule on bad input."""

import numpy as np
import pytest

from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.detection.wider_annotations import parse_annotations, read_annotations

OFFICIAL = """\
0--Parade/0_Parade_marchingband_1_849.jpg
1
449 330 122 149 0 0 0 0 0 0 
0--Parade/0_Parade_Parade_0_904.jpg
2
361 98 263 339 0 0 0 0 0 0 
78 221 7 8 2 0 0 1 0 0 
0--Parade/0_Parade_Parade_0_452.jpg
0
0 0 0 0 0 0 0 0 0 0 
"""


def test_official_records_parse_without_issues():
    parsed = parse_annotations(OFFICIAL.splitlines())
    assert parsed.issues.total == 0
    assert [im.name for im in parsed.images] == [
        "0--Parade/0_Parade_marchingband_1_849.jpg",
        "0--Parade/0_Parade_Parade_0_904.jpg",
        "0--Parade/0_Parade_Parade_0_452.jpg",
    ]
    first, second, empty = parsed.images
    np.testing.assert_array_equal(first.boxes, [[449, 330, 122, 149]])
    np.testing.assert_array_equal(second.boxes, [[361, 98, 263, 339], [78, 221, 7, 8]])
    # flags: blur expression illumination invalid occlusion pose
    np.testing.assert_array_equal(second.flags[1], [2, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(second.invalid, [False, True])
    assert empty.boxes.shape == (0, 4) and empty.flags.shape == (0, 6)  # "0" + placeholder: no face
    assert second.stem == "0_Parade_Parade_0_904" and second.line == 4
    assert parsed.num_faces == 3


def test_four_number_face_lines_take_zero_flags():
    parsed = parse_annotations(["a/x.jpg", "1", "1 2 3 4"])
    assert parsed.issues.total == 0
    np.testing.assert_array_equal(parsed.images[0].flags, [[0] * 6])


@pytest.mark.parametrize(
    "line",
    ["449 330 122", "449 330 abc 149 0 0 0 0 0 0", "1 2 3 4 5 6 7", "1 2 nan 4 0 0 0 0 0 0", "1 2 3 4 0.5 0 0 0 0 0"],
)
def test_malformed_face_line_is_skipped_and_the_rest_kept(line):
    parsed = parse_annotations(["a/x.jpg", "2", line, "10 20 30 40 0 0 0 0 0 0"])
    assert parsed.issues.counts["malformed_box"] == 1
    assert parsed.issues.counts["count_mismatch"] == 1  # 2 announced, 1 valid
    np.testing.assert_array_equal(parsed.images[0].boxes, [[10, 20, 30, 40]])
    assert "line 3: malformed_box" in parsed.issues.examples[0]


def test_bad_count_skips_the_image_but_not_the_next():
    lines = ["a/x.jpg", "two", "1 2 3 4 0 0 0 0 0 0", "a/y.jpg", "-1", "a/z.jpg", "1", "5 6 7 8 0 0 0 0 0 0", "a/w.jpg"]
    parsed = parse_annotations(lines)
    assert parsed.issues.counts["malformed_count"] == 3  # "two", "-1", and w.jpg without any count
    assert [im.name for im in parsed.images] == ["a/z.jpg"]
    np.testing.assert_array_equal(parsed.images[0].boxes, [[5, 6, 7, 8]])


def test_counts_that_disagree_keep_the_face_lines_present():
    lines = [
        "a/x.jpg",
        "3",
        "1 1 5 5 0 0 0 0 0 0",  # fewer than announced
        "a/y.jpg",
        "1",
        "1 1 5 5 0 0 0 0 0 0",
        "9 9 5 5 0 0 0 0 0 0",  # more
        "a/z.jpg",
        "0",
        "4 4 6 6 0 0 0 0 0 0",
    ]  # 0, but a real face line
    parsed = parse_annotations(lines)
    assert parsed.issues.counts["count_mismatch"] == 3
    assert [len(im.boxes) for im in parsed.images] == [1, 2, 1]


def test_orphan_lines_blank_lines_and_duplicates():
    lines = [
        "3",
        "1 2 3 4 0 0 0 0 0 0",
        "",
        "a/x.JPG",
        "1",
        "",
        "1 2 3 4 0 0 0 0 0 0",
        "a/x.JPG",
        "1",
        "7 7 7 7 0 0 0 0 0 0",
    ]
    parsed = parse_annotations(lines)
    assert parsed.issues.counts["orphan_line"] == 2
    assert parsed.issues.counts["duplicate_image"] == 1
    assert len(parsed.images) == 1
    np.testing.assert_array_equal(parsed.images[0].boxes, [[1, 2, 3, 4]])  # the first record wins
    assert parsed.issues.summary() == "2 orphan_line, 1 duplicate_image"


def test_boxes_are_kept_as_written_for_the_evaluation():
    # Zero-size, negative and outside-the-image faces are not the parser's business: the evaluation's
    # split files index faces by their position in the file.
    parsed = parse_annotations(
        ["a/x.jpg", "3", "5 5 0 9 0 0 0 0 0 0", "-20 -20 10 10 0 0 0 0 0 0", "1 1 -3 4 0 0 0 1 0 0"]
    )
    assert parsed.issues.total == 0
    np.testing.assert_array_equal(parsed.images[0].boxes, [[5, 5, 0, 9], [-20, -20, 10, 10], [1, 1, -3, 4]])


def test_read_annotations_file_errors(tmp_path):
    with pytest.raises(RNNPoolError, match="does not exist"):
        read_annotations(tmp_path / "absent.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RNNPoolError, match="cannot read"):
        read_annotations(binary)
    good = tmp_path / "gt.txt"
    good.write_text(OFFICIAL)
    assert read_annotations(good).path == str(good)
