"""RNNPool Keras layer throughput on CPU (prints, never gates).

Face-M4 shape by default: input 120x160x4 (the 160x120x4 map of Table 15),
patch 8, stride 4, h1 = h2 = 16, batch 32. Prints one JSON object.

    ./dev run python benchmarks/layer_throughput.py [--batch 32] [--repeats 5]
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import rnnpool_tflm  # noqa: E402,F401
from rnnpool_tflm.layer.rnnpool import RNNPool  # noqa: E402


def _time(fn, repeats):
    fn()  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=120)
    parser.add_argument("--cols", type=int, default=160)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--patch", type=int, default=8)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    layer = RNNPool(args.patch, args.stride, args.hidden)
    x = tf.constant(
        np.random.default_rng(0).standard_normal((args.batch, args.rows, args.cols, args.channels)).astype(np.float32)
    )
    layer(x)

    forward = tf.function(lambda v: layer(v))

    @tf.function
    def forward_backward(v):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(v) ** 2)
        return tape.gradient(loss, layer.trainable_weights)

    t_fwd = _time(lambda: forward(x).numpy(), args.repeats)
    t_bwd = _time(lambda: [g.numpy() for g in forward_backward(x)], args.repeats)
    out = layer.compute_output_shape(x.shape)
    patches = args.batch * out[1] * out[2]
    print(
        json.dumps(
            {
                "shape": {
                    "input": [args.rows, args.cols, args.channels],
                    "patch": args.patch,
                    "stride": args.stride,
                    "h1": args.hidden,
                    "h2": args.hidden,
                    "batch": args.batch,
                },
                "cpu_threads": os.cpu_count(),
                "forward_images_per_s": round(args.batch / t_fwd, 2),
                "forward_patches_per_s": round(patches / t_fwd),
                "forward_backward_images_per_s": round(args.batch / t_bwd, 2),
                "forward_backward_patches_per_s": round(patches / t_bwd),
                "forward_ms_per_batch": round(t_fwd * 1e3, 1),
                "forward_backward_ms_per_batch": round(t_bwd * 1e3, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
