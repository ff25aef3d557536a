"""Rewrites MobileNetV2 blocks of a converted model into InvertedResidual custom ops.

The TF converter emits an inverted-residual block as

    [CONV_2D 1x1 (expand)] -> DEPTHWISE_CONV_2D 3x3 SAME -> CONV_2D 1x1 (project) [-> ADD(x, .)]

and TFLM then holds the expanded map and the depthwise output in the arena, whole.
The InvertedResidual op (docs/inverted_residual.md) computes the block from a ring of
expanded rows with TFLM's arithmetic, so the rewrite leaves the output bytes unchanged.

Every DEPTHWISE_CONV_2D is the centre of at most one chain: its input's producer is the
expansion when that is a CONV_2D whose output nothing else reads, its output's only reader
the projection, and the projection's only reader the residual ADD when that adds the
block input. tflite.inverted_residual_op.fuse_block does the rewrite and checks it
against the op's contract (shapes, channel limits, quantization, multiplier ranges);
when it refuses the whole chain, shorter forms are tried (without the ADD, without the
expansion), and a chain nothing can be made of stays as it is, with the reason recorded.
Weights, biases and quantizations are carried over unchanged; tensors, buffers and
operator codes left without a user are removed.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

from ..core.errors import RNNPoolError
from ..tflite import inverted_residual_op as irop
from ..tflite import model as tfm

_CONV, _DEPTHWISE, _ADD = "CONV_2D", "DEPTHWISE_CONV_2D", "ADD"


@dataclasses.dataclass(frozen=True)
class FusedBlock:
    """One InvertedResidual op the pass made."""

    ops: Tuple[str, ...]  # the builtin ops it replaced, in order
    output: str  # its output tensor's name
    output_shape: Tuple[int, ...]
    left_out: str = ""  # why part of the chain stayed outside (the ADD or the expansion), if any

    def describe(self) -> str:
        text = f"{' -> '.join(self.ops)} => InvertedResidual {self.output} {list(self.output_shape)}"
        return text + (f" ({self.left_out})" if self.left_out else "")


@dataclasses.dataclass(frozen=True)
class SkippedChain:
    """A depthwise convolution whose chain stayed builtin ops, and why."""

    depthwise_output: str
    reason: str

    def describe(self) -> str:
        return f"DEPTHWISE_CONV_2D {self.depthwise_output}: not fused ({self.reason})"


@dataclasses.dataclass(frozen=True)
class FusionReport:
    fused: Tuple[FusedBlock, ...]
    skipped: Tuple[SkippedChain, ...]

    def format(self) -> str:
        lines = [f"fused: {len(self.fused)} inverted-residual block(s) into InvertedResidual ops"]
        lines += [f"  {b.describe()}" for b in self.fused]
        lines += [f"  {s.describe()}" for s in self.skipped]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "fused": [dataclasses.asdict(b) for b in self.fused],
            "skipped": [dataclasses.asdict(s) for s in self.skipped],
        }


def fuse_inverted_residuals(tflite: bytes) -> Tuple[bytes, FusionReport]:
    """The model with every fusable block rewritten (see the module docstring), and the report."""
    m = tfm.read_model(tflite, "model")
    fused: List[FusedBlock] = []
    skipped: List[SkippedChain] = []
    for s_idx in range(len(m.subgraphs)):
        m = _fuse_subgraph(m, s_idx, fused, skipped)
    if not fused:
        return tflite, FusionReport((), tuple(skipped))
    _drop_unused_opcodes(m)
    return tfm.write_model(m), FusionReport(tuple(fused), tuple(skipped))


def _fuse_subgraph(m, s_idx: int, fused: List[FusedBlock], skipped: List[SkippedChain]):
    """Fuses chains in operator order. A fusion replaces its chain's ops by one op at the
    chain's first position, so the depthwise ops already looked at stay the first ones."""
    settled = 0  # depthwise ops at the front that were looked at and stay
    while True:
        sg = m.subgraphs[s_idx]
        depthwise = [i for i, op in enumerate(sg.operators or []) if _name(m, op) == _DEPTHWISE]
        if settled >= len(depthwise):
            return m
        dw_index = depthwise[settled]
        trial, block, error = _fuse_first_form(m, s_idx, dw_index)
        if trial is None:
            skipped.append(SkippedChain(_label(sg, int(sg.operators[dw_index].outputs[0])), error))
            settled += 1
            continue
        fused.append(block)
        m = trial


