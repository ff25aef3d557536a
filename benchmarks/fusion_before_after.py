"""The converter's fusion (--no-fuse vs default) on the emulated Cortex-M4 (prints, never gates).

For each model: convert twice (fused, the default, and --no-fuse) from the same float model
(random weights, seeded as `zoo:NAME` is) with the same random calibration data, run both with
`emulate` on QEMU, and print one JSON object per model: TFLM arena (measured, and the arena
model's estimate), instructions per inference, operators, and whether the outputs' SHA-256
agree. Needs TFLM_DIR, the Arm toolchain and qemu-system-arm; several minutes per model.

    ./dev run python benchmarks/fusion_before_after.py [--models face_m4 mobilenetv2_rnnpool_vww demo]
"""

import argparse
import json
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import rnnpool_tflm  # noqa: E402,F401

MODELS = ("face_m4", "mobilenetv2_rnnpool_vww", "demo")
DEMO_IMAGE_SIZE = 64  # the demo's default (cli/demo.py DemoSettings)


def _keras_model(name: str):
    if name == "demo":
        from rnnpool_tflm.cli.demo import demo_model

        return demo_model(DEMO_IMAGE_SIZE)
    from rnnpool_tflm.analysis.profile import ZOO_PREFIX, load

    return load(ZOO_PREFIX + name).keras_model


def _measure(path: pathlib.Path, machine: str) -> dict:
    from rnnpool_tflm.arena import estimate_arena
    from rnnpool_tflm.deploy.emulate import emulate_model

    report = emulate_model(path, machine=machine, timeout=900).as_dict()
    ops = report["ops"]
    return {
        "output_matches_host": report["output_matches_host"],
        "output_sha256": report["output_sha256"],
        "arena_used_bytes": report["arena_used_bytes"],
        "arena_estimate_bytes": estimate_arena(path.read_bytes(), "cortex-m4").total_bytes,
        "instructions": report["instructions"],
        "model_bytes": report["model_bytes"],
        "ops": ops,
        "operators": sum(1 for _ in report["op_instructions"] or []),
    }


def compare(name: str, out_dir: pathlib.Path, machine: str, samples: int) -> dict:
    from rnnpool_tflm.convert.keras_converter import convert_model

    result = {"model": name, "machine": machine}
    for fuse in (False, True):
        model = _keras_model(name)  # seeded: the same weights both times
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        data = np.random.default_rng(0).uniform(0, 1, (samples, *shape)).astype(np.float32)
        converted = convert_model(model, data, fuse=fuse)
        path = out_dir / f"{name}_{'fused' if fuse else 'no_fuse'}.tflite"
        path.write_bytes(converted.tflite)
        key = "fused" if fuse else "no_fuse"
        result[key] = _measure(path, machine)
        if fuse:
            result["fused_blocks"] = len(converted.fusion.fused)
            result["skipped_chains"] = [s.describe() for s in converted.fusion.skipped]
    result["output_sha256_equal"] = (
        result["fused"]["output_sha256"] == result["no_fuse"]["output_sha256"]
        and result["fused"]["output_sha256"] is not None
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--machine", default="mps2-an386", help="QEMU machine (default mps2-an386: 4 MB RAM, every model fits unfused)"
    )
    parser.add_argument("--samples", type=int, default=16, help="random calibration samples")
    parser.add_argument("--keep", metavar="DIR", help="keep the .tflite files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fusion-bench-") as tmp:
        out_dir = pathlib.Path(args.keep or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            print(json.dumps(compare(name, out_dir, args.machine, args.samples)), flush=True)


if __name__ == "__main__":
    main()
