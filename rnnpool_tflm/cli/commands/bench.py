"""`rnnpool-tflm bench kernel`: speed of the int8 C kernel on the paper's RNNPool shapes.

--target m4: the harness (tests/m4) cross-compiled with the DSP path and run in
qemu-system-arm -icount shift=0; instructions counted with SysTick, calibrated
against a loop of known length in the same ELF. --target host: the host build
through ctypes, wall-clock ns per patch. Every run also checks the output
against the golden reference. Prints, never gates.
"""

from __future__ import annotations

HELP = "benchmark the int8 RNNPool C kernel (emulated Cortex-M4 instructions or host time)"

# name, input map [N, H, W, k], patch, stride, (h1, h2), padding. Maps as in the paper's models
# (Face-M4: RNNPool on the 120x160 first-layer map; VWW and MobileNetV2: on 112x112 maps).
SHAPES = (
    ("Face-M4", (1, 120, 160, 4), 8, 4, (16, 16), "valid"),
    ("VWW", (1, 112, 112, 8), 6, 4, (8, 8), "valid"),
    ("MobileNetV2", (1, 112, 112, 32), 6, 4, (16, 16), "valid"),
)
# Both activation pairs of the op: the smooth one (tables) and the hard one the paper's
# quantized models were trained with.
ACTIVATIONS = (("sigmoid", "tanh"), ("hard_sigmoid", "hard_tanh"))


def add_arguments(parser):
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    kernel = sub.add_parser("kernel", help="the RNNPool C kernel on the Face-M4, VWW and MobileNetV2 shapes")
    kernel.add_argument("--target", choices=("m4", "host"), default="m4",
                        help="m4: instructions under QEMU (default); host: ns per patch")
    kernel.add_argument("--json", action="store_true", help="one JSON object per line")
    kernel.add_argument("--shape", action="append", choices=[s[0] for s in SHAPES],
                        help="only this shape (repeatable; default: all)")
    kernel.add_argument("--activations", choices=("smooth", "hard", "both"), default="both",
                        help="sigmoid/tanh, hard_sigmoid/hard_tanh, or both (default)")
    kernel.add_argument("--seconds", type=float, default=1.0, help="host: time spent per shape (default 1)")


def macs_per_patch(k: int, r: int, c: int, h1: int, h2: int) -> int:
    """Naive MACs of one isolated patch: RNN1 over r rows and c columns, RNN2 four sweeps."""
    return 2 * r * c * (k * h1 + h1 * h1) + 2 * (r + c) * (h1 * h2 + h2 * h2)


def _cases(names, activations: str):
    import numpy as np

    from ...core.config import RNNPoolConfig
    from ...runtime.m4_harness import HarnessCase
    from ...reference import quantize_rnnpool, rnnpool_int8
    from ...core.weights import RNNPoolWeights

    pairs = {"smooth": ACTIVATIONS[:1], "hard": ACTIVATIONS[1:], "both": ACTIVATIONS}[activations]
    out = []
    for name, shape, patch, stride, hidden, padding in SHAPES:
        if names and name not in names:
            continue
        for gate, update in pairs:
            rng = np.random.default_rng(0)
            config = RNNPoolConfig.create(patch, stride, hidden, padding, gate, update)
            weights = RNNPoolWeights.random(shape[3], *hidden, rng, zeta=2.0, nu=-4.0)
            params = quantize_rnnpool(weights, config, 0.05, -3, 0.01, 2)
            x = rng.integers(-128, 128, size=shape).astype(np.int8)
            out.append((name, config, HarnessCase(params, x, rnnpool_int8(x, params))))
    return out


def _record(name, config, case, **measures):
    (r, c), (sr, _), (h1, h2) = config.patch_size, config.strides, config.hidden_dims
    k = case.x.shape[3]
    geo = config.geometry(case.x.shape[1], case.x.shape[2])
    patches = case.x.shape[0] * geo.out_rows * geo.out_cols
    return {"name": name, "shape": {"k": k, "patch": r, "stride": sr, "h1": h1, "h2": h2},
            "activations": f"{config.gate_activation}/{config.update_activation}", "map": list(case.x.shape), "patches": patches, "macs_per_patch": macs_per_patch(k, r, c, h1, h2),
            **measures}