def _fuse_first_form(m, s_idx: int, dw_index: int):
    """(fused model copy, FusedBlock, "") for the longest form of the chain around the
    depthwise op that the op accepts, or (None, None, why the full chain was refused)."""
    sg = m.subgraphs[s_idx]
    expand, project, add = _chain(m, sg, dw_index)
    if project is None:
        return None, None, "its output is not read by one 1x1 CONV_2D only"
    forms = [(e, a) for e in dict.fromkeys((expand, None)) for a in dict.fromkeys((add, None))]
    first_error = ""
    for e, a in forms:
        block = irop.BlockOps(e, dw_index, project, a)
        names = tuple(_name(m, sg.operators[i]) for i in block.indices())
        trial = tfm.read_model(tfm.write_model(m))  # fuse_block edits in place: try on a copy
        try:
            at = irop.fuse_block(trial, s_idx, block)
        except RNNPoolError as exc:  # ModelError: the chain or the op's contract; others: e.g. a float tensor
            first_error = first_error or _reason(exc)
            continue
        t_sg = trial.subgraphs[s_idx]
        out = int(t_sg.operators[at].outputs[0])
        left = [
            what
            for what, full, used in (("ADD", add, a), ("expansion", expand, e))
            if full is not None and used is None
        ]
        note = f"{' and '.join(left)} left out: {first_error}" if left else ""
        return trial, FusedBlock(names, _label(t_sg, out), tfm.tensor_shape(t_sg.tensors[out]), note), ""
    return None, None, first_error


def _chain(m, sg, dw_index: int) -> Tuple[Optional[int], Optional[int], Optional[int]]:
    """(expand, project, add) operator indices around a depthwise op (None where absent),
    from the graph's shape: the expansion is the 1x1 CONV_2D producing the depthwise input,
    the projection the only reader of the depthwise output, the ADD a reader of the projection
    that adds the block input. Whether the chain may be fused (other readers of the expanded
    map or the projection, strides, quantization, ...) fuse_block judges."""
    ops = sg.operators
    producers: Dict[int, int] = {}
    readers: Dict[int, List[int]] = {}
    for i, op in enumerate(ops):
        for t in op.outputs if op.outputs is not None else []:
            producers[int(t)] = i
        for t in set(int(t) for t in (op.inputs if op.inputs is not None else []) if t >= 0):
            readers.setdefault(t, []).append(i)
    dw = ops[dw_index]
    expand = producers.get(int(dw.inputs[0]))
    if (
        expand is None
        or _name(m, ops[expand]) != _CONV
        or tfm.tensor_shape(sg.tensors[int(ops[expand].inputs[1])])[1:3] != (1, 1)
    ):
        expand = None
    dw_readers = readers.get(int(dw.outputs[0]), [])
    if (
        int(dw.outputs[0]) in {int(t) for t in sg.outputs}
        or len(dw_readers) != 1
        or _name(m, ops[dw_readers[0]]) != _CONV
    ):
        return expand, None, None
    project = dw_readers[0]
    projected = int(ops[project].outputs[0])
    x = int(ops[expand].inputs[0]) if expand is not None else int(dw.inputs[0])
    adds = [
        i
        for i in readers.get(projected, [])
        if _name(m, ops[i]) == _ADD and sorted(int(t) for t in ops[i].inputs) == sorted((x, projected))
    ]
    return expand, project, adds[0] if len(adds) == 1 else None


def _reason(exc: Exception) -> str:
    """fuse_block's message without its "cannot fuse ops [..]: " prefix (indices of a copy)."""
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("cannot fuse ops") and ": " in text else text


def _name(m, op) -> str:
    return tfm.opcode_name(m, op.opcodeIndex)


def _label(sg, tensor: int) -> str:
    return tfm._text(sg.tensors[tensor].name) or f"tensor {tensor}"


def _drop_unused_opcodes(m) -> None:
    """Operator codes no operator uses any more (the fused builtins), renumbered."""
    used = sorted({int(op.opcodeIndex) for sg in m.subgraphs for op in sg.operators or []})
    remap = {old: new for new, old in enumerate(used)}
    m.operatorCodes = [m.operatorCodes[i] for i in used]
    for sg in m.subgraphs:
        for op in sg.operators or []:
            op.opcodeIndex = remap[int(op.opcodeIndex)]
