"""TFLM's offline memory plan in a .tflite model: the `OfflineMemoryAllocation` metadata.

Format (TFLM micro/docs/memory_management.md, read by AllocationInfoBuilder::
GetOfflinePlannedOffsets in micro_allocation_info.cc): a metadata entry named
"OfflineMemoryAllocation" whose buffer holds little-endian int32 words
    [format version, number of subgraphs, n, offset of tensor 0, ..., offset of tensor n-1]
with n the number of tensors of all subgraphs together (TFLM rejects any other n). An offset
is a byte offset from the start of the arena's head; ONLINE (-1) leaves the tensor to TFLM's
greedy planner. TFLM ignores the offsets of tensors it does not plan (constants, empty
tensors) but gives an offset to a variable tensor, so those must stay ONLINE here. TFLM reads
the buffer as uint32_t words; tflite.model.write_model aligns every buffer's data to 16 bytes.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from . import model as tfm
from .model import ModelError, schema

METADATA_NAME = "OfflineMemoryAllocation"
FORMAT_VERSION = 1  # word 0; TFLM does not read it
ONLINE = -1  # kOnlinePlannedBuffer
_HEADER_WORDS = 3


def encode(offsets: Sequence[int], subgraphs: int = 1) -> bytes:
    """The metadata buffer's bytes for these per-tensor offsets (ONLINE or >= 0)."""
    for i, value in enumerate(offsets):
        if value != ONLINE and not 0 <= value < 2**31:
            raise ModelError(f"offline plan: tensor {i} has offset {value} (expected -1 or 0 .. 2^31-1)")
    words = [FORMAT_VERSION, subgraphs, len(offsets), *offsets]
    return np.asarray(words, dtype="<i4").tobytes()


def decode(data: bytes) -> List[int]:
    """The per-tensor offsets of a metadata buffer; ModelError when it is malformed."""
    data = bytes(data)
    if len(data) % 4 or len(data) < 4 * _HEADER_WORDS:
        raise ModelError(
            f"offline plan: metadata buffer of {len(data)} bytes is not {_HEADER_WORDS} or more int32 words"
        )
    words = np.frombuffer(data, dtype="<i4").astype(int).tolist()
    count = words[2]
    if count != len(words) - _HEADER_WORDS:
        raise ModelError(
            f"offline plan: the header announces {count} offsets, the buffer holds {len(words) - _HEADER_WORDS}"
        )
    offsets = words[_HEADER_WORDS:]
    bad = [(i, v) for i, v in enumerate(offsets) if v < ONLINE]
    if bad:
        raise ModelError(f"offline plan: tensor {bad[0][0]} has offset {bad[0][1]}")
    return offsets


def _entry(model: schema.ModelT) -> Optional[schema.MetadataT]:
    for entry in model.metadata or []:
        if tfm._text(entry.name) == METADATA_NAME:
            return entry
    return None


def read_plan(model: schema.ModelT) -> Optional[List[int]]:
    """The model's offline offsets (one per tensor of all subgraphs), None without a plan."""
    entry = _entry(model)
    if entry is None:
        return None
    if not 0 <= entry.buffer < len(model.buffers or []):
        raise ModelError(f"offline plan: metadata refers to buffer {entry.buffer} of {len(model.buffers or [])}")
    data = model.buffers[entry.buffer].data
    offsets = decode(bytes(np.asarray(data if data is not None else [], np.uint8)))
    tensors = sum(len(sg.tensors or []) for sg in model.subgraphs)
    if len(offsets) != tensors:
        raise ModelError(f"offline plan: {len(offsets)} offsets for {tensors} tensors (TFLM rejects the model)")
    return offsets


def set_plan(model: schema.ModelT, offsets: Optional[Sequence[int]]) -> None:
    """Writes (or, with None, removes) the model's offline plan, in place. Tensors are never
    renumbered here: a plan is only valid for the exact tensor list it was made for."""
    entry = _entry(model)
    if offsets is None:
        if entry is not None:
            model.metadata.remove(entry)
            _drop_buffer(model, entry.buffer)
        return
    tensors = sum(len(sg.tensors or []) for sg in model.subgraphs)
    if len(offsets) != tensors:
        raise ModelError(f"offline plan: {len(offsets)} offsets for {tensors} tensors")
    buffer = schema.BufferT()  # write_model puts its data 16-byte aligned
    buffer.data = np.frombuffer(encode(offsets, len(model.subgraphs)), np.uint8)
    if entry is None:
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        model.metadata = (model.metadata or []) + [entry]
    else:
        _drop_buffer(model, entry.buffer, entry)
    model.buffers.append(buffer)
    entry.buffer = len(model.buffers) - 1


def _drop_buffer(model: schema.ModelT, index: int, replaced: Optional[schema.MetadataT] = None) -> None:
    """Removes the plan's old buffer unless something else uses it: popped when last, else
    emptied (buffers are never renumbered here)."""
    users = [t for sg in model.subgraphs for t in sg.tensors or [] if t.buffer == index]
    users += [m for m in model.metadata or [] if m.buffer == index and m is not replaced]
    if users or index == 0 or not 0 <= index < len(model.buffers):
        return
    if index == len(model.buffers) - 1:
        model.buffers.pop()
    else:
        model.buffers[index] = schema.BufferT()


def write_with_plan(tflite: bytes, offsets: Optional[Sequence[int]]) -> bytes:
    """`tflite` (bytes) with its offline plan replaced by `offsets` (None: removed)."""
    model = tfm.read_model(tflite)
    set_plan(model, offsets)
    return tfm.write_model(model)


__all__ = ["METADATA_NAME", "ONLINE", "encode", "decode", "read_plan", "set_plan", "write_with_plan"]
