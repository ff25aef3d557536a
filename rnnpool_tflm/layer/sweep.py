"""The RNNPool sweep: which pixels and summaries each FastGRNN step reads (Algorithm 1),
independent of the arithmetic the two cells compute with.

All patches of the batch are processed at once; Python loops run only over
time steps. The work is organised like the C kernel:

* the RNN1 input projection once per pixel, shared by row sweeps, column sweeps
  and every patch that covers the pixel;
* RNN1 runs once per row segment (image row x patch column) and once per column
  segment (patch row x image column); overlapping patches (stride < patch)
  reuse those summaries instead of recomputing them;
* the RNN2 input projection once per summary, shared by both RNN2 directions.

The result equals Algorithm 1 evaluated patch by patch.

`Cells` is the arithmetic: float FastGRNNs (layer.forward.FloatCells, what the
layer computes by default) or the int8 kernel's simulation that the QAT
QuantizeConfig installs on the layer (quantize.simulation.QuantizedCells). The
values flowing between the steps are whatever the cells produce: a tensor, or a
tf.nest structure of tensors (the simulation pairs each integer with its float
surrogate); the sweep only slices, pads and regroups them, component by component.
"""

from __future__ import annotations

import abc
from typing import Dict, List, Sequence

import tensorflow as tf

from ..core.config import RNNPoolConfig


class Cells(abc.ABC):
    """RNN1 and RNN2 of one RNNPool layer, as the sweep computes with them."""

    def __init__(self, config: RNNPoolConfig):
        self.config = config

    @abc.abstractmethod
    def project_pixels(self, x: tf.Tensor):
        """[N, H, W, k] input -> RNN1's input projection x @ W1 per pixel, [N, H, W, h1]."""

    @abc.abstractmethod
    def project_summaries(self, summaries):
        """RNN1 final states [..., h1] -> RNN2's input projection s @ W2, [..., h2]."""

    @abc.abstractmethod
    def run(self, rnn: int, steps: Sequence) -> object:
        """The final hidden state of cell `rnn` (1 or 2) over pre-projected steps, each [M, h]."""

    @abc.abstractmethod
    def output(self, finals: Sequence) -> tf.Tensor:
        """The layer output from RNN2's four final states (rows fwd, rows bwd, cols fwd, cols bwd)."""

    def pool(self, x: tf.Tensor) -> tf.Tensor:
        """[N, H, W, k] -> [N, out_rows, out_cols, 4*h2]."""
        return self.output(sweep(x, self, self.config))


def _map(fn, *values):
    return tf.nest.map_structure(fn, *values)


def _shape(value) -> tf.Tensor:
    return tf.shape(tf.nest.flatten(value)[0])


def _split(value, sizes) -> List:
    parts = [tf.split(t, sizes, axis=0) for t in tf.nest.flatten(value)]
    return [tf.nest.pack_sequence_as(value, [p[i] for p in parts]) for i in range(len(sizes))]


def run_batched(cells: Cells, rnn: int, groups: List[List]) -> List:
    """Runs several independent sequence sets through cell `rnn`; sets of equal
    length share one loop (their sequences are stacked along the batch)."""
    results: List = [None] * len(groups)
    by_length: Dict[int, List[int]] = {}
    for idx, steps in enumerate(groups):
        by_length.setdefault(len(steps), []).append(idx)
    for length, members in by_length.items():
        shapes = [_shape(groups[m][0]) for m in members]
        flat = [[_map(lambda t: tf.reshape(t, [-1, t.shape[-1]]), s) for s in groups[m]] for m in members]
        sizes = [_shape(f[0])[0] for f in flat]
        steps = [_map(lambda *ts: tf.concat(ts, axis=0), *[f[t] for f in flat]) for t in range(length)]
        final = cells.run(rnn, steps)
        for m, part, shape in zip(members, _split(final, sizes), shapes, strict=True):
            results[m] = _map(
                lambda t, shape=shape: tf.reshape(t, tf.concat([shape[:-1], [t.shape[-1]]], axis=0)), part
            )
    return results


def _strided(value, axis: int, start: int, count: int, step: int):
    """Elements start, start + step, ... (count of them) along `axis` of an NHWC value."""

    def take(t):
        index = [slice(None)] * 4
        index[axis] = slice(start, start + (count - 1) * step + 1, step)
        return t[tuple(index)]

    return _map(take, value)


def sweep(x: tf.Tensor, cells: Cells, config: RNNPoolConfig) -> List:
    """RNN2's four final states per patch, in the order [rows fwd, rows bwd, cols fwd, cols bwd]."""
    geo = config.geometry(int(x.shape[1]), int(x.shape[2]))
    (r, c), (sr, sc) = config.patch_size, config.strides
    n_r, n_c = geo.out_rows, geo.out_cols
    used_rows, used_cols = (n_r - 1) * sr + r, (n_c - 1) * sc + c

    # Zero padding of x is zero padding of x @ W1, so project first, pad after.
    pads = [[0, 0], [geo.pad_top, geo.pad_bottom], [geo.pad_left, geo.pad_right], [0, 0]]
    wx = _map(lambda t: tf.pad(t, pads)[:, :used_rows, :used_cols, :], cells.project_pixels(x))

    # RNN1 segments: step t of row segment (y, j) is pixel (y, j*sc + t);
    # step t of column segment (i, x) is pixel (i*sr + t, x).
    row_steps = [_strided(wx, 2, t, n_c, sc) for t in range(c)]
    col_steps = [_strided(wx, 1, t, n_r, sr) for t in range(r)]
    row_summary, col_summary = run_batched(cells, 1, [row_steps, col_steps])

    # RNN2 inputs, projected once per summary: patch (i, j) reads row summaries
    # (i*sr + t, j) and column summaries (i, j*sc + t).
    row_proj, col_proj = cells.project_summaries(row_summary), cells.project_summaries(col_summary)
    rows = [_strided(row_proj, 1, t, n_r, sr) for t in range(r)]
    cols = [_strided(col_proj, 2, t, n_c, sc) for t in range(c)]
    return run_batched(cells, 2, [rows, rows[::-1], cols, cols[::-1]])
