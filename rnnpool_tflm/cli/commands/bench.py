"""`rnnpool-tflm bench kernel`: speed of the int8 C kernel on the paper's RNNPool shapes.
`rnnpool-tflm bench ir`: the fused InvertedResidual kernel against the CMSIS-NN kernels TFLM
runs for the unfused block, on Face-M4's four inverted residuals.

--target m4: the harness (tests/m4) cross-compiled with the DSP path and run in
qemu-system-arm -icount shift=0; instructions counted with SysTick, calibrated
against a loop of known length in the same ELF. --target host: the host build
through ctypes, wall-clock ns per patch. Every run also checks the output
against the golden reference. Prints, never gates.
"""

from __future__ import annotations

HELP = "benchmark the int8 C kernels: RNNPool, and the fused inverted residual against CMSIS-NN"

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
# The op's rnn1_mode: RNN1 results cached across overlapping patches, or recomputed per patch
# (about a kilobyte of scratch); same output bytes.
RNN1_MODES = ("cached", "recompute")


def add_arguments(parser):
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    kernel = sub.add_parser("kernel", help="the RNNPool C kernel on the Face-M4, VWW and MobileNetV2 shapes")
    kernel.add_argument(
        "--target",
        choices=("m4", "host"),
        default="m4",
        help="m4: instructions under QEMU (default); host: ns per patch",
    )
    kernel.add_argument("--json", action="store_true", help="one JSON object per line")
    kernel.add_argument(
        "--shape", action="append", choices=[s[0] for s in SHAPES], help="only this shape (repeatable; default: all)"
    )
    kernel.add_argument(
        "--activations",
        choices=("smooth", "hard", "both"),
        default="both",
        help="sigmoid/tanh, hard_sigmoid/hard_tanh, or both (default)",
    )
    kernel.add_argument(
        "--rnn1-mode",
        choices=(*RNN1_MODES, "both"),
        default="both",
        help="the op's rnn1_mode: cached (RNN1 shared by overlapping patches), recompute "
        "(small scratch), or both (default)",
    )
    kernel.add_argument("--seconds", type=float, default=1.0, help="host: time spent per shape (default 1)")
    ir = sub.add_parser(
        "ir",
        help="the fused inverted-residual op against TFLM's CMSIS-NN kernels (Face-M4's blocks; m4 needs TFLM_DIR)",
    )
    ir.add_argument(
        "--target",
        choices=("m4", "host"),
        default="m4",
        help="m4: instructions under QEMU, fused vs CMSIS-NN (default); host: ns per block",
    )
    ir.add_argument("--json", action="store_true", help="one JSON object per line")
    ir.add_argument(
        "--block",
        action="append",
        type=int,
        choices=range(1, len(IR_BLOCKS) + 1),
        help="only this block (1-4, repeatable; default: all)",
    )
    ir.add_argument("--seconds", type=float, default=1.0, help="host: time spent per block (default 1)")


# Face-M4's inverted residuals (analysis.zoo.rnnpool_face_m4, t = 2, ReLU6 after the expansion and
# the depthwise conv) on their input maps: name, input [N, H, W, Ci], Ce, Co, stride, residual.
IR_BLOCKS = (
    ("Face-M4 block 1", (1, 30, 40, 64), 128, 32, 1, False),
    ("Face-M4 block 2", (1, 30, 40, 32), 64, 32, 1, True),
    ("Face-M4 block 3", (1, 30, 40, 32), 64, 64, 2, False),
    ("Face-M4 block 4", (1, 15, 20, 64), 128, 64, 1, True),
)
IR_TARGET_RATIO = 1.05  # the target: within 5 % of CMSIS-NN (fewer is better)


def macs_per_patch(k: int, r: int, c: int, h1: int, h2: int) -> int:
    """Naive MACs of one isolated patch: RNN1 over r rows and c columns, RNN2 four sweeps."""
    return 2 * r * c * (k * h1 + h1 * h1) + 2 * (r + c) * (h1 * h2 + h2 * h2)


def _cases(names, activations: str, rnn1_mode: str = "both"):
    import numpy as np

    from ...core.config import RNNPoolConfig
    from ...core.weights import RNNPoolWeights
    from ...reference import quantize_rnnpool, rnnpool_int8
    from ...runtime.m4_harness import HarnessCase

    pairs = {"smooth": ACTIVATIONS[:1], "hard": ACTIVATIONS[1:], "both": ACTIVATIONS}[activations]
    modes = RNN1_MODES if rnn1_mode == "both" else (rnn1_mode,)
    out = []
    for name, shape, patch, stride, hidden, padding in SHAPES:
        if names and name not in names:
            continue
        for gate, update in pairs:
            expected = None
            for mode in modes:  # same weights and map in every mode (the harness stores them once)
                rng = np.random.default_rng(0)
                config = RNNPoolConfig.create(patch, stride, hidden, padding, gate, update, rnn1_mode=mode)
                weights = RNNPoolWeights.random(shape[3], *hidden, rng, zeta=2.0, nu=-4.0)
                params = quantize_rnnpool(weights, config, 0.05, -3, 0.01, 2)
                x = rng.integers(-128, 128, size=shape).astype(np.int8)
                expected = rnnpool_int8(x, params) if expected is None else expected
                out.append((name, config, HarnessCase(params, x, expected)))
    return out


