"""A Keras model that trains a detector with the multibox loss under `model.fit`.

    trainer = DetectorTrainer(detector)            # float detector, or quantize_model(detector)
    trainer.compile(keras.optimizers.Adam(1e-3))
    trainer.fit(dataset)                           # (image, {"loc": [P, 4], "labels": [P]}) batches

The wrapped detector keeps its own outputs (the maps that get converted); the trainer only
flattens them, applies the max-out background (heads.py) and computes the loss (loss.py).
Save `trainer.detector`, not the trainer.

Under tf.distribute each replica divides its loss sums by the number of positives of the
*global* batch (an all-reduce), and the optimizer sums the replicas' gradients, so a step
on R replicas is the same step as on one device. The reported losses are the global ones.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from ..core.keras import keras
from .heads import HeadLayout, flatten_heads
from .loss import NEG_POS_RATIO, multibox_sums

_SUM = tf.distribute.ReduceOp.SUM


class DetectorTrainer(keras.Model):
    def __init__(self, detector, layout: HeadLayout = None, neg_pos_ratio: int = NEG_POS_RATIO, **kwargs):
        super().__init__(**kwargs)
        self.detector = detector
        self.layout = layout or HeadLayout.of_model(detector)
        self.neg_pos_ratio = int(neg_pos_ratio)
        self._trackers = {name: keras.metrics.Mean(name) for name in ("loss", "loc_loss", "conf_loss")}

    def call(self, images, training=None):
        """(loc [B, P, 4], conf logits [B, P, classes]) for a batch of images."""
        return flatten_heads(self.detector(images, training=training), self.layout, tnp)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _replica_losses(self, data, training: bool):
        images, targets = data[0], data[1]
        loc_pred, conf_pred = self(images, training=training)
        loc_sum, conf_sum, num_pos = multibox_sums(
            targets["loc"], targets["labels"], loc_pred, conf_pred, self.neg_pos_ratio
        )
        replica = tf.distribute.get_replica_context()
        positives = tf.maximum(replica.all_reduce(_SUM, num_pos), 1.0)
        return loc_sum / positives, conf_sum / positives

    def _report(self, loc, conf):
        loc, conf = tf.distribute.get_replica_context().all_reduce(_SUM, [loc, conf])
        for name, value in (("loss", loc + conf), ("loc_loss", loc), ("conf_loss", conf)):
            self._trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loc, conf = self._replica_losses(data, training=True)
            loss = loc + conf
            if self.losses:  # weight regularisers: each replica adds its share
                loss += tf.add_n(self.losses) / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._report(loc, conf)

    def test_step(self, data):
        return self._report(*self._replica_losses(data, training=False))


__all__ = ["DetectorTrainer"]
