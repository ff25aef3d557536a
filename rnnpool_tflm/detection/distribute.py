"""Which tf.distribute strategy a training run uses, and what a multi-replica step needs.

    auto         MultiWorkerMirroredStrategy when TF_CONFIG names more than one worker,
                 MirroredStrategy when the machine has more than one GPU, else the default
                 (one device);
    mirrored     MirroredStrategy over `devices` (default: every local GPU, else the CPU);
    multiworker  MultiWorkerMirroredStrategy from TF_CONFIG (required);
    default      one device, no distribution.

Keras splits every global batch between the replicas. The loss normalisation is global
(trainer.py); the batch statistics must be too: within `global_batch_statistics` every
BatchNormalization layer and every QAT activation range (tfmot_compat.global_batch_ranges)
is computed over the global batch while it trains, so a step on R replicas is the step on
one device, not R steps on smaller batches.

"The same step" has to hold to the last bit for QAT: a fake-quant rounds, so a batch statistic
that differs in its last float32 bit moves activations across a grid point, and the RNNPool
and every later layer amplify that (a 4e-6 difference after the stem's BatchNormalization gave
a 0.4 % different first-step loss). The fused kernel (one device) and Keras' synchronized
moments (sum/N, sumsq/N - mean^2 over all-reduced float32 sums) round differently, so within
the block every BatchNormalization, on any number of replicas, computes its moments by one
formula from float64 sums: the per-replica partial sums add up to the one-device sum exactly
(to far below float32's precision) and the statistics are the same float32 values.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Iterator, Optional, Sequence

import tensorflow as tf

from ..core.errors import RNNPoolError
from ..core.keras import keras

STRATEGIES = ("auto", "mirrored", "multiworker", "default")


def tf_config_workers() -> int:
    """How many workers TF_CONFIG's cluster lists (0 without TF_CONFIG)."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
        return sum(len(cluster.get(role, [])) for role in ("chief", "worker"))
    except (ValueError, AttributeError) as exc:
        raise RNNPoolError(f"TF_CONFIG is not valid JSON with a 'cluster': {exc}") from None


def make_strategy(name: str = "auto", devices: Optional[Sequence[str]] = None) -> tf.distribute.Strategy:
    """The strategy `name` (see the module docstring). Create it before any other TensorFlow
    work: MultiWorkerMirroredStrategy configures the runtime's collectives."""
    if name not in STRATEGIES:
        raise RNNPoolError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "auto":
        if tf_config_workers() > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1 or devices:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        if devices:
            raise RNNPoolError("devices go with the mirrored strategy")
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    if devices:
        raise RNNPoolError("devices go with the mirrored strategy; multiworker takes its workers from TF_CONFIG")
    if tf_config_workers() == 0:
        raise RNNPoolError(
            "the multiworker strategy needs TF_CONFIG (the cluster and this worker's task); see docs/face_detection.md"
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files (the chief, or worker 0 without a chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)


def _batch_norms(model) -> Iterator:
    for layer in model.submodules:
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer


def _exact_moments(layer):
    """`layer`'s _calculate_mean_and_var with float64 sums, all-reduced over the replicas: the same
    float32 mean and variance whatever the split of the batch (module docstring)."""
    general = layer._calculate_mean_and_var

    def moments(inputs, reduction_axes, keep_dims, mask=None):
        if mask is not None:
            return general(inputs, reduction_axes, keep_dims, mask=mask)
        x = tf.cast(inputs, tf.float64)
        count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), reduction_axes)), tf.float64)
        sums = [
            tf.reduce_sum(x, axis=reduction_axes, keepdims=True),
            tf.reduce_sum(tf.square(x), axis=reduction_axes, keepdims=True),
            count,
        ]
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            sums = replica.all_reduce(tf.distribute.ReduceOp.SUM, sums)
        total, squares, count = sums
        mean = total / count
        variance = tf.maximum(squares / count - tf.square(mean), 0.0)
        if not keep_dims:
            mean, variance = tf.squeeze(mean, reduction_axes), tf.squeeze(variance, reduction_axes)
        return tf.cast(mean, inputs.dtype), tf.cast(variance, inputs.dtype)

    return moments


@contextlib.contextmanager
def global_batch_statistics(model, strategy: tf.distribute.Strategy) -> Iterator[None]:
    """Within the block (training steps are traced in it), every BatchNormalization of `model`
    (QAT wrappers included) computes its moments exactly over the global batch (float64 sums,
    all-reduced), and with more than one replica every QAT activation range uses the global
    batch's min/max. The layers are restored after it: the saved model is the plain (fused) one."""
    layers = list(_batch_norms(model))
    saved = [(layer.fused, layer.__dict__.get("_calculate_mean_and_var")) for layer in layers]
    for layer in layers:
        layer._calculate_mean_and_var = _exact_moments(layer)
        layer.fused = False  # the fused kernel has its own moments
    try:
        if strategy.num_replicas_in_sync > 1:
            from ..quantize.tfmot_compat import global_batch_ranges

            with global_batch_ranges():
                yield
        else:
            yield
    finally:
        for layer, (fused, own) in zip(layers, saved, strict=True):
            layer.fused = fused
            if own is None:
                del layer._calculate_mean_and_var
            else:
                layer._calculate_mean_and_var = own


__all__ = ["STRATEGIES", "make_strategy", "is_chief", "global_batch_statistics", "tf_config_workers"]
