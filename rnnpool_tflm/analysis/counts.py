"""Parameters, MACs and activation memory of a Keras model, and its peak RAM under the
paper's convention (Saha et al. 2020, section 4 and appendix E.2).

Counting (what the paper's tables count):
* parameters: every weight except BatchNormalization's moving statistics (PyTorch's
  ``parameters()``: BN contributes gamma and beta); quantizer variables of a QAT model
  are not parameters.
* MACs (MAdds): convolutions out_h*out_w*c_out*k_h*k_w*c_in/groups, depthwise
  out_h*out_w*c*k_h*k_w, Dense in*out; BN, activations, additions, pooling and copies
  count 0. RNNPool counts the naive per-patch work of Algorithm 1:
  2*r*c*(k*h1 + h1^2) + 2*(r + c)*(h1*h2 + h2^2) per output pixel (RNN1 over r rows and
  c columns of c and r steps, RNN2 forward and backward over both summaries), although
  the implementation shares row/column work between overlapping patches.

Peak RAM, appendix E.2 (the "layer-by-layer" convention of Chowdhery et al.): the
model is split into units evaluated one at a time, each needing
* an inverted residual (MBConv) block: its input + its output (the expanded tensor is
  built channel by channel, never stored);
* a residual block of plain convolutions: max(input, output);
* the "RNNPool stem" -- the layers before the first RNNPool (no residual or merge
  among them), the RNNPool, copies of its output (the replicate pad) and branches off
  the stem (Face-Quant's first detection head) -- is computed patch by patch: it needs
  only its largest stored result (the pooled map); the image it reads is not counted;
* a 1x1 convolution feeding a global pool: its input + the pooled vector (section 4:
  1x1 outputs "can be computed on the fly");
* any other layer: its inputs + its output. BatchNormalization and activations are
  done in place on their producer's output.
Element size: 4 bytes (float32) for the classification tables, 1 byte for the int8
face models. ``resident_input=True`` keeps the input image in RAM the whole time
(a camera frame buffer), which is how Table 5's 188 KB for Face-M4 comes out
(76,800 B image + 115,200 B first MBConv = 192,000 B = 187.5 KiB; the paper does not
spell this out). MB and KB are binary (2.29 MB = 2,408,448 B; 225 KB = 230,400 B).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from ..core.keras import keras
from ..layer.rnnpool import RNNPool

L = keras.layers

KIB = 1024
MIB = 1024 * 1024

# Layers that change values in place: fused into the layer that produced their input.
IN_PLACE = (
    L.BatchNormalization,
    L.ReLU,
    L.Activation,
    L.LeakyReLU,
    L.PReLU,
    L.ELU,
    L.ThresholdedReLU,
    L.Softmax,
    L.Dropout,
    L.SpatialDropout1D,
    L.SpatialDropout2D,
    L.GaussianNoise,
    L.GaussianDropout,
    L.AlphaDropout,
    L.ActivityRegularization,
)
# Layers that only copy or rearrange values: part of the RNNPool stem when they follow it.
COPY_ONLY = (L.Cropping2D, L.Concatenate, L.ZeroPadding2D, L.Reshape, L.Flatten, L.Permute)
GLOBAL_POOLS = (L.GlobalAveragePooling2D, L.GlobalMaxPooling2D)
MERGES = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate, L.Dot)


def rnnpool_patch_macs(rows: int, cols: int, in_channels: int, h1: int, h2: int) -> int:
    """The paper's MACs of one RNNPool patch (Algorithm 1, no reuse between patches)."""
    return 2 * rows * cols * (in_channels * h1 + h1 * h1) + 2 * (rows + cols) * (h1 * h2 + h2 * h2)


def unwrap(layer):
    """The layer a tfmot QuantizeWrapper wraps (the layer itself otherwise)."""
    inner = getattr(layer, "layer", None)
    return inner if inner is not None and "QuantizeWrapper" in type(layer).__name__ else layer


