"""An offline memory plan for TFLM: tensor offsets in the arena's head, better than its greedy plan.

TFLM's GreedyMemoryPlanner places buffers largest first into the first gap, which can leave
the head well above the largest set of buffers alive at one operator (Face-M4: 33 % above).
Here the lifetimes are TFLM's own (planner.plan_buffers: one time step per operator) and
several placement orders are tried, each buffer going to the lowest address where it
overlaps no buffer alive at the same time (scratch buffers are reserved too, so that TFLM,
which still places them itself around the fixed tensors, finds the gaps). Every candidate is
scored by replaying TFLM's placement of the whole plan (planner.place_greedy with the tensors
fixed), so the head reported is the head TFLM will use; the best candidate wins, TFLM's own
greedy plan included, so an offline plan is never worse.

In place: a streamed operator whose output only ever overwrites input bytes it has already
read for the last time may have its output overlap its input: with input start I and output
start O the overlap is safe when I - O >= lag. For the RNNPool op the C core states the lag
(rnnpool_s8_inplace_lag, docs/kernel.md "In place"); for a CONV_2D it follows from the raster
order of TFLM's kernels (conv_inplace_lag). An overlap is only offered when the
input is read by no later operator (its lifetime ends at this op), the output is created at
this op, and it lowers the head; `check_plan` rejects any other overlap of tensors alive at
the same time (docs/arena.md, "Offline memory plan").
"""

from __future__ import annotations

import dataclasses
import random
from typing import Dict, List, Optional, Sequence, Tuple

from ..core.errors import RNNPoolError
from .graph import Graph, read_graph
from .kernels import _Op, kernel_memory
from .planner import ARENA_ALIGNMENT, Buffer, place_greedy, plan_buffers
from .targets import get_target

ONLINE = -1
_RANDOM_ORDERS = 48      # extra shuffled placement orders tried after the fixed heuristics


class UnsafePlanError(RNNPoolError):
    """An offline plan overlaps tensors that are alive at the same time, outside a safe in-place pair."""


@dataclasses.dataclass(frozen=True)
class InPlace:
    """Operator `op` may write `output` over `input` when input_start - output_start >= lag."""

    op: int
    input: int
    output: int
    lag: int


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    offsets: Tuple[int, ...]       # per tensor of all subgraphs (TFLM's metadata order); -1: online
    head_bytes: int                # TFLM's head (plan size) with these offsets, its scratch placed around them
    greedy_head_bytes: int         # TFLM's head without an offline plan
    live_bytes: int                # the most bytes (tensors + scratch) alive at one operator
    in_place: Tuple[InPlace, ...]  # overlaps the plan uses
    strategy: str                  # which placement order won
    target: str
    reordered: bool = False        # convert.op_order changed the operator order for it

    def as_dict(self) -> dict:
        return {"target": self.target, "head_bytes": self.head_bytes, "greedy_head_bytes": self.greedy_head_bytes,
                "live_bytes": self.live_bytes, "strategy": self.strategy,
                "in_place": [dataclasses.asdict(p) for p in self.in_place]}


def _scratch(graph: Graph, target) -> List[Tuple[int, int]]:
    return [(op.index, nbytes) for op in graph.main.operators for nbytes in kernel_memory(graph, op, target).scratch]


def _lag(graph: Graph, op, target) -> Optional[int]:
    """The operator's in-place lag, None when it cannot run in place."""
    if op.name == "RNNPool":
        from .rnnpool_buffers import rnnpool_inplace_lag
        return rnnpool_inplace_lag(_Op(graph, op, target))
    if op.name == "CONV_2D":
        return conv_inplace_lag(graph, op)
    from ..core.contract import inverted_residual_contract
    if op.is_custom and op.name == inverted_residual_contract().custom_code:
        return inverted_residual_inplace_lag(graph, op)
    return None


def _row_lag(out_rows: int, out_row_bytes: int, first_future_read) -> Optional[int]:
    """max over output rows r of (end of row r - first input byte still to be read while row r
    is written); rows after which nothing is read again give no constraint."""
    lags = [(r + 1) * out_row_bytes - first_future_read(r) for r in range(out_rows)
            if first_future_read(r) is not None]
    return max(lags) if lags else None


