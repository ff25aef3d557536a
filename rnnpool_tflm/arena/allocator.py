"""Replays MicroInterpreter::AllocateTensors on a model of TFLM's single arena.

The arena (SingleArenaBufferAllocator) has a head growing up from its start and a
tail growing down from its end:
  tail - persistent data: the allocator objects themselves, TfLiteEvalTensor and
         NodeAndRegistration arrays, parsed builtin options, kernels' OpData and
         per-channel data, scratch-buffer handles, variables, and the input/output
         TfLiteTensors the interpreter keeps;
  head - the memory plan (activations + kernel scratch), and during preparation the
         scratch-request list and temporary allocations above it.
`arena_used_bytes()` is head + tail once AllocateTensors is done. Allocations are
replayed in TFLM's order with its alignments (the tail moves down to each request's
alignment, so order matters), and every capacity check TFLM makes is repeated, which
also gives the smallest arena that allocates. Addresses are arena offsets; the arena
start is assumed 16-byte aligned (as `alignas(16)` arrays and malloc are).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

from .graph import Graph
from .kernels import KernelMemory, builtin_data
from .planner import ARENA_ALIGNMENT, align_up
from .targets import Target

PLANNER_BYTES_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size(): 16 + 4 + 4 + 12 + 4, any target
MAX_SCRATCH_PER_OP = 12  # kMaxScratchBuffersPerOp


class ArenaTooSmall(Exception):
    pass


@dataclasses.dataclass
class OpTail:
    """Persistent bytes one operator took, alignment padding included."""

    builtin: int = 0
    init: int = 0
    prepare: int = 0

    @property
    def total(self) -> int:
        return self.builtin + self.init + self.prepare


@dataclasses.dataclass
class Replay:
    head: int  # final head: the plan
    tail: int  # final tail usage
    tail_parts: Dict[str, int]  # tail bytes by what they hold
    op_tail: List[OpTail]


class _Arena:
    """SingleArenaBufferAllocator's bookkeeping (offsets from the arena start)."""

    def __init__(self, size: int):
        self.end = size
        self.head = 0
        self.temp = 0
        self.tail = size

    def persistent(self, nbytes: int, alignment: int) -> None:
        at = (self.tail - nbytes) // alignment * alignment
        if at < self.head:
            raise ArenaTooSmall(f"tail allocation of {nbytes} bytes")
        self.tail = at

    def resize_head(self, nbytes: int, alignment: int) -> None:
        start = align_up(0, alignment)
        if self.tail - start < nbytes:
            raise ArenaTooSmall(f"head of {nbytes} bytes")
        self.head = self.temp = start + nbytes

    def temp_alloc(self, nbytes: int, alignment: int) -> None:
        at = align_up(self.temp, alignment)
        if self.tail - at < nbytes:
            raise ArenaTooSmall(f"temporary allocation of {nbytes} bytes")
        self.temp = at + nbytes

    def reset_temps(self) -> None:
        self.temp = self.head

    def available(self, alignment: int) -> int:
        return self.tail // alignment * alignment - align_up(self.temp, alignment)

    @property
    def tail_used(self) -> int:
        return self.end - self.tail