def layer_params(layer) -> int:
    """Parameters of one layer as the paper counts them (no BN moving statistics, no quantizer state)."""
    if type(layer).__name__ == "QuantizeLayer":
        return 0
    inner = unwrap(layer)
    if isinstance(inner, keras.Model):
        return sum(layer_params(sub) for sub in inner.layers)
    weights = list(layer.weights)
    if inner is not layer:
        # tfmot detaches the quantized kernels from the wrapped layer and keeps them in the
        # wrapper, next to its quantizer variables (which are not parameters).
        from ..quantize import tfmot_compat  # a wrapped model: tfmot is loaded already

        weights = list(inner.weights) + [weight for weight, _, _ in tfmot_compat.weight_quantizers(layer)]
        weights = list({id(w): w for w in weights}.values())
    skip = set()
    if isinstance(inner, L.BatchNormalization):
        skip = {id(inner.moving_mean), id(inner.moving_variance)}
    return int(sum(int(np.prod(w.shape)) for w in weights if id(w) not in skip))


def _elements(shape) -> int:
    dims = list(shape)[1:]
    if any(d is None for d in dims):
        raise RNNPoolError(f"the analysis needs static shapes; got {tuple(shape)}")
    return int(np.prod(dims)) if dims else 1


def layer_macs(layer, input_shapes: Sequence[Tuple], output_shapes: Sequence[Tuple]) -> int:
    """Multiply-accumulates of one call of `layer` (batch 1), the paper's counting."""
    layer = unwrap(layer)
    out = output_shapes[0] if output_shapes else None
    if isinstance(layer, RNNPool):
        cfg = layer.rnnpool_config
        geo = cfg.geometry(int(input_shapes[0][1]), int(input_shapes[0][2]))
        (r, c), (h1, h2) = cfg.patch_size, cfg.hidden_dims
        return geo.out_rows * geo.out_cols * rnnpool_patch_macs(r, c, int(input_shapes[0][-1]), h1, h2)
    if isinstance(layer, L.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _elements(out) * kh * kw
    if isinstance(layer, L.SeparableConv2D):
        kh, kw = layer.kernel_size
        cin = int(input_shapes[0][-1])
        pixels = _elements(out) // int(out[-1])
        return pixels * cin * layer.depth_multiplier * (kh * kw + layer.filters)
    if isinstance(layer, (L.Conv2DTranspose,)):
        kh, kw = layer.kernel_size
        return _elements(input_shapes[0]) * kh * kw * layer.filters
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)):
        cin = int(input_shapes[0][-1]) // getattr(layer, "groups", 1)
        return _elements(out) * int(np.prod(layer.kernel_size)) * cin
    if isinstance(layer, L.Dense):
        return _elements(out) * int(input_shapes[0][-1])
    if isinstance(layer, keras.Model):
        return analyze(layer).total_macs
    if type(layer).__name__ == "L2Norm":  # sum of squares and the scale: 2 per element
        return 2 * _elements(input_shapes[0])
    return 0


# -- the model's graph --------------------------------------------------------------------------

TensorKey = Tuple[str, int, int]


@dataclasses.dataclass
class _Node:
    index: int
    layer: object
    inputs: List[TensorKey]
    outputs: List[TensorKey]

    @property
    def inner(self):
        return unwrap(self.layer)


def _key(tensor) -> TensorKey:
    layer, node_index, tensor_index = tensor._keras_history
    return (layer.name, int(node_index), int(tensor_index))