def inverted_residual_inplace_lag(graph: Graph, op) -> Optional[int]:
    """In-place lag of the InvertedResidual op, from the loop of invres_s8_eval
    (custom_ops/inverted_residual/inverted_residual_s8.c), the same on every target: for output
    row r it first expands the input rows its 3x3 window needs and has not yet expanded (up to
    input row r*s - pad_top + 2; they go to the ring in scratch), then writes row r, reading
    the residual's input row r while it does. So while row r is written, the input still to be
    read starts at row r (residual) or else at row r*s - pad_top + 3 (the next expansion; none
    past the last row). None for batch > 1 or unreadable options."""
    from flatbuffers import flexbuffers
    tensors = graph.main.tensors
    x, y = (tensors[i] if i >= 0 else None for i in (op.inputs[0], op.outputs[0]))
    if x is None or y is None or len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1:
        return None
    try:
        options = flexbuffers.Loads(op.custom_options or b"")
        stride, residual = int(options["stride"]), bool(options["residual"])
    except Exception:
        return None
    _, rows, cols, cin = x.shape
    _, out_rows, out_cols, cout = y.shape
    if stride not in (1, 2) or out_rows != (rows + stride - 1) // stride:
        return None
    in_row = cols * cin
    pad_top = max((out_rows - 1) * stride + 3 - rows, 0) // 2

    def first_future_read(r: int) -> Optional[int]:
        if residual:
            return r * in_row
        next_row = r * stride - pad_top + 3
        return next_row * in_row if next_row < rows else None

    return _row_lag(out_rows, out_cols * cout, first_future_read)


