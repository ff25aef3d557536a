"""The layer learns inside a small model: Conv2D -> RNNPool -> GlobalAveragePooling -> Dense."""

from rnnpool_tflm.analysis.datasets import line_orientation
from rnnpool_tflm.core.keras import keras
from rnnpool_tflm.layer.rnnpool import RNNPool


def test_rnnpool_model_learns_line_orientation():
    x, y = line_orientation(2048, seed=0)
    xv, yv = line_orientation(512, seed=1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 1)),
            keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
            RNNPool(4, 2, (8, 8)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    )
    loss_before, acc_before = model.evaluate(xv, yv, verbose=0)
    history = model.fit(x, y, epochs=8, batch_size=64, verbose=0, validation_data=(xv, yv))
    loss_after, acc_after = model.evaluate(xv, yv, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert loss_after < 0.5 * loss_before
    print("val accuracy before/after:", acc_before, acc_after)
    assert acc_after > 0.8, (acc_before, acc_after)  # chance is 0.25