def _graph(model) -> Tuple[List[_Node], Dict[TensorKey, Tuple], List[TensorKey], List[TensorKey]]:
    if not isinstance(model, keras.Model):
        raise RNNPoolError(f"expected a Keras model, got {type(model).__name__}")
    if not getattr(model, "_is_graph_network", False):
        raise RNNPoolError(
            "the analysis needs a functional or Sequential model built on a keras.Input "
            "(a subclassed model has no layer graph)"
        )
    own_nodes = getattr(model, "_network_nodes", None)
    nodes: List[_Node] = []
    shapes: Dict[TensorKey, Tuple] = {}
    for layer in model.layers:
        mine = [
            n for i, n in enumerate(layer._inbound_nodes) if own_nodes is None or f"{layer.name}_ib-{i}" in own_nodes
        ]
        if len(mine) != 1:
            raise RNNPoolError(
                f"layer {layer.name!r} is called {len(mine)} times in the model; the analysis "
                "supports each layer called once"
            )
        node = mine[0]
        inputs = [] if isinstance(layer, L.InputLayer) else [_key(t) for t in keras_inputs(node)]
        outputs = [_key(t) for t in _flatten(node.outputs)]
        for t in _flatten(node.outputs):
            shapes[_key(t)] = tuple(t.shape)
        nodes.append(_Node(len(nodes), layer, inputs, outputs))
    for t in model.inputs:  # a Sequential model lists no InputLayer
        shapes[_key(t)] = tuple(t.shape)
    model_inputs = [_key(t) for t in model.inputs]
    model_outputs = [_key(t) for t in model.outputs]
    return nodes, shapes, model_inputs, model_outputs


def keras_inputs(node) -> list:
    return list(node.keras_inputs)


def _flatten(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


# -- results --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LayerStats:
    index: int
    name: str
    kind: str  # layer class (the wrapped one for QAT layers)
    output_shapes: Tuple[Tuple[int, ...], ...]  # without the batch dimension
    params: int
    macs: int
    input_elements: int
    output_elements: int
    unit: Optional[int]  # index of its paper-convention unit (None: the model input)


@dataclasses.dataclass(frozen=True)
class MemoryUnit:
    """A step of the paper's layer-by-layer schedule and the activations it holds."""

    index: int
    kind: str  # "mbconv", "residual", "stem" (patch by patch), "pointwise+pool", "layer"
    name: str
    layers: Tuple[str, ...]
    input_elements: int
    output_elements: int
    cost_elements: int  # what the convention charges (see the module docstring)
    reads_input: bool  # reads the model's input image


@dataclasses.dataclass(frozen=True)
class ModelAnalysis:
    name: str
    layers: Tuple[LayerStats, ...]
    units: Tuple[MemoryUnit, ...]
    input_elements: int
    bytes_per_element: int
    resident_input: bool

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def unit_bytes(self, unit: MemoryUnit) -> int:
        extra = self.input_elements if self.resident_input and (unit.kind == "stem" or not unit.reads_input) else 0
        return (unit.cost_elements + extra) * self.bytes_per_element

    @property
    def peak_unit(self) -> Optional[MemoryUnit]:
        return max(self.units, key=self.unit_bytes) if self.units else None

    @property
    def peak_bytes(self) -> int:
        unit = self.peak_unit
        return self.unit_bytes(unit) if unit is not None else 0

    def layer_memory_bytes(self) -> List[int]:
        """Per layer, the bytes its unit holds (the paper-convention memory curve)."""
        return [self.unit_bytes(self.units[layer.unit]) if layer.unit is not None else 0 for layer in self.layers]

    def as_dict(self) -> dict:
        peak = self.peak_unit
        return {
            "model": self.name,
            "params": self.total_params,
            "macs": self.total_macs,
            "bytes_per_element": self.bytes_per_element,
            "resident_input": self.resident_input,
            "input_bytes": self.input_elements * self.bytes_per_element,
            "paper_peak_bytes": self.peak_bytes,
            "paper_peak": format_paper_bytes(self.peak_bytes),
            "paper_peak_unit": peak.name if peak else None,
            "layers": [
                {
                    **dataclasses.asdict(layer),
                    "output_shapes": [list(s) for s in layer.output_shapes],
                    "activation_bytes": layer.output_elements * self.bytes_per_element,
                }
                for layer in self.layers
            ],
            "units": [
                {**dataclasses.asdict(unit), "layers": list(unit.layers), "bytes": self.unit_bytes(unit)}
                for unit in self.units
            ],
        }


def format_paper_bytes(n: int) -> str:
    """The paper's units: MB = 2^20 B, KB = 2^10 B."""
    return f"{n / MIB:.2f} MB" if n >= MIB else f"{n / KIB:.2f} KB"


# -- grouping into the paper's units --------------------------------------------------------------


@dataclasses.dataclass
class _Op:
    """A layer plus the in-place layers fused onto its output."""

    id: int
    nodes: List[_Node]
    inputs: List[TensorKey]
    output: List[TensorKey]

    @property
    def head(self):
        return self.nodes[0].inner

    @property
    def name(self) -> str:
        return self.nodes[0].layer.name


class _Grouping:
    def __init__(self, nodes: List[_Node], shapes, model_inputs, model_outputs):
        # A QAT model's QuantizeLayer (the input's fake-quant) stores nothing new: its output
        # stands for its input.
        alias: Dict[TensorKey, TensorKey] = {}
        kept = []
        for node in nodes:
            node = dataclasses.replace(node, inputs=[alias.get(t, t) for t in node.inputs])
            if type(node.layer).__name__ == "QuantizeLayer" and len(node.inputs) == 1 and len(node.outputs) == 1:
                alias[node.outputs[0]] = node.inputs[0]
            else:
                kept.append(node)
        nodes = kept
        self.shapes = shapes
        self.model_inputs = set(model_inputs)
        self.model_outputs = {alias.get(t, t) for t in model_outputs}
        self.ops: List[_Op] = []
        self.producer: Dict[TensorKey, _Op] = {}
        consumers: Dict[TensorKey, List[_Node]] = {}
        for node in nodes:
            for t in node.inputs:
                consumers.setdefault(t, []).append(node)
        for node in nodes:
            if isinstance(node.layer, L.InputLayer):
                continue
            if isinstance(node.inner, IN_PLACE) and len(node.inputs) == 1 and len(node.outputs) == 1:
                src = node.inputs[0]
                op = self.producer.get(src)
                if op is not None and len(consumers.get(src, [])) == 1 and src not in self.model_outputs:
                    op.nodes.append(node)
                    op.output = list(node.outputs)
                    self.producer[node.outputs[0]] = op
                    continue
            op = _Op(len(self.ops), [node], list(node.inputs), list(node.outputs))
            self.ops.append(op)
            for t in node.outputs:
                self.producer[t] = op
        self.consumers: Dict[TensorKey, List[_Op]] = {}
        for op in self.ops:
            for t in dict.fromkeys(op.inputs):
                self.consumers.setdefault(t, []).append(op)

    def elements(self, tensors: Iterable[TensorKey]) -> int:
        return sum(_elements(self.shapes[t]) for t in dict.fromkeys(tensors))

    def parents(self, op: _Op) -> List[_Op]:
        return [self.producer[t] for t in op.inputs if t in self.producer]

    def sole_consumer(self, op: _Op) -> Optional[_Op]:
        if len(op.output) != 1 or op.output[0] in self.model_outputs:
            return None
        users = self.consumers.get(op.output[0], [])
        return users[0] if len(users) == 1 else None

    def ancestors(self, op: _Op) -> Set[int]:
        seen: Set[int] = set()
        stack = self.parents(op)
        while stack:
            p = stack.pop()
            if p.id not in seen:
                seen.add(p.id)
                stack.extend(self.parents(p))
        return seen

    def descendants(self, op: _Op) -> Set[int]:
        seen: Set[int] = set()
        stack = [op]
        while stack:
            o = stack.pop()
            for t in o.output:
                for c in self.consumers.get(t, []):
                    if c.id not in seen:
                        seen.add(c.id)
                        stack.append(c)
        return seen

    # -- the units ------------------------------------------------------------------------------
    def stem(self) -> Set[int]:
        """Ops computed patch by patch with the first RNNPool (empty when there is none or when
        a residual/merge or another RNNPool precedes it)."""
        first = next((op for op in self.ops if isinstance(op.head, RNNPool)), None)
        if first is None:
            return set()
        before = self.ancestors(first)
        if any(isinstance(self.ops[i].head, MERGES + (RNNPool,)) for i in before):
            return set()
        region = before | {first.id}
        after = self.descendants(first)
        grown = True
        while grown:
            grown = False
            for op in self.ops:
                if op.id in region or not op.inputs:
                    continue
                inside = all(
                    t in self.model_inputs or (t in self.producer and self.producer[t].id in region) for t in op.inputs
                )
                if inside and (op.id not in after or isinstance(op.head, COPY_ONLY)):
                    region.add(op.id)
                    grown = True
        return region

    @staticmethod
    def is_pointwise(op: _Op) -> bool:
        head = op.head
        return (
            isinstance(head, L.Conv2D)
            and not isinstance(head, (L.DepthwiseConv2D, L.SeparableConv2D))
            and tuple(head.kernel_size) == (1, 1)
            and tuple(head.strides) == (1, 1)
            and len(op.inputs) == 1
        )

    def mbconv(self, project: _Op, taken: Set[int]) -> Optional[Tuple[List[_Op], TensorKey, List[TensorKey]]]:
        """(ops, block input, block output) when `project` ends an inverted residual."""
        if not self.is_pointwise(project):
            return None
        dw = self.producer.get(project.inputs[0])
        if (
            dw is None
            or dw.id in taken
            or not isinstance(dw.head, L.DepthwiseConv2D)
            or self.sole_consumer(dw) is not project
        ):
            return None
        ops = [dw, project]
        expand = self.producer.get(dw.inputs[0])
        if (
            expand is not None
            and expand.id not in taken
            and self.is_pointwise(expand)
            and self.sole_consumer(expand) is dw
        ):
            ops.insert(0, expand)
        block_in = ops[0].inputs[0]
        block_out = project.output
        add = self.sole_consumer(project)
        if (
            add is not None
            and isinstance(add.head, L.Add)
            and sorted(add.inputs) == sorted([block_in] + project.output)
        ):
            ops.append(add)
            block_out = add.output
        return ops, block_in, block_out

    def residual(self, add: _Op, taken: Set[int]) -> Optional[Tuple[List[_Op], TensorKey]]:
        """(ops, block input) when `add` closes a residual block of single-use layers."""
        if not isinstance(add.head, L.Add) or len(add.inputs) != 2:
            return None

        def chain(t: TensorKey) -> List[Tuple[TensorKey, List[_Op]]]:
            """The tensors reached walking back from t through single-input, single-use ops."""
            out, ops = [(t, [])], []
            while t in self.producer:
                op = self.producer[t]
                if op.id in taken or len(op.inputs) != 1 or self.sole_consumer(op) is None:
                    break
                ops = ops + [op]
                t = op.inputs[0]
                out.append((t, list(ops)))
            return out

        a, b = chain(add.inputs[0]), chain(add.inputs[1])
        for ta, ops_a in a:
            for tb, ops_b in b:
                if ta == tb and (ops_a or ops_b):
                    return ops_a + ops_b + [add], ta
        return None


def analyze(model, bytes_per_element: int = 4, resident_input: bool = False) -> ModelAnalysis:
    """Per-layer parameters, MACs and activation sizes of `model`, and its units and peak RAM
    under the paper's convention (module docstring). bytes_per_element: 4 for float32, 1 for int8."""
    if isinstance(bytes_per_element, bool) or not isinstance(bytes_per_element, int) or bytes_per_element <= 0:
        raise ValueError(f"bytes_per_element must be a positive integer, got {bytes_per_element!r}")
    nodes, shapes, model_inputs, model_outputs = _graph(model)
    g = _Grouping(nodes, shapes, model_inputs, model_outputs)

    units: List[MemoryUnit] = []
    unit_of_op: Dict[int, int] = {}

    def add_unit(
        kind: str, name: str, ops: Sequence[_Op], ins: Sequence[TensorKey], outs: Sequence[TensorKey], cost: int
    ) -> None:
        index = len(units)
        units.append(
            MemoryUnit(
                index,
                kind,
                name,
                tuple(n.layer.name for op in ops for n in op.nodes),
                g.elements(ins),
                g.elements(outs),
                cost,
                any(t in g.model_inputs for t in ins),
            )
        )
        for op in ops:
            unit_of_op[op.id] = index

    stem = g.stem()
    taken: Set[int] = set(stem)
    if stem:
        stem_ops = [op for op in g.ops if op.id in stem]
        exits = [
            t
            for op in stem_ops
            for t in op.output
            if t in g.model_outputs or any(c.id not in stem for c in g.consumers.get(t, []))
        ]
        ins = [t for op in stem_ops for t in op.inputs if t not in g.producer or g.producer[t].id not in stem]
        rnnpool = next(op for op in stem_ops if isinstance(op.head, RNNPool))
        add_unit(
            "stem",
            f"RNNPool stem (patch by patch, through {rnnpool.name})",
            stem_ops,
            ins,
            exits,
            max((g.elements([t]) for t in exits), default=0),
        )
    for op in g.ops:  # inverted residuals, found from their last 1x1 convolution
        if op.id in taken:
            continue
        found = g.mbconv(op, taken)
        if found:
            ops, block_in, block_out = found
            if not any(o.id in taken for o in ops):
                taken.update(o.id for o in ops)
                add_unit(
                    "mbconv",
                    f"MBConv {ops[0].name} .. {ops[-1].name}",
                    ops,
                    [block_in],
                    block_out,
                    g.elements([block_in]) + g.elements(block_out),
                )
    for op in g.ops:
        if op.id in taken:
            continue
        found = g.residual(op, taken)
        if found:
            ops, block_in = found
            ops = sorted(ops, key=lambda o: o.id)
            taken.update(o.id for o in ops)
            add_unit(
                "residual",
                f"residual {ops[0].name} .. {ops[-1].name}",
                ops,
                [block_in],
                op.output,
                max(g.elements([block_in]), g.elements(op.output)),
            )
    for op in g.ops:  # a 1x1 conv feeding a global pool: its output is pooled as it is computed
        pool = g.sole_consumer(op) if op.id not in taken and g.is_pointwise(op) else None
        if pool is not None and pool.id not in taken and isinstance(pool.head, GLOBAL_POOLS):
            taken.update((op.id, pool.id))
            add_unit(
                "pointwise+pool",
                f"{op.name} + {pool.name} (1x1 conv output pooled on the fly)",
                [op, pool],
                op.inputs,
                pool.output,
                g.elements(op.inputs) + g.elements(pool.output),
            )
    for op in g.ops:
        if op.id not in taken:
            add_unit("layer", op.name, [op], op.inputs, op.output, g.elements(op.inputs) + g.elements(op.output))
    order = sorted(
        range(len(units)),
        key=lambda i: min(next(n.index for op in g.ops if unit_of_op.get(op.id) == i for n in op.nodes), 10**9),
    )
    renumber = {old: new for new, old in enumerate(order)}
    units = [dataclasses.replace(units[old], index=new) for new, old in enumerate(order)]
    node_unit = {n.index: renumber[unit_of_op[op.id]] for op in g.ops for n in op.nodes}

    stats = []
    for node in nodes:
        in_shapes = [shapes[t] for t in node.inputs]
        out_shapes = [shapes[t] for t in node.outputs]
        stats.append(
            LayerStats(
                node.index,
                node.layer.name,
                type(node.inner).__name__,
                tuple(tuple(int(d) for d in s[1:]) for s in out_shapes),
                layer_params(node.layer),
                0 if isinstance(node.layer, L.InputLayer) else int(layer_macs(node.layer, in_shapes, out_shapes)),
                sum(_elements(s) for s in in_shapes),
                sum(_elements(s) for s in out_shapes),
                node_unit.get(node.index),
            )
        )
    return ModelAnalysis(
        model.name, tuple(stats), tuple(units), g.elements(model_inputs), bytes_per_element, bool(resident_input)
    )


__all__ = [
    "analyze",
    "ModelAnalysis",
    "LayerStats",
    "MemoryUnit",
    "layer_params",
    "layer_macs",
    "rnnpool_patch_macs",
    "format_paper_bytes",
    "unwrap",
    "KIB",
    "MIB",
]
