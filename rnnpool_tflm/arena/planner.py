"""TFLM's static memory plan: buffer lifetimes and the greedy placement.

Lifetimes follow AllocationInfoBuilder (micro_allocation_info.cc): every operator opens
a new "allocation scope"; subgraph inputs are created at scope 0; an operator's outputs
are created at its scope; a tensor lives until the last scope that reads or writes it;
subgraph outputs live to the end; a scratch buffer lives only at its operator's scope.

The placement re-implements GreedyMemoryPlanner (memory_planner/greedy_memory_planner.cc)
from its description: buffers with an offline offset (the model's OfflineMemoryAllocation
metadata) are placed first at that offset, in the order added; the others (sizes rounded up
to 16 bytes) are placed largest first
(equal sizes: the one added last first, as the planner's reversed fill and stable sort
order them); each goes into the first gap, scanning placed buffers that overlap it in
time in address order, that is large enough; the plan's size is the highest end address.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import List, Optional, Sequence, Tuple

from .graph import Subgraph

ARENA_ALIGNMENT = 16  # MicroArenaBufferAlignment()


def align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


@dataclasses.dataclass
class Buffer:
    """One buffer the planner places: a tensor or a scratch request."""

    kind: str  # "tensor" or "scratch"
    ref: int  # tensor index, or scratch request number
    op: Optional[int]  # operator owning a scratch buffer
    nbytes: int  # requested bytes
    first: int  # allocation scope it is created at
    last: int  # last scope it is used at
    offset: int = -1
    fixed: bool = False  # offset given by the model's offline plan

    @property
    def size(self) -> int:
        return align_up(self.nbytes, ARENA_ALIGNMENT)

    @property
    def end(self) -> int:
        return self.offset + self.size

    def alive_at(self, scope: int) -> bool:
        return self.first <= scope <= self.last


def plan_buffers(
    subgraph: Subgraph, scratch: Sequence[Tuple[int, int]], offline: Optional[Sequence[int]] = None
) -> List[Buffer]:
    """The planner's buffers in the order TFLM adds them: planned tensors by index,
    then scratch requests in request order. `scratch`: (operator index, bytes) pairs.
    `offline`: the model's offline offsets per tensor (-1: online): a planned tensor with an
    offset is fixed there, and so is a variable tensor (TFLM plans it then, instead of
    giving it persistent memory)."""
    first = [-1] * len(subgraph.tensors)
    last = [-1] * len(subgraph.tensors)
    scope = 0

    def created(index, at):
        if first[index] == -1:
            first[index] = at

    def used(index, at):
        last[index] = at

    for index in subgraph.inputs:
        created(index, scope)
        used(index, scope)
    op_scope = []
    for op in subgraph.operators:
        scope += 1
        op_scope.append(scope)
        for index in op.outputs:
            created(index, scope)
        for index in op.inputs:
            if index >= 0:
                used(index, scope)
        for index in op.outputs:
            used(index, scope)
    for index in subgraph.outputs:
        created(index, scope)
        used(index, scope)

    buffers = []
    for tensor in subgraph.tensors:
        offset = offline[tensor.index] if offline is not None else -1
        if not tensor.has_data and (not tensor.is_variable or offset != -1) and tensor.nbytes != 0:
            buffers.append(
                Buffer(
                    "tensor",
                    tensor.index,
                    None,
                    tensor.nbytes,
                    first[tensor.index],
                    last[tensor.index],
                    offset,
                    offset != -1,
                )
            )
    for number, (op_index, nbytes) in enumerate(scratch):
        at = op_scope[op_index]
        buffers.append(Buffer("scratch", number, op_index, nbytes, at, at))
    return buffers


def place_greedy(buffers: List[Buffer]) -> int:
    """Sets every buffer's offset as GreedyMemoryPlanner does; returns the plan size.
    Fixed (offline) buffers go first, in the order added, at their offsets; then the others,
    largest first, into the gaps they leave."""
    if not buffers:
        return 0
    fixed = [i for i, b in enumerate(buffers) if b.fixed]
    order = fixed + sorted((i for i, b in enumerate(buffers) if not b.fixed), key=lambda i: (-buffers[i].size, -i))
    placed: List[Buffer] = []  # in address order; equal offsets keep insertion order
    offsets: List[int] = []
    for i in order:
        wanted = buffers[i]
        if wanted.fixed:
            at = bisect.bisect_right(offsets, wanted.offset)
            offsets.insert(at, wanted.offset)
            placed.insert(at, wanted)
            continue
        candidate = 0
        prior: Optional[Buffer] = None
        position = 0  # where in `placed` the scan for the next overlapping buffer resumes
        while True:
            following = None
            while position < len(placed):
                entry = placed[position]
                position += 1
                if entry.first <= wanted.last and wanted.first <= entry.last:
                    following = entry
                    break
            if prior is not None:
                candidate = max(candidate, prior.end)
            if following is None or following.offset - candidate >= wanted.size:
                break
            prior = following
        wanted.offset = candidate
        at = bisect.bisect_right(offsets, candidate)
        offsets.insert(at, candidate)
        placed.insert(at, wanted)
    return max(buffer.end for buffer in buffers)