def _bench_m4(cases):
    from ...runtime import m4_harness as m4_toolchain
    from ...core.errors import RNNPoolError

    results = []
    for pair in ACTIVATIONS:  # one program per activation pair: the maps fill the 1 MB flash
        group = [case for _, config, case in cases if (config.gate_activation, config.update_activation) == pair]
        if group:
            results += zip(group, m4_toolchain.run_kernel_cases(group).results)
    by_case = {id(case): result for case, result in results}
    records = []
    for name, config, case in cases:
        result = by_case[id(case)]
        if not result.ok:
            raise RNNPoolError(f"{name}: the M4 kernel's output differs from the golden reference "
                               f"({result.status}, {result.mismatches} mismatches)")
        rec = _record(name, config, case, target="m4", bit_exact=True,
                      prepared_bytes=result.prepared_bytes, scratch_bytes=result.scratch_bytes)
        rec["instructions_per_patch"] = round(result.instructions / rec["patches"], 1)
        rec["instructions_per_mac"] = round(rec["instructions_per_patch"] / rec["macs_per_patch"], 3)
        records.append(rec)
    return records


def _bench_host(cases, seconds: float):
    import time

    import numpy as np

    from ...runtime import native
    from ...core.errors import RNNPoolError

    records = []
    for name, config, case in cases:
        kernel = native.PreparedS8(case.params, case.x.shape)
        out = kernel(case.x)
        if not np.array_equal(out, case.expected):
            raise RNNPoolError(f"{name}: the host kernel's output differs from the golden reference")
        runs, start = 0, time.perf_counter()
        while True:
            kernel(case.x)
            runs += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        rec = _record(name, config, case, target="host", bit_exact=True,
                      prepared_bytes=kernel.prepared_bytes, scratch_bytes=kernel.scratch_bytes)
        rec["ns_per_patch"] = round(elapsed / runs / rec["patches"] * 1e9, 1)
        rec["runs"] = runs
        records.append(rec)
    return records


def _table(records, target: str) -> str:
    head = ("shape", "k", "patch", "stride", "h1", "h2", "activations", "map", "patches", "MACs/patch")
    if target == "m4":
        head += ("instr/patch", "instr/MAC", "scratch B")
    else:
        head += ("ns/patch", "scratch B")
    rows = []
    for r in records:
        s = r["shape"]
        row = (r["name"], s["k"], s["patch"], s["stride"], s["h1"], s["h2"], r["activations"],
               "x".join(map(str, r["map"])), r["patches"], r["macs_per_patch"])
        if target == "m4":
            row += (f"{r['instructions_per_patch']:.0f}", f"{r['instructions_per_mac']:.3f}", r["scratch_bytes"])
        else:
            row += (f"{r['ns_per_patch']:.0f}", r["scratch_bytes"])
        rows.append([str(v) for v in row])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    note = ("instructions counted in qemu-system-arm -M netduinoplus2 -icount shift=0 (SysTick, calibrated); "
            "outputs bit-exact with the golden reference" if target == "m4" else
            "host build via ctypes, wall clock; outputs bit-exact with the golden reference")
    return "\n".join([line(head), *(line(r) for r in rows), note])


def run(args) -> int:
    import json

    from ...core import progress

    cases = _cases(args.shape, args.activations)
    if args.target == "m4":
        with progress.activity("bench on the emulated Cortex-M4"):  # a firmware build and QEMU runs
            records = _bench_m4(cases)
    else:  # timed: nothing else draws meanwhile
        records = _bench_host(cases, args.seconds)
    if args.json:
        for rec in records:
            print(json.dumps(rec))
    else:
        print(_table(records, args.target))
    return 0