def replay(
    graph: Graph, target: Target, kernels: List[KernelMemory], plan_bytes: int, n_buffers: int, arena_size: int
) -> Replay:
    """Runs the allocation sequence in an arena of `arena_size` bytes.
    Raises ArenaTooSmall where TFLM's AllocateTensors would fail."""
    t = target
    a = _Arena(arena_size)
    parts: Dict[str, int] = {}

    def persist(part: str, nbytes: int, alignment: int) -> None:
        before = a.tail
        a.persistent(nbytes, alignment)
        parts[part] = parts.get(part, 0) + before - a.tail

    def persist_struct(part: str, struct: str, count: int = 1) -> None:
        persist(part, t.size(struct) * count, t.align(struct))

    def temp_tensor(index: int) -> None:
        a.temp_alloc(t.size("TfLiteTensor"), t.align("TfLiteTensor"))
        channels = graph.main.tensors[index].quant_channels
        if channels:
            a.temp_alloc(t.size("TfLiteAffineQuantization"), t.align("TfLiteAffineQuantization"))
            a.temp_alloc(4 + 4 * channels, t.align("TfLiteIntArray"))

    # The allocator objects (MicroAllocator::Create / RecordingMicroAllocator::Create).
    if t.allocator == "recording":
        for struct in ("RecordingSingleArenaBufferAllocator", "GreedyMemoryPlanner", "RecordingMicroAllocator"):
            persist_struct("allocator", struct)
    else:
        for struct in ("SingleArenaBufferAllocator", "GreedyMemoryPlanner", "MicroAllocator"):
            persist_struct("allocator", struct)

    # StartModelAllocation.
    persist_struct("allocator", "MicroBuiltinDataAllocator")
    request = t.size("ScratchBufferRequest")
    a.resize_head(request * MAX_SCRATCH_PER_OP, t.align("ScratchBufferRequest"))
    persist_struct("allocator", "SubgraphAllocations", len(graph.subgraphs))
    for subgraph in graph.subgraphs:
        persist_struct("eval_tensors", "TfLiteEvalTensor", len(subgraph.tensors))
    for subgraph in graph.subgraphs:
        if subgraph.operators:
            persist_struct("nodes", "NodeAndRegistration", len(subgraph.operators))

    op_tail = [OpTail() for _ in graph.main.operators]
    ops = graph.main.operators

    # PrepareNodeAndRegistrationDataFromFlatbuffer: builtin options.
    for op, cost in zip(ops, op_tail):
        layout = builtin_data(op, t)
        if layout:
            before = a.tail
            persist("builtin_data", *layout)
            cost.builtin = before - a.tail

    # InitSubgraphs: OpData.
    for memory, cost in zip(kernels, op_tail):
        before = a.tail
        for nbytes in memory.init:
            persist("op_data", nbytes, ARENA_ALIGNMENT)
        cost.init = before - a.tail

    # PrepareSubgraphs. Temporaries are checked after the node's persistent data, the
    # order that leaves them the least room (kernels interleave the two).
    requests = 0
    for memory, cost in zip(kernels, op_tail):
        before = a.tail
        for nbytes in memory.persistent:
            persist("op_data", nbytes, ARENA_ALIGNMENT)
        cost.prepare = before - a.tail
        for index in memory.temps:
            temp_tensor(index)
        requests += len(memory.scratch)
        a.reset_temps()
        a.resize_head(request * (requests + MAX_SCRATCH_PER_OP), t.align("ScratchBufferRequest"))

    # FinishModelAllocation.
    if requests:
        persist_struct("scratch_handles", "ScratchBufferHandle", requests)
    # CommitStaticMemoryPlan: the planner's bookkeeping lives in temporary memory.
    a.temp_alloc(t.size("size_t") * len(graph.subgraphs), t.align("size_t"))
    n_tensors = sum(len(s.tensors) for s in graph.subgraphs)
    a.temp_alloc(t.size("AllocationInfo") * (n_tensors + requests), t.align("AllocationInfo"))
    offline = graph.offline_offsets
    first_index = 0
    for subgraph in graph.subgraphs:  # AllocateVariables: offline-planned variables live in the plan
        for tensor in subgraph.tensors:
            if tensor.is_variable and (offline is None or offline[first_index + tensor.index] == -1):
                persist("variables", tensor.nbytes, ARENA_ALIGNMENT)
        first_index += len(subgraph.tensors)
    remaining = a.available(ARENA_ALIGNMENT)
    if remaining // PLANNER_BYTES_PER_BUFFER < n_buffers:
        raise ArenaTooSmall(f"planner bookkeeping for {n_buffers} buffers")
    a.reset_temps()
    a.resize_head(0, 1)
    a.resize_head(plan_bytes, ARENA_ALIGNMENT)

    # AllocateTensors: the interpreter's input and output TfLiteTensors.
    for indices in (graph.main.inputs, graph.main.outputs):
        persist("io_tensors", t.pointer_bytes * len(indices), ARENA_ALIGNMENT)
        for index in indices:
            persist_struct("io_tensors", "TfLiteTensor")
            channels = graph.main.tensors[index].quant_channels
            if channels:
                persist_struct("io_tensors", "TfLiteAffineQuantization")
                persist("io_tensors", 4 + 4 * channels, t.align("TfLiteIntArray"))
    return Replay(a.head, a.tail_used, parts, op_tail)


def fits(
    graph: Graph, target: Target, kernels: List[KernelMemory], plan_bytes: int, n_buffers: int, arena_size: int
) -> bool:
    try:
        replay(graph, target, kernels, plan_bytes, n_buffers, arena_size)
        return True
    except ArenaTooSmall:
        return False


def smallest_arena(
    graph: Graph, target: Target, kernels: List[KernelMemory], plan_bytes: int, n_buffers: int, start: int
) -> Optional[int]:
    """The smallest arena size that allocates, found as one would by trial: grow from
    `start` until it fits, then bisect."""

    def ok(size):
        return fits(graph, target, kernels, plan_bytes, n_buffers, size)

    hi = max(start, 16)
    while not ok(hi):
        if hi > 1 << 40:
            return None
        hi *= 2
    lo = 0  # sizes <= lo are treated as failing
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi
