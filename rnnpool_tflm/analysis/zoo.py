"""The paper's models (Saha et al., NeurIPS 2020, appendix F) as tf-keras functional models.

Every builder returns an uncompiled ``keras.Model`` made only of layers the
project quantizes and converts: Conv2D, DepthwiseConv2D, BatchNormalization,
ReLU(6), Add, pooling, Dense, Dropout, Flatten, Cropping2D, Concatenate and
RNNPool. Architecture facts follow the paper's tables and, where the tables are
silent, the authors' EdgeML PyTorch models (examples/pytorch/vision/...):

* convolutions are "ConvBNReLU" (bias-free conv, BatchNorm, ReLU6); the last
  1x1 convolution of an inverted residual is linear (conv + BN);
* the RNNPool runs over *valid* patches and its output is then replicate-padded
  by one row at the bottom and one column at the right (EdgeML's
  ``F.pad(x, (0, 1, 0, 1), mode='replicate')``), e.g. 27x27 -> 28x28 for a
  224x224 MobileNetV2, so the following blocks see the tables' sizes. The pad is
  a Cropping2D of the last row/column concatenated back (TFLite STRIDED_SLICE +
  CONCATENATION, both builtin, value-preserving under int8);
* 3x3 convolutions use TensorFlow "same" padding (PyTorch pads 1 on every
  side; same output sizes, stride-2 windows shifted by one pixel);
* the face detectors output raw per-head maps (loc, conf); the first head's
  max-out background is post-processing (`maxout_background`), and S3FD's L2Norm
  on the early sources is optional (`l2norm=True`, not QAT-able by tfmot).

Models:
  mobilenetv2_rnnpool       Table 10 (ImageNet-10) and, with the VWW settings, Table 9's 0.35x row
  mobilenetv2_baseline      the base MobileNetV2 (Sandler et al.) the RNNPool block shortens
  mobilenetv2_rnnpool_vww / mobilenetv2_baseline_vww   Visual Wake Words settings (section 5.2)
  rnnpool_face_m4           Table 15, as EdgeML's RPool_Face_M4 builds it
  rnnpool_face_quant        Table 14, as EdgeML's RPool_Face_Quant builds it
  face_m4_strided_conv_baseline   Face-M4 with the RNNPool replaced by two strided convolutions
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from ..core.keras import keras
from ..layer.rnnpool import RNNPool

L = keras.layers

# MobileNetV2's inverted-residual stages (t expansion, c channels, n repeats, s stride), Sandler et al. Table 2.
MOBILENETV2_STAGES: Tuple[Tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# The stages the RNNPool block replaces in MobileNetV2-RNNPool (112x112x32 -> 28x28): the first three.
_RNNPOOL_REPLACED_STAGES = 3
# Face-M4 (Table 15): four inverted residuals after the RNNPool, a detection head after each.
FACE_M4_STAGES = ((2, 32, 1, 1), (2, 32, 1, 1), (2, 64, 1, 2), (2, 64, 1, 1))
# Face-Quant (Table 14 / EdgeML RPool_Face_Quant): heads after stages 1, 2, 3, 4 and 5.
FACE_QUANT_STAGES = ((2, 16, 4, 1), (2, 24, 4, 2), (2, 32, 2, 2), (2, 64, 1, 2), (2, 96, 1, 2))


# -- argument checks ----------------------------------------------------------------------------


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _dropout_rate(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"dropout must be a number in [0, 1), got {value!r}")
    return float(value)


def _image_shape(value, channels: Optional[int] = None) -> Tuple[int, int, int]:
    try:
        shape = tuple(value)
    except TypeError:
        raise ValueError(f"input_shape must be (rows, cols, channels), got {value!r}") from None
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (rows, cols, channels), got {value!r}")
    rows, cols, chans = (_positive_int(f"input_shape[{i}]", v) for i, v in enumerate(shape))
    if channels is not None and chans != channels:
        raise ValueError(f"input_shape must have {channels} channel(s) for this model, got {value!r}")
    return rows, cols, chans


def _check_rnnpool_fits(model: str, rows: int, cols: int, stem_stride: int, patch: int, input_shape) -> None:
    """The RNNPool needs at least one valid patch in the stem's output."""
    out_rows, out_cols = math.ceil(rows / stem_stride), math.ceil(cols / stem_stride)
    if out_rows < patch or out_cols < patch:
        need = stem_stride * (patch - 1) + 1
        raise ValueError(
            f"{model}: input_shape {tuple(input_shape)} is too small: the stem gives "
            f"{out_rows}x{out_cols}, smaller than the {patch}x{patch} RNNPool patch "
            f"(rows and cols must be >= {need})"
        )


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: the nearest multiple of `divisor` (at least `divisor`),
    bumped up one step when rounding would lose more than 10 % of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# -- building blocks ------------------------------------------------------------------------------


def conv_bn_relu6(x, filters: int, kernel: int, stride: int, name: str):
    """EdgeML's ConvBNReLU: bias-free conv, BatchNorm, ReLU6."""
    x = L.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = L.BatchNormalization(name=f"{name}_bn")(x)
    return L.ReLU(6.0, name=f"{name}_relu6")(x)


def inverted_residual(x, expansion: int, filters: int, stride: int, name: str):
    """MobileNetV2 bottleneck: [1x1 expand, BN, ReLU6] -> 3x3 depthwise, BN, ReLU6 -> 1x1 project, BN
    (+ the input when stride is 1 and the channel count is unchanged). No expand conv when t = 1."""
    in_channels = int(x.shape[-1])
    hidden = int(round(in_channels * expansion))
    y = x
    if expansion != 1:
        y = L.Conv2D(hidden, 1, use_bias=False, name=f"{name}_expand")(y)
        y = L.BatchNormalization(name=f"{name}_expand_bn")(y)
        y = L.ReLU(6.0, name=f"{name}_expand_relu6")(y)
    y = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(y)
    y = L.BatchNormalization(name=f"{name}_dw_bn")(y)
    y = L.ReLU(6.0, name=f"{name}_dw_relu6")(y)
    y = L.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(y)
    y = L.BatchNormalization(name=f"{name}_project_bn")(y)
    if stride == 1 and in_channels == filters:
        y = L.Add(name=f"{name}_add")([x, y])
    return y


def replicate_pad_bottom_right(x, name: str):
    """One extra row at the bottom and column at the right, copies of the last ones
    (PyTorch's replicate pad (0, 1, 0, 1)), from builtin-convertible layers."""
    rows, cols = int(x.shape[1]), int(x.shape[2])
    last_row = L.Cropping2D(((rows - 1, 0), (0, 0)), name=f"{name}_last_row")(x)
    x = L.Concatenate(axis=1, name=f"{name}_rows")([x, last_row])
    last_col = L.Cropping2D(((0, 0), (cols - 1, 0)), name=f"{name}_last_col")(x)
    return L.Concatenate(axis=2, name=f"{name}_cols")([x, last_col])


def rnnpool_block(x, patch: int, stride: int, hidden: int, name: str = "rnnpool"):
    """RNNPool over valid patches, then the replicate pad to ceil(size / stride), as in EdgeML."""
    x = RNNPool(patch, stride, (hidden, hidden), padding="valid", name=name)(x)
    return replicate_pad_bottom_right(x, f"{name}_pad")


def _stages(
    x,
    stages: Sequence[Tuple[int, int, int, int]],
    alpha: float,
    first_index: int,
    after_block: Optional[Callable] = None,
):
    index = first_index
    for expansion, channels, repeats, stride in stages:
        filters = make_divisible(channels * alpha)
        for i in range(repeats):
            x = inverted_residual(x, expansion, filters, stride if i == 0 else 1, f"block{index}")
            if after_block is not None:
                after_block(index, x)
            index += 1
    return x


def _classifier_head(x, last_channels: int, num_classes: int, dropout: float, last_rnnpool: bool):
    x = conv_bn_relu6(x, last_channels, 1, 1, "last")
    if last_rnnpool:
        # Table 2 "Last layer RNNPool": one patch over the whole map, h1 = h2 = channels / 4.
        rows, cols = int(x.shape[1]), int(x.shape[2])
        if rows != cols:
            raise ValueError(f"last_rnnpool needs a square final map, got {rows}x{cols}")
        x = RNNPool(rows, rows, (last_channels // 4, last_channels // 4), name="last_rnnpool")(x)
        x = L.Flatten(name="flatten")(x)
    else:
        x = L.GlobalAveragePooling2D(name="avgpool")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    return L.Dense(num_classes, name="logits")(x)


# -- image classification ------------------------------------------------------------------------


def _classification_args(input_shape, num_classes, alpha, dropout, stem_channels, last_channels):
    shape = _image_shape(input_shape)
    num_classes = _positive_int("num_classes", num_classes)
    alpha = _positive_float("alpha", alpha)
    dropout = _dropout_rate(dropout)
    stem = make_divisible(32 * alpha) if stem_channels is None else _positive_int("stem_channels", stem_channels)
    # torchvision/EdgeML: the last 1x1 conv keeps 1280 channels unless alpha > 1.
    last = (
        make_divisible(1280 * max(1.0, alpha))
        if last_channels is None
        else _positive_int("last_channels", last_channels)
    )
    return shape, num_classes, alpha, dropout, stem, last


def _check_last_rnnpool(last_rnnpool, last: int) -> bool:
    if _flag("last_rnnpool", last_rnnpool) and last < 4:
        raise ValueError(f"last_rnnpool needs last_channels >= 4 (h1 = h2 = last_channels // 4), got {last}")
    return last_rnnpool


def mobilenetv2_rnnpool(
    input_shape=(224, 224, 3),
    num_classes: int = 10,
    alpha: float = 1.0,
    rnnpool_hidden: int = 16,
    *,
    rnnpool_patch: int = 6,
    rnnpool_stride: int = 4,
    stem_channels: Optional[int] = None,
    last_channels: Optional[int] = None,
    last_rnnpool: bool = False,
    dropout: float = 0.2,
    name: str = "mobilenetv2_rnnpool",
):
    """MobileNetV2-RNNPool (Table 10): conv 3x3 s2 -> RNNPool (patch 6, stride 4, h1 = h2 = 16,
    4*h2 channels) -> bottlenecks (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1) -> conv 1x1 1280
    -> global average pool -> classifier.

    alpha scales the bottleneck channels (rounded to multiples of 8, as EdgeML's VWW model);
    the stem defaults to make_divisible(32*alpha) channels and the last conv to 1280 (alpha <= 1).
    last_rnnpool=True replaces the average pool by an RNNPool over the whole final map with
    h1 = h2 = last_channels / 4 (Table 2's "RNNPoolLayer + Last layer RNNPool", EdgeML's
    model_mobilenet_2rnnpool). With 1280 channels that is h = 320, above the int8 op's limit of
    256 (RNNPOOL_MAX_HIDDEN): that variant trains and profiles but does not convert; the VWW one
    (320 channels, h = 80) does.
    """
    shape, num_classes, alpha, dropout, stem, last = _classification_args(
        input_shape, num_classes, alpha, dropout, stem_channels, last_channels
    )
    last_rnnpool = _check_last_rnnpool(last_rnnpool, last)
    hidden = _positive_int("rnnpool_hidden", rnnpool_hidden)
    patch = _positive_int("rnnpool_patch", rnnpool_patch)
    stride = _positive_int("rnnpool_stride", rnnpool_stride)
    _check_rnnpool_fits("mobilenetv2_rnnpool", shape[0], shape[1], 2, patch, input_shape)

    inputs = keras.Input(shape, name="image")
    x = conv_bn_relu6(inputs, stem, 3, 2, "stem")
    x = rnnpool_block(x, patch, stride, hidden)
    x = _stages(x, MOBILENETV2_STAGES[_RNNPOOL_REPLACED_STAGES:], alpha, first_index=1)
    outputs = _classifier_head(x, last, num_classes, dropout, last_rnnpool)
    return keras.Model(inputs, outputs, name=name)


def mobilenetv2_baseline(
    input_shape=(224, 224, 3),
    num_classes: int = 10,
    alpha: float = 1.0,
    *,
    stem_channels: Optional[int] = None,
    last_channels: Optional[int] = None,
    last_rnnpool: bool = False,
    dropout: float = 0.2,
    name: str = "mobilenetv2",
):
    """The base MobileNetV2 (Sandler et al.): conv 3x3 s2 32 -> the seven bottleneck stages ->
    conv 1x1 1280 -> average pool -> classifier. Its stem (conv + the first three stages, down to
    28x28) is what MobileNetV2-RNNPool replaces by conv + RNNPool. last_rnnpool as in
    mobilenetv2_rnnpool (Table 2's "Last layer RNNPool")."""
    shape, num_classes, alpha, dropout, stem, last = _classification_args(
        input_shape, num_classes, alpha, dropout, stem_channels, last_channels
    )
    last_rnnpool = _check_last_rnnpool(last_rnnpool, last)
    inputs = keras.Input(shape, name="image")
    x = conv_bn_relu6(inputs, stem, 3, 2, "stem")
    x = _stages(x, MOBILENETV2_STAGES, alpha, first_index=1)
    outputs = _classifier_head(x, last, num_classes, dropout, last_rnnpool)
    return keras.Model(inputs, outputs, name=name)


# Visual Wake Words (section 5.2, EdgeML train_visualwakewords.py): width 0.35, an 8-channel stem,
# a 320-channel last conv, two classes; the RNNPool has h1 = h2 = 8 (Table 9's 0.35x row).
VWW_SETTINGS = {"alpha": 0.35, "stem_channels": 8, "last_channels": 320}


def mobilenetv2_rnnpool_vww(
    input_shape=(224, 224, 3),
    num_classes: int = 2,
    *,
    last_rnnpool: bool = False,
    dropout: float = 0.2,
    name: str = "mobilenetv2_rnnpool_vww",
):
    """MobileNetV2-RNNPool (0.35x) for Visual Wake Words."""
    return mobilenetv2_rnnpool(
        input_shape,
        num_classes,
        rnnpool_hidden=8,
        last_rnnpool=last_rnnpool,
        dropout=dropout,
        name=name,
        **VWW_SETTINGS,
    )


def mobilenetv2_baseline_vww(
    input_shape=(224, 224, 3),
    num_classes: int = 2,
    *,
    last_rnnpool: bool = False,
    dropout: float = 0.2,
    name: str = "mobilenetv2_vww",
):
    """The VWW baseline: MobileNetV2-0.35x with an 8-channel first conv and a 320-channel last conv."""
    return mobilenetv2_baseline(
        input_shape, num_classes, last_rnnpool=last_rnnpool, dropout=dropout, name=name, **VWW_SETTINGS
    )


# -- face detection -----------------------------------------------------------------------------


@keras.utils.register_keras_serializable(package="rnnpool_tflm")
class L2Norm(keras.layers.Layer):
    """S3FD's L2Norm: x / ||x||_channels times a learnable per-channel scale (EdgeML's
    layers/modules/l2norm.py; eps inside the root here). Converts to the builtin
    L2_NORMALIZATION and MUL ops. tfmot has no quantization scheme for it, so the
    zoo leaves it out unless asked (see rnnpool_face_m4)."""

    def __init__(self, scale: float = 10.0, epsilon: float = 1e-10, **kwargs):
        super().__init__(**kwargs)
        self.scale_init = _positive_float("scale", scale)
        self.epsilon = _positive_float("epsilon", epsilon)

    def build(self, input_shape):
        self.scale = self.add_weight(
            name="scale", shape=(int(input_shape[-1]),), initializer=keras.initializers.Constant(self.scale_init)
        )
        super().build(input_shape)

    def call(self, inputs):
        return tf.math.l2_normalize(inputs, axis=-1, epsilon=self.epsilon) * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale_init, "epsilon": self.epsilon}


def maxout_background(conf):
    """S3FD's max-out background label on the first head's scores (EdgeML's forward): the
    first 3 channels are background candidates, keep their maximum; the rest are the classes.
    [..., 3 + num_classes - 1] -> [..., num_classes]. Post-processing (training loss, decoding):
    the model outputs the raw scores, so the int8 graph stays plain convolutions."""
    conf = tf.convert_to_tensor(conf)
    if conf.shape[-1] is not None and conf.shape[-1] < 4:
        raise ValueError(f"max-out needs at least 4 score channels (3 background + classes), got {conf.shape[-1]}")
    background = tf.reduce_max(conf[..., :3], axis=-1, keepdims=True)
    return tf.concat([background, conf[..., 3:]], axis=-1)


def detection_head(source, index: int, num_classes: int, maxout: bool, outputs: List, pre=None):
    """S3FD multibox head on one source map: a 3x3 conv to 4 box offsets and a 3x3 conv to the
    class scores (with bias, as EdgeML's multibox). With `maxout` the score conv has
    3 + (num_classes - 1) channels, the max-out background of EdgeML's first head; apply
    `maxout_background` to it. `pre(x, name)` adds layers before each conv (Face-Quant's
    strided ConvBNReLU)."""
    loc_in = source if pre is None else pre(source, f"loc{index}_pre")
    outputs.append(L.Conv2D(4, 3, padding="same", name=f"loc{index}")(loc_in))
    conf_in = source if pre is None else pre(source, f"conf{index}_pre")
    channels = 3 + num_classes - 1 if maxout else num_classes
    outputs.append(L.Conv2D(channels, 3, padding="same", name=f"conf{index}")(conf_in))


def _face_args(model: str, input_shape, channels: int, num_classes, stem_stride: int, patch: int):
    shape = _image_shape(input_shape, channels)
    num_classes = _positive_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (background + faces), got {num_classes!r}")
    _check_rnnpool_fits(model, shape[0], shape[1], stem_stride, patch, input_shape)
    return shape, num_classes


def _source(x, use_l2norm: bool, scale: float, index: int):
    return L2Norm(scale, name=f"l2norm{index}")(x) if use_l2norm else x


def rnnpool_face_m4(
    input_shape=(240, 320, 1),
    num_classes: int = 2,
    *,
    rnnpool_hidden: int = 16,
    l2norm: bool = False,
    name: str = "rnnpool_face_m4",
):
    """RNNPool-Face-M4 (Table 15 / EdgeML RPool_Face_M4) for 320x240 monochrome images:
    ConvBNReLU 3x3 s2 to 4 channels -> RNNPool (patch 8, stride 4, h1 = h2 = 16) over valid
    patches (29x39 for 120x160) -> replicate pad to 30x40x64 -> inverted residuals (t=2):
    c32 s1, c32 s1, c64 s2, c64 s1 -> an S3FD head (loc: 4, conf: num_classes; the first with
    max-out background, see maxout_background) after each block.

    Outputs, in order: loc0, conf0, loc1, conf1, loc2, conf2, loc3, conf3 (NHWC maps); conf0 has
    3 + num_classes - 1 channels.

    l2norm=True adds EdgeML's L2Norm (scales 10, 8, 5) on the first three sources. It converts to
    builtin TFLite ops but tfmot has no QAT scheme for it, so the default leaves it out: it
    normalises features for training stability (S3FD), adds 128 parameters and 0.19 M MACs.
    """
    shape, num_classes = _face_args("rnnpool_face_m4", input_shape, 1, num_classes, 2, 8)
    hidden = _positive_int("rnnpool_hidden", rnnpool_hidden)
    l2norm = _flag("l2norm", l2norm)
    inputs = keras.Input(shape, name="image")
    x = conv_bn_relu6(inputs, 4, 3, 2, "stem")
    x = rnnpool_block(x, 8, 4, hidden)
    outputs: List = []
    scales = (10.0, 8.0, 5.0)

    def head(index, block_output):
        i = index - 1
        source = _source(block_output, l2norm, scales[i], i) if i < len(scales) else block_output
        detection_head(source, i, num_classes, maxout=(i == 0), outputs=outputs)

    _stages(x, FACE_M4_STAGES, 1.0, first_index=1, after_block=head)
    return keras.Model(inputs, outputs, name=name)


def face_m4_strided_conv_baseline(
    input_shape=(240, 320, 1), num_classes: int = 2, *, name: str = "face_m4_strided_conv"
):
    """A baseline for Face-M4's memory plot (our construction, not a paper model): the same
    detector with the RNNPool block replaced by two ConvBNReLU 3x3 stride-2 layers (4 -> 16 -> 64
    channels), like Table 2's "Strided Convolution" downsampling."""
    shape, num_classes = _face_args("face_m4_strided_conv_baseline", input_shape, 1, num_classes, 2, 1)
    inputs = keras.Input(shape, name="image")
    x = conv_bn_relu6(inputs, 4, 3, 2, "stem")
    x = conv_bn_relu6(x, 16, 3, 2, "down1")
    x = conv_bn_relu6(x, 64, 3, 2, "down2")
    outputs: List = []
    _stages(
        x,
        FACE_M4_STAGES,
        1.0,
        first_index=1,
        after_block=lambda index, y: detection_head(y, index - 1, num_classes, index == 1, outputs),
    )
    return keras.Model(inputs, outputs, name=name)


def rnnpool_face_quant(
    input_shape=(480, 640, 3),
    num_classes: int = 2,
    *,
    rnnpool_hidden: int = 8,
    l2norm: bool = False,
    name: str = "rnnpool_face_quant",
):
    """RNNPool-Face-Quant (Table 14 / EdgeML RPool_Face_Quant) for 640x480 RGB images:
    ConvBNReLU 3x3 s2 (4) -> ConvBNReLU 3x3 (4) -> RNNPool (patch 8, stride 4, 4*h2 = 32 channels)
    over valid patches, replicate pad (59x79 -> 60x80) -> inverted residuals (t=2): c16 x4,
    c24 x4 s2, c32 x2 s2, c64 s2, c96 s2.

    Six S3FD heads: on the 320x240x4 stem output (each branch a ConvBNReLU 3x3 s2 to 8 channels,
    then the 3x3 conv; max-out background, for a total stride of 4) and after each stage.
    Outputs: loc0, conf0, ..., loc5, conf5 (conf0 with 3 + num_classes - 1 channels, see maxout_background).

    rnnpool_hidden: Table 14 lists 32 output channels (4*h2 = 32), as EdgeML's RNNPool(8, 8, 8, 8, 4);
    the paper's text says h1 = h2 = 4, which would give 16 channels. l2norm as in rnnpool_face_m4
    (scales 10, 8, 5 on the stem output and the first two stages).
    """
    shape, num_classes = _face_args("rnnpool_face_quant", input_shape, 3, num_classes, 2, 8)
    hidden = _positive_int("rnnpool_hidden", rnnpool_hidden)
    l2norm = _flag("l2norm", l2norm)
    inputs = keras.Input(shape, name="image")
    x = conv_bn_relu6(inputs, 4, 3, 2, "stem1")
    x = conv_bn_relu6(x, 4, 3, 1, "stem2")
    outputs: List = []
    scales = (10.0, 8.0, 5.0)
    detection_head(
        _source(x, l2norm, scales[0], 0),
        0,
        num_classes,
        maxout=True,
        outputs=outputs,
        pre=lambda y, prefix: conv_bn_relu6(y, 8, 3, 2, prefix),
    )
    x = rnnpool_block(x, 8, 4, hidden)
    first = 1
    for s, stage in enumerate(FACE_QUANT_STAGES, start=1):
        x = _stages(x, (stage,), 1.0, first_index=first)
        first += stage[2]
        source = _source(x, l2norm, scales[s], s) if s < len(scales) else x
        detection_head(source, s, num_classes, maxout=False, outputs=outputs)
    return keras.Model(inputs, outputs, name=name)


# -- the zoo --------------------------------------------------------------------------------------

ZOO: Dict[str, Callable] = {
    "mobilenetv2_rnnpool": mobilenetv2_rnnpool,
    "mobilenetv2": mobilenetv2_baseline,
    "mobilenetv2_rnnpool_vww": mobilenetv2_rnnpool_vww,
    "mobilenetv2_vww": mobilenetv2_baseline_vww,
    "face_m4": rnnpool_face_m4,
    "face_m4_strided_conv": face_m4_strided_conv_baseline,
    "face_quant": rnnpool_face_quant,
}

# The baseline each zoo model is compared with (profile --baseline default, plots).
ZOO_BASELINES: Dict[str, str] = {
    "mobilenetv2_rnnpool": "mobilenetv2",
    "mobilenetv2_rnnpool_vww": "mobilenetv2_vww",
    "face_m4": "face_m4_strided_conv",
}


def build_zoo_model(name: str, **kwargs):
    """A zoo model by name (see ZOO); keyword arguments go to its builder."""
    key = str(name).strip().lower().removeprefix("zoo:").replace("-", "_")
    if key not in ZOO:
        raise ValueError(f"unknown zoo model {name!r}; zoo models: {', '.join(ZOO)}")
    return ZOO[key](**kwargs)


__all__ = [
    "mobilenetv2_rnnpool",
    "mobilenetv2_baseline",
    "mobilenetv2_rnnpool_vww",
    "mobilenetv2_baseline_vww",
    "rnnpool_face_m4",
    "face_m4_strided_conv_baseline",
    "rnnpool_face_quant",
    "L2Norm",
    "ZOO",
    "ZOO_BASELINES",
    "build_zoo_model",
    "make_divisible",
    "inverted_residual",
    "conv_bn_relu6",
    "replicate_pad_bottom_right",
    "rnnpool_block",
    "detection_head",
    "maxout_background",
]