def _record(name, config, case, **measures):
    (r, c), (sr, _), (h1, h2) = config.patch_size, config.strides, config.hidden_dims
    k = case.x.shape[3]
    geo = config.geometry(case.x.shape[1], case.x.shape[2])
    patches = case.x.shape[0] * geo.out_rows * geo.out_cols
    return {
        "name": name,
        "shape": {"k": k, "patch": r, "stride": sr, "h1": h1, "h2": h2},
        "activations": f"{config.gate_activation}/{config.update_activation}",
        "rnn1_mode": config.rnn1_mode,
        "map": list(case.x.shape),
        "patches": patches,
        "macs_per_patch": macs_per_patch(k, r, c, h1, h2),
        **measures,
    }


def _bench_m4(cases):
    from ...core.errors import RNNPoolError
    from ...runtime import m4_harness as m4_toolchain

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
            raise RNNPoolError(
                f"{name}: the M4 kernel's output differs from the golden reference "
                f"({result.status}, {result.mismatches} mismatches)"
            )
        rec = _record(
            name,
            config,
            case,
            target="m4",
            bit_exact=True,
            prepared_bytes=result.prepared_bytes,
            scratch_bytes=result.scratch_bytes,
        )
        rec["instructions_per_patch"] = round(result.instructions / rec["patches"], 1)
        rec["instructions_per_mac"] = round(rec["instructions_per_patch"] / rec["macs_per_patch"], 3)
        records.append(rec)
    return records


def _bench_host(cases, seconds: float):
    import time

    import numpy as np

    from ...core.errors import RNNPoolError
    from ...runtime import native

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
        rec = _record(
            name,
            config,
            case,
            target="host",
            bit_exact=True,
            prepared_bytes=kernel.prepared_bytes,
            scratch_bytes=kernel.scratch_bytes,
        )
        rec["ns_per_patch"] = round(elapsed / runs / rec["patches"] * 1e9, 1)
        rec["runs"] = runs
        records.append(rec)
    return records


def _table(records, target: str) -> str:
    head = ("shape", "k", "patch", "stride", "h1", "h2", "activations", "RNN1", "map", "patches", "MACs/patch")
    if target == "m4":
        head += ("instr/patch", "instr/MAC", "scratch B")
    else:
        head += ("ns/patch", "scratch B")
    rows = []
    for r in records:
        s = r["shape"]
        row = (
            r["name"],
            s["k"],
            s["patch"],
            s["stride"],
            s["h1"],
            s["h2"],
            r["activations"],
            r["rnn1_mode"],
            "x".join(map(str, r["map"])),
            r["patches"],
            r["macs_per_patch"],
        )
        if target == "m4":
            row += (f"{r['instructions_per_patch']:.0f}", f"{r['instructions_per_mac']:.3f}", r["scratch_bytes"])
        else:
            row += (f"{r['ns_per_patch']:.0f}", r["scratch_bytes"])
        rows.append([str(v) for v in row])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    note = (
        "instructions counted in qemu-system-arm -M netduinoplus2 -icount shift=0 (SysTick, calibrated); "
        "outputs bit-exact with the golden reference"
        if target == "m4"
        else "host build via ctypes, wall clock; outputs bit-exact with the golden reference"
    )
    return "\n".join([line(head), *(line(r) for r in rows), note])


def _ir_cases(blocks):
    import numpy as np

    from ...reference.inverted_residual import inverted_residual_int8
    from ...reference.inverted_residual_random import random_block
    from ...runtime.m4_harness import HarnessCase

    out = []
    for index, (name, shape, ce, co, stride, residual) in enumerate(IR_BLOCKS, start=1):
        if blocks and index not in blocks:
            continue
        rng = np.random.default_rng(index)
        params = random_block(rng, shape[3], ce, co, stride, True, residual, (3, 3, 0, 0), calibrated=True)
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        out.append((name, HarnessCase(params, x, inverted_residual_int8(x, params))))
    return out


def _ir_record(name, case, **measures):
    n, h, w, ci = case.x.shape
    p = case.params
    ho, wo = case.expected.shape[1:3]
    macs = {
        "expand": n * h * w * ci * p.expanded_channels,
        "depthwise": n * ho * wo * p.expanded_channels * 9,
        "project": n * ho * wo * p.expanded_channels * p.out_channels,
    }
    # The unfused graph's intermediate activations (the expanded map, the depthwise output).
    intermediate = n * h * w * p.expanded_channels + n * ho * wo * p.expanded_channels
    return {
        "name": name,
        "input": [n, h, w, ci],
        "expanded_channels": p.expanded_channels,
        "output_channels": p.out_channels,
        "stride": p.stride,
        "residual": p.residual,
        "macs": macs,
        "unfused_intermediate_bytes": intermediate,
        **measures,
    }


