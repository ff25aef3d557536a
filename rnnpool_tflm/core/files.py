"""Files the toolkit reads from users and writes for them.

Writes are atomic: a reader never sees a half-written file, a failure leaves the old one.
A new file gets the mode any program's new file gets (0666 less the umask); a replaced
file keeps its mode. A set of files that belongs together (export's generated sources) is
written into a staging folder that then replaces the old folder in one step.

Reads check what the user named before any work: a missing path, a directory where a
file is expected, an output that cannot be written, NaN/inf in numeric data -- each a
one-line RNNPoolError naming the path.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pathlib
import secrets
import shutil
import stat
from typing import Callable, Dict, Iterator, Union

from .errors import RNNPoolError

PathLike = Union[str, os.PathLike]


# ---- writing -----------------------------------------------------------------------------------


def _sibling(path: pathlib.Path, kind: str) -> pathlib.Path:
    return path.with_name(f".{path.name}.{kind}-{secrets.token_hex(4)}")


def atomic_write_bytes(path: PathLike, data: bytes) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)  # a replaced file keeps its mode
    except FileNotFoundError:
        mode = None
    tmp = _sibling(path, "tmp")
    # 0o666: the kernel applies the umask, as for any new file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: PathLike, text: str) -> pathlib.Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: pathlib.Path, b: pathlib.Path) -> bool:
    """Swaps two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


@contextlib.contextmanager
def replaced_directory(target: PathLike, keep: Callable[[str], bool] = lambda name: False) -> Iterator[pathlib.Path]:
    """Yields an empty staging folder next to `target`; when the block ends without an
    error, the staging folder replaces `target` in one step (the entries of the old folder
    that `keep(name)` accepts are carried over first). On an error the staging folder is
    removed and `target` is untouched."""
    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, "new")
    os.mkdir(staging, 0o777)  # the umask applies
    try:
        if target.is_dir():
            os.chmod(staging, stat.S_IMODE(target.stat().st_mode))
        yield staging
        if target.is_dir():
            for entry in target.iterdir():
                if keep(entry.name) and not (staging / entry.name).exists():
                    if entry.is_dir():
                        shutil.copytree(entry, staging / entry.name, symlinks=True)
                    else:
                        shutil.copy2(entry, staging / entry.name, follow_symlinks=False)
        if target.is_dir() and _exchange(staging, target):
            shutil.rmtree(staging)  # now the old set
        else:
            old = None
            if target.exists():
                old = _sibling(target, "old")
                os.rename(target, old)
            os.rename(staging, target)
            if old is not None:
                shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ---- checking what the user named ------------------------------------------------------------


def require_file(path: PathLike, what: str) -> pathlib.Path:
    """`path` as an existing regular file, or an error that says what is wrong with it."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise RNNPoolError(f"{what} {path} is a directory, not a file")
    if not path.exists():
        raise RNNPoolError(f"{what} {path} does not exist")
    if not path.is_file():
        raise RNNPoolError(f"{what} {path} is not a regular file")
    return path


def _writable_ancestor(path: pathlib.Path, what: str) -> None:
    """The nearest existing folder above `path` must be a folder we can write in."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RNNPoolError(f"{what} {path} cannot be written: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RNNPoolError(f"{what} {path} cannot be written: no write permission in {ancestor}")


def require_output_file(path: PathLike, what: str) -> pathlib.Path:
    """`path` can be written as a file (checked before the work that produces it)."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise RNNPoolError(f"{what} {path} is a directory; name a file to write")
    if path.exists() and not path.is_file():
        raise RNNPoolError(f"{what} {path} exists and is not a regular file")
    _writable_ancestor(path, what)
    return path


def require_output_dir(path: PathLike, what: str) -> pathlib.Path:
    """`path` can be (re)created as a folder (checked before the work that fills it)."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise RNNPoolError(f"{what}: {path} exists and is not a directory")
    _writable_ancestor(path, what)
    return path


# ---- reading users' arrays ---------------------------------------------------------------------


def require_finite(array, label: str) -> None:
    """Float data must be finite: NaN/inf would pass quantization and give garbage silently."""
    import numpy as np

    array = np.asarray(array)
    if array.dtype.kind in "fc":
        bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        if bad:
            kinds = [k for k, present in (("NaN", np.isnan(array).any()), ("inf", np.isinf(array).any())) if present]
            raise RNNPoolError(f"{label} holds {' and '.join(kinds)} values ({bad:,} of {array.size:,} elements)")


def load_arrays(path: PathLike, what: str):
    """A user's .npy (one array) or .npz (a dict of arrays by name), without pickles, every
    float array finite; errors name the file, its role and the array."""
    import numpy as np

    path = require_file(path, what)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays: Union[np.ndarray, Dict[str, np.ndarray]] = loaded
        else:
            with loaded:
                arrays = {key: loaded[key] for key in loaded.files}
    except Exception as exc:
        raise RNNPoolError(
            f"cannot read {what} {path} as a NumPy .npy/.npz file ({type(exc).__name__}: {exc})"
        ) from None
    for key, array in [(None, arrays)] if isinstance(arrays, np.ndarray) else arrays.items():
        require_finite(array, f"{what} {path}" + (f" array {key!r}" if key is not None else ""))
    return arrays
