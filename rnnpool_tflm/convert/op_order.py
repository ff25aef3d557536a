"""A memory-aware operator order: run each op as soon as it frees more than it allocates.

TFLM runs operators in the model's order, and a tensor lives from its producer to its last
reader. The TF converter's order can keep large tensors alive while small side branches wait
(Face-M4: every block's output stays alive until the detection heads run at the end). This
pass list-schedules the graph: among the operators whose inputs are ready, the one that frees
the most bytes net of what it allocates goes next (ties: the model's order). Only the order
changes: every op computes the same bytes from the same inputs. The convert step keeps the
new order only when the memory plan of the reordered model is smaller.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from ..tflite import model as tfm

# Ops with side effects or control flow: their order is not only their data dependencies.
_ORDERED_OPS = {"CALL_ONCE", "ASSIGN_VARIABLE", "READ_VARIABLE", "VAR_HANDLE", "IF", "WHILE"}


def _nbytes(tensor) -> int:
    size = {
        tfm.TensorType.INT8: 1,
        tfm.TensorType.UINT8: 1,
        tfm.TensorType.INT16: 2,
        tfm.TensorType.FLOAT32: 4,
        tfm.TensorType.INT32: 4,
    }.get(tensor.type, 8)
    count = 1
    for d in tfm.tensor_shape(tensor):
        count *= max(int(d), 0)
    return count * size


def memory_order(model: tfm.schema.ModelT) -> Optional[List[int]]:
    """The reordered operator indices of subgraph 0, or None when the graph must keep its
    order (several subgraphs, variables, side-effecting or control-flow ops)."""
    if len(model.subgraphs) != 1:
        return None
    sg = model.subgraphs[0]
    ops = list(sg.operators or [])
    if any(t.isVariable for t in sg.tensors) or any(
        tfm.opcode_name(model, op.opcodeIndex) in _ORDERED_OPS for op in ops
    ):
        return None
    constant = {i for i, t in enumerate(sg.tensors) if tfm.constant_data(model, t) is not None}
    producer: Dict[int, int] = {}
    for o, op in enumerate(ops):
        for t in op.outputs:
            if t >= 0:
                producer[int(t)] = o
    readers: Dict[int, int] = {}
    for op in ops:
        for t in set(int(t) for t in op.inputs if t >= 0):
            readers[t] = readers.get(t, 0) + 1
    outputs = {int(t) for t in sg.outputs}
    done: set = set()
    order: List[int] = []
    while len(order) < len(ops):
        best, best_score = None, None
        for o, op in enumerate(ops):
            if o in done:
                continue
            ins = {int(t) for t in op.inputs if t >= 0}
            if any(producer.get(t, -1) not in done and t in producer for t in ins):
                continue
            freed = sum(
                _nbytes(sg.tensors[t]) for t in ins if readers[t] == 1 and t not in constant and t not in outputs
            )
            score = freed - sum(_nbytes(sg.tensors[int(t)]) for t in op.outputs if t >= 0)
            if best_score is None or score > best_score:
                best, best_score = o, score
        if best is None:  # a cycle: not a valid graph to reorder
            return None
        done.add(best)
        order.append(best)
        for t in {int(t) for t in ops[best].inputs if t >= 0}:
            readers[t] -= 1
    return order


def reorder(tflite: bytes) -> Optional[bytes]:
    """`tflite` with subgraph 0's operators in memory_order, None when unchanged or not allowed."""
    model = tfm.read_model(tflite)
    order = memory_order(model)
    if order is None or order == list(range(len(order))):
        return None
    sg = model.subgraphs[0]
    sg.operators = [sg.operators[o] for o in order]
    return tfm.write_model(model)