def _bench_ir_m4(cases):
    from ...core.errors import RNNPoolError
    from ...deploy import invres_bench

    records = []
    for (name, case), r in zip(cases, invres_bench.compare([c for _, c in cases]), strict=True):
        if not (r.cmsis_ok and r.fused_ok):
            raise RNNPoolError(
                f"{name}: an output differs from the golden reference (CMSIS-NN ok: {r.cmsis_ok}, "
                f"fused ok: {r.fused_ok})"
            )
        cmsis = {**r.cmsis_instructions, "total": round(r.cmsis_total)}
        records.append(
            _ir_record(
                name,
                case,
                target="m4",
                bit_exact=True,
                cmsis_nn_instructions=cmsis,
                fused_instructions=round(r.fused_instructions),
                fused_over_cmsis_nn=round(r.ratio, 4),
                within_target=r.ratio <= IR_TARGET_RATIO,
                fused_scratch_bytes=r.fused_scratch_bytes,
                fused_prepared_bytes=r.fused_prepared_bytes,
            )
        )
    return records


def _bench_ir_host(cases, seconds: float):
    import time

    import numpy as np

    from ...core.errors import RNNPoolError
    from ...runtime.invres_native import PreparedInvertedResidual

    records = []
    for name, case in cases:
        kernel = PreparedInvertedResidual(case.params, case.x.shape)
        if not np.array_equal(kernel(case.x), case.expected):
            raise RNNPoolError(f"{name}: the host kernel's output differs from the golden reference")
        runs, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds or runs == 0:
            kernel(case.x)
            runs += 1
        records.append(
            _ir_record(
                name,
                case,
                target="host",
                bit_exact=True,
                ns_per_block=round(elapsed / runs * 1e9),
                runs=runs,
                fused_scratch_bytes=kernel.scratch_bytes,
                fused_prepared_bytes=kernel.prepared_bytes,
            )
        )
    return records


def _ir_table(records, target: str) -> str:
    if target == "m4":
        head = (
            "block",
            "input",
            "Ce",
            "Co",
            "s",
            "res",
            "CMSIS-NN",
            "(exp/dw/proj/add)",
            "fused",
            "fused/CMSIS",
            "scratch B",
            "unfused maps B",
        )
    else:
        head = ("block", "input", "Ce", "Co", "s", "res", "ns/block", "scratch B", "unfused maps B")
    rows = []
    for r in records:
        row = (
            r["name"],
            "x".join(map(str, r["input"])),
            r["expanded_channels"],
            r["output_channels"],
            r["stride"],
            "yes" if r["residual"] else "no",
        )
        if target == "m4":
            c = r["cmsis_nn_instructions"]
            row += (
                f"{c['total']:,}",
                "/".join(f"{c[k] / 1e6:.2f}M" for k in ("expand", "depthwise", "project", "add")),
                f"{r['fused_instructions']:,}",
                f"{r['fused_over_cmsis_nn']:.3f}",
            )
        else:
            row += (f"{r['ns_per_block']:,}",)
        row += (f"{r['fused_scratch_bytes']:,}", f"{r['unfused_intermediate_bytes']:,}")
        rows.append([str(v) for v in row])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    note = (
        "instructions counted in qemu-system-arm -M mps2-an386 -icount shift=0 (SysTick, calibrated): CMSIS-NN "
        "as TFLM's cmsis_nn kernels call it (TFLM's library build), the fused kernel with the firmware's flags; "
        f"target: fused/CMSIS <= {IR_TARGET_RATIO}; every output bit-exact with the golden reference"
        if target == "m4"
        else "host build via ctypes, wall clock; outputs bit-exact with the golden reference"
    )
    return "\n".join([line(head), *(line(r) for r in rows), note])


def run(args) -> int:
    import json

    from ...core import progress

    ir = args.what == "ir"
    cases = _ir_cases(args.block) if ir else _cases(args.shape, args.activations, getattr(args, "rnn1_mode", "both"))
    if args.target == "m4":
        with progress.activity("bench on the emulated Cortex-M4"):  # a firmware build and QEMU runs
            records = _bench_ir_m4(cases) if ir else _bench_m4(cases)
    else:  # timed: nothing else draws meanwhile
        records = _bench_ir_host(cases, args.seconds) if ir else _bench_host(cases, args.seconds)
    if args.json:
        for rec in records:
            print(json.dumps(rec))
    else:
        print((_ir_table if ir else _table)(records, args.target))
    return 0
