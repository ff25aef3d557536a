"""Writing and reading users' files (rnnpool_tflm.core.files): atomic writes with the
usual modes, a folder of files replaced as one set, and checks of what the user named."""

import os
import stat

import numpy as np
import pytest

from rnnpool_tflm.core import files
from rnnpool_tflm.core.errors import RNNPoolError


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_umask_mode(tmp_path, umask_027):
    path = files.atomic_write_bytes(tmp_path / "new.bin", b"data")
    assert path.read_bytes() == b"data"
    assert _mode(path) == 0o640  # 0666 less the umask, as for any program's new file
    os.umask(0o022)
    assert _mode(files.atomic_write_text(tmp_path / "other.txt", "x")) == 0o644


def test_a_replaced_file_keeps_its_mode(tmp_path, umask_027):
    path = tmp_path / "script.sh"
    path.write_text("old")
    os.chmod(path, 0o755)
    files.atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o755
    os.chmod(path, 0o604)
    files.atomic_write_text(path, "newer")
    assert _mode(path) == 0o604
    assert sorted(p.name for p in tmp_path.iterdir()) == ["script.sh"]  # no temporary left


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.txt"
    path.write_text("old")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        files.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def _write_set(folder, names, content):
    for name in names:
        (folder / name).write_text(content)


def test_replaced_directory_swaps_the_whole_set_and_keeps_what_it_is_told(tmp_path, umask_027):
    target = tmp_path / "generated"
    target.mkdir()
    os.chmod(target, 0o755)
    _write_set(target, ["a.h", "b.cc", "stale.h"], "old")
    (target / "README.md").write_text("the user's")
    with files.replaced_directory(target, keep=lambda name: name == "README.md") as staging:
        assert staging.parent == tmp_path and staging != target and not list(staging.iterdir())
        _write_set(staging, ["a.h", "b.cc"], "new")
        assert (target / "a.h").read_text() == "old"  # nothing visible before the block ends
    assert sorted(p.name for p in target.iterdir()) == ["README.md", "a.h", "b.cc"]
    assert {p.name: p.read_text() for p in target.iterdir()} == {"README.md": "the user's", "a.h": "new", "b.cc": "new"}
    assert _mode(target) == 0o755  # the folder keeps its mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generated"]  # staging and old set gone


def test_replaced_directory_creates_a_new_folder_with_the_umask_mode(tmp_path, umask_027):
    target = tmp_path / "deep" / "generated"
    with files.replaced_directory(target) as staging:
        (staging / "x").write_text("1")
    assert (target / "x").read_text() == "1" and _mode(target) == 0o750


def test_a_failure_mid_set_leaves_the_previous_set_whole(tmp_path):
    target = tmp_path / "generated"
    target.mkdir()
    _write_set(target, ["a.h", "b.cc", "c.h"], "old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with files.replaced_directory(target) as staging:
            _write_set(staging, ["a.h", "b.cc"], "new")
            raise RuntimeError("interrupted after two of three files")
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.h": "old", "b.cc": "old", "c.h": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generated"]


def test_the_set_is_swapped_even_where_the_kernel_cannot_exchange(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    target = tmp_path / "generated"
    target.mkdir()
    _write_set(target, ["a.h"], "old")
    with files.replaced_directory(target) as staging:
        _write_set(staging, ["a.h"], "new")
    assert (target / "a.h").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generated"]


def test_require_file_says_what_is_wrong(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"x")
    assert files.require_file(tmp_path / "model.tflite", "model file") == tmp_path / "model.tflite"
    with pytest.raises(RNNPoolError, match=r"model file .*missing.tflite does not exist"):
        files.require_file(tmp_path / "missing.tflite", "model file")
    with pytest.raises(RNNPoolError, match=r"model file .* is a directory, not a file"):
        files.require_file(tmp_path, "model file")


def test_outputs_are_checked_before_the_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert files.require_output_file(tmp_path / "new" / "out.tflite", "output") == tmp_path / "new" / "out.tflite"
    with pytest.raises(RNNPoolError, match="is a directory; name a file"):
        files.require_output_file(tmp_path, "output")
    with pytest.raises(RNNPoolError, match=r"cannot be written: .*file is not a directory"):
        files.require_output_file(blocker / "sub" / "out.tflite", "output")
    with pytest.raises(RNNPoolError, match="exists and is not a directory"):
        files.require_output_dir(blocker, "firmware folder")


@pytest.mark.parametrize("value, kinds", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
def test_load_arrays_rejects_non_finite_floats_naming_the_array(tmp_path, value, kinds):
    x = np.zeros((3, 4), np.float32)
    x[1, 2] = value
    np.savez(tmp_path / "data.npz", x=x, y=np.arange(3))
    with pytest.raises(RNNPoolError, match=rf"data file .*data.npz array 'x' holds {kinds} values \(1 of 12"):
        files.load_arrays(tmp_path / "data.npz", "data file")
    np.save(tmp_path / "one.npy", x)
    with pytest.raises(RNNPoolError, match=rf"input file .*one.npy holds {kinds} values"):
        files.load_arrays(tmp_path / "one.npy", "input file")


def test_load_arrays_returns_arrays_by_name(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((2, 2), np.float32), y=np.array([1, 0]))
    loaded = files.load_arrays(tmp_path / "d.npz", "data file")
    assert isinstance(loaded, dict) and sorted(loaded) == ["x", "y"]
    np.testing.assert_array_equal(loaded["y"], [1, 0])
    np.save(tmp_path / "a.npy", np.arange(4, dtype=np.int8))
    np.testing.assert_array_equal(files.load_arrays(tmp_path / "a.npy", "input file"), np.arange(4))