def conv_inplace_lag(graph: Graph, op) -> Optional[int]:
    """In-place lag of a CONV_2D that both of TFLM's int8 kernels run as a raster walk: the
    reference ConvPerChannel (x86-64) and CMSIS-NN's arm_convolve_s8 (the M4 wrapper's choice
    for a kernel taller than 1 on an input taller than 1, neither 1x1 nor 1xN) visit output
    pixels row by row and write a pixel only after reading its window (CMSIS-NN: after the
    windows of a pair of pixels). While any pixel of output row r is written, every later read
    lies in the windows of rows >= r, which start at input row max(0, r*s - pad_top); so row
    r's end must not pass that row's start:
        lag = max over r of ((r + 1) * Wo * Co - max(0, r * s - pad_top) * W * Ci)   bytes.
    None (never in place) for anything else: batch > 1, grouped, dilated, non-int8, 1x1 or
    1xN convolutions (CMSIS-NN runs those with other functions)."""
    tensors = graph.main.tensors
    x, w, y = (tensors[i] if i >= 0 else None for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if x is None or w is None or y is None or len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        return None
    o = op.options
    if {x.dtype, w.dtype, y.dtype} != {9} or x.shape[0] != 1 or w.shape[3] != x.shape[3] or \
            o.get("DilationHFactor", 1) != 1 or o.get("DilationWFactor", 1) != 1:
        return None
    _, rows, cols, cin = x.shape
    _, out_rows, out_cols, cout = y.shape
    kh, stride = w.shape[1], int(o.get("StrideH", 1))
    if kh < 2 or rows < 2 or stride < 1:
        return None
    pad_top = max((out_rows - 1) * stride + kh - rows, 0) // 2 if o.get("Padding") == 0 else 0   # SAME: 0
    return _row_lag(out_rows, out_cols * cout, lambda r: max(0, r * stride - pad_top) * cols * cin)


def in_place_candidates(graph: Graph, target="cortex-m4") -> List[InPlace]:
    """Input/output pairs that may overlap: a streamed op (RNNPool) whose input is read by no
    later operator and is no subgraph output."""
    target = get_target(target)
    sg = graph.main
    last_reader: Dict[int, int] = {}
    for op in sg.operators:
        for t in op.inputs:
            if t >= 0:
                last_reader[t] = op.index
    pairs = []
    for op in sg.operators:
        if len(op.outputs) != 1 or not op.inputs or op.inputs[0] < 0:
            continue
        x, y = op.inputs[0], op.outputs[0]
        if last_reader.get(x) != op.index or x in sg.outputs or x == y or list(op.inputs).count(x) != 1:
            continue
        lag = _lag(graph, op, target)
        if lag is not None:
            pairs.append(InPlace(op.index, x, y, lag))
    return pairs


def _overlap_ok(a: Buffer, b: Buffer, pairs: Dict[Tuple[int, int], InPlace]) -> bool:
    """Whether buffers a and b (alive at a common step) may share addresses as placed."""
    if a.offset >= b.end or b.offset >= a.end:
        return True
    if a.kind != "tensor" or b.kind != "tensor":
        return False
    for x, y in ((a, b), (b, a)):
        pair = pairs.get((x.ref, y.ref))
        if pair is not None and x.last == y.first == pair.op + 1 and x.offset - y.offset >= pair.lag:
            return True
    return False


def _times_meet(a: Buffer, b: Buffer) -> bool:
    return a.first <= b.last and b.first <= a.last


def _place(buffers: List[Buffer], order: Sequence[int], pairs: Dict[Tuple[int, int], InPlace]) -> None:
    """Lowest-address first fit in `order`, overlaps allowed only for in-place pairs."""
    placed: List[Buffer] = []
    for i in order:
        b = buffers[i]
        meeting = [p for p in placed if _times_meet(p, b)]
        candidates = {0} | {p.end for p in meeting}
        for p in meeting:   # in-place positions: the output at (input - lag) rounded down, or the reverse
            if b.kind == "tensor" and p.kind == "tensor":
                if (p.ref, b.ref) in pairs:
                    candidates.add(max(0, (p.offset - pairs[(p.ref, b.ref)].lag) // ARENA_ALIGNMENT * ARENA_ALIGNMENT))
                if (b.ref, p.ref) in pairs:
                    lag = pairs[(b.ref, p.ref)].lag
                    candidates.add(max(0, -(-(p.offset + lag) // ARENA_ALIGNMENT) * ARENA_ALIGNMENT))
        for offset in sorted(candidates):
            b.offset = offset
            if all(_overlap_ok(b, p, pairs) for p in meeting):
                break
        placed.append(b)


def _orders(buffers: List[Buffer]) -> List[Tuple[str, List[int]]]:
    n = range(len(buffers))
    size = [b.size for b in buffers]
    span = [b.last - b.first + 1 for b in buffers]
    orders = [("size", sorted(n, key=lambda i: (-size[i], buffers[i].first))),
              ("start", sorted(n, key=lambda i: (buffers[i].first, -size[i]))),
              ("span", sorted(n, key=lambda i: (-span[i], -size[i]))),
              ("area", sorted(n, key=lambda i: (-size[i] * span[i], buffers[i].first)))]
    rng = random.Random(0)
    for k in range(_RANDOM_ORDERS):
        weights = [size[i] * rng.uniform(0.3, 1.7) for i in n]
        orders.append((f"random-{k}", sorted(n, key=lambda i: -weights[i])))
    return orders


def _fresh(buffers: List[Buffer]) -> List[Buffer]:
    return [dataclasses.replace(b, offset=-1, fixed=False) for b in buffers]


def _tflm_head(buffers: List[Buffer], tensor_offsets: Dict[int, int]) -> int:
    """TFLM's head with these tensors fixed and the scratch placed by its greedy planner."""
    replay = [dataclasses.replace(b, offset=tensor_offsets[b.ref], fixed=True) if b.kind == "tensor"
              else dataclasses.replace(b, offset=-1, fixed=False) for b in buffers]
    return place_greedy(replay)


def live_bytes(buffers: Sequence[Buffer]) -> int:
    """The most planned bytes alive at one step: a plan without overlaps needs at least this."""
    steps = {s for b in buffers for s in range(b.first, b.last + 1)}
    return max((sum(b.size for b in buffers if b.alive_at(s)) for s in steps), default=0)


def _search(base: List[Buffer], allowed: Sequence[InPlace]):
    """(head, order name, tensor offsets, overlaps used) of the best placement order with these
    in-place pairs allowed; ties keep the earlier order."""
    pairs = {(p.input, p.output): p for p in allowed}
    best = None
    for name, order in _orders(base):
        trial = _fresh(base)
        _place(trial, order, pairs)
        offsets = {b.ref: b.offset for b in trial if b.kind == "tensor"}
        head = _tflm_head(base, offsets)
        if best is None or head < best[0]:
            best = (head, name, offsets, tuple(p for p in allowed if _uses(p, offsets, trial)))
    return best


def plan_memory(model, target="cortex-m4", in_place: bool = True) -> MemoryPlan:
    """The best offline plan found for `model` (.tflite bytes or arena.Graph) on `target`.
    Overlaps are used only where they lower the head: a plan with overlaps must beat the best
    plan without, and each overlap it uses is dropped again when the head does not grow
    without it."""
    graph = model if isinstance(model, Graph) else read_graph(model)
    target = get_target(target)
    base = plan_buffers(graph.main, _scratch(graph, target))
    greedy = _fresh(base)
    greedy_head = place_greedy(greedy)
    best = (greedy_head, "tflm-greedy", {b.ref: b.offset for b in greedy if b.kind == "tensor"}, ())
    plain = _search(base, ())
    if plain[0] < best[0]:
        best = plain
    candidates = tuple(in_place_candidates(graph, target)) if in_place else ()
    if candidates:
        overlapped = _search(base, candidates)
        if overlapped[0] < best[0]:
            for pair in overlapped[3]:
                fewer = _search(base, tuple(p for p in overlapped[3] if p != pair))
                if fewer[0] <= overlapped[0]:
                    overlapped = fewer
            best = overlapped
    head, strategy, offsets, used = best
    all_offsets = [ONLINE] * sum(len(s.tensors) for s in graph.subgraphs)
    for b in base:
        if b.kind == "tensor":
            all_offsets[b.ref] = offsets[b.ref]
    plan = MemoryPlan(tuple(all_offsets), head, greedy_head, live_bytes(base), used, strategy, target.name)
    check_plan(graph, plan.offsets, target)
    return plan


def _uses(pair: InPlace, offsets: Dict[int, int], buffers: List[Buffer]) -> bool:
    by_ref = {b.ref: b for b in buffers if b.kind == "tensor"}
    x, y = by_ref.get(pair.input), by_ref.get(pair.output)
    return x is not None and y is not None and not (x.offset >= y.end or y.offset >= x.end)


def check_plan(model, offsets: Optional[Sequence[int]] = None, target="cortex-m4") -> List[InPlace]:
    """Checks an offline plan (`offsets`, default: the model's own): one offset per tensor, only
    planned tensors offset (never constants or variables), non-negative and 16-byte aligned,
    and no two tensors alive at the same step overlapping, except an input and output of an
    in-place capable op placed at its lag. Returns the in-place overlaps the plan uses;
    UnsafePlanError names the first violation."""
    graph = model if isinstance(model, Graph) else read_graph(model)
    target = get_target(target)
    if offsets is None:
        offsets = graph.offline_offsets
        if offsets is None:
            raise RNNPoolError("the model has no offline memory plan (OfflineMemoryAllocation metadata)")
    total = sum(len(s.tensors) for s in graph.subgraphs)
    if len(offsets) != total:
        raise UnsafePlanError(f"offline plan: {len(offsets)} offsets for {total} tensors")
    sg = graph.main
    for t in sg.tensors:
        value = offsets[t.index]
        if value == ONLINE:
            continue
        if t.has_data or t.is_variable or t.nbytes == 0:
            kind = "a constant" if t.has_data else "a variable" if t.is_variable else "an empty tensor"
            raise UnsafePlanError(f"offline plan: tensor {t.index} ({t.name}) is {kind} but has offset {value}")
        if value < 0 or value % ARENA_ALIGNMENT:
            raise UnsafePlanError(f"offline plan: tensor {t.index} ({t.name}) has offset {value} "
                                  f"(expected -1 or a non-negative multiple of {ARENA_ALIGNMENT})")
    if any(v != ONLINE for v in offsets[len(sg.tensors):]):
        raise UnsafePlanError("offline plan: only the first subgraph's tensors may be planned offline")
    buffers = [b for b in plan_buffers(sg, [], offsets[:len(sg.tensors)]) if b.fixed]
    pairs = {(p.input, p.output): p for p in in_place_candidates(graph, target)}
    used = []
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            if not _times_meet(a, b) or a.offset >= b.end or b.offset >= a.end:
                continue
            if not _overlap_ok(a, b, pairs):
                raise UnsafePlanError(_overlap_message(graph, a, b, pairs))
            used.append(pairs.get((a.ref, b.ref)) or pairs[(b.ref, a.ref)])
    return used


def check_own_plan(model) -> None:
    """check_plan on the model's own offline plan, when it has one."""
    graph = model if isinstance(model, Graph) else read_graph(model)
    if graph.offline_offsets is not None:
        check_plan(graph)


def _overlap_message(graph: Graph, a: Buffer, b: Buffer, pairs) -> str:
    names = {t.index: t.name for t in graph.main.tensors}
    step = max(a.first, b.first)
    text = (f"offline plan overlaps live tensors: tensor {a.ref} ({names[a.ref]}, {a.offset:,}..{a.end:,}) and "
            f"tensor {b.ref} ({names[b.ref]}, {b.offset:,}..{b.end:,}) are both alive at operator {step - 1}")
    for x, y in ((a, b), (b, a)):
        pair = pairs.get((x.ref, y.ref))
        if pair is not None:
            text += (f"; operator {pair.op} may write its output over its input only when input_start - "
                     f"output_start >= {pair.lag} (here {x.offset - y.offset})")
    return text
