"""`rnnpool-tflm emulate`: the firmware on an emulated Cortex-M4 (QEMU), against the host."""

HELP = "build the firmware for an emulated Cortex-M4 and run a model in QEMU (needs TFLM_DIR)"


def add_arguments(parser):
    from ...core.boards import QEMU_MACHINES

    parser.add_argument("model", help="the .tflite model")
    parser.add_argument(
        "--input",
        metavar="FILE.npy",
        help="test input (.npy, or .npz for several inputs); default: deterministic random data",
    )
    parser.add_argument(
        "--machine",
        default="auto",
        choices=("auto", *QEMU_MACHINES),
        help="netduinoplus2: STM32F405 (128 KB SRAM + 64 KB CCM, 1 MB flash); "
        "mps2-an386: Cortex-M4 with 4 MB for larger models; auto (default): the F405, "
        "or mps2-an386 when the model does not fit the F405",
    )
    parser.add_argument(
        "--arena", type=int, metavar="BYTES", help="fixed arena size (default: the rest of the SRAM block)"
    )
    parser.add_argument("--keep", metavar="DIR", help="keep the generated sources, ELF and QEMU output here")
    parser.add_argument("--timeout", type=float, default=600.0, help="QEMU time limit in seconds (default 600)")
    parser.add_argument(
        "--no-boxes",
        action="store_true",
        help="for a detector (outputs: a zoo face detector's heads), do not post-process its "
        "outputs on the device (default: the firmware prints the boxes and they are "
        "compared with the host's)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (with \"boxes\": [[x1, y1, x2, y2, score], ...] in input pixels for a detector)",
    )


def run(args):
    import json
    import pathlib

    from ...core import progress
    from ...deploy.emulate import emulate_model, measure_arena
    from ...detection.on_device import detector_setup_or_none

    if args.arena is not None and args.arena < 16:
        raise ValueError(f"--arena must be at least 16 bytes, got {args.arena}")
    model = pathlib.Path(args.model)
    detector = None if args.no_boxes or not model.is_file() else detector_setup_or_none(model.read_bytes())
    # Exporting, building (the TFLM library's first build takes minutes) and running QEMU:
    # elapsed time, and the build's notes (as lines when stderr is not a terminal).
    input_path = pathlib.Path(args.input) if args.input else None
    options = dict(
        keep_dir=pathlib.Path(args.keep) if args.keep else None, arena_bytes=args.arena, timeout=args.timeout
    )
    where = "the emulated Cortex-M4" if args.machine == "auto" else args.machine
    with progress.activity(f"emulate on {where}", echo_notes=True) as note:
        if args.machine == "auto":
            result = measure_arena(model, input_path, log=note, detector=detector, **options)
        else:
            result = emulate_model(model, input_path, args.machine, log=note, detector=detector, **options)
    report = result.as_dict()
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.model} on QEMU {report['machine']}:")
        print(f"  output matches host: {'yes' if report['output_matches_host'] else 'NO'}")
        if report["output_sha256"]:
            print(f"  output SHA-256: {report['output_sha256']}")
        print(f"  arena used: {report['arena_used_bytes']:,} B")
        print(f"  instructions (Invoke): {report['instructions']:,}")
        print(
            f"  flash: {report['flash_bytes']:,} B; RAM: {report['ram_bytes']:,} B "
            f"(static {report['static_ram_bytes']:,} + arena; stack {report['stack_bytes']:,} B apart, "
            f"{report['stack_used_bytes'] or 0:,} B of it used)"
        )
        for op in report["op_instructions"] or []:
            print(f"    op {op['index']:3d} {op['op']:<24} {op['instructions']:>12,} instructions")
        if "boxes" in report:
            print(
                f"  detector: {len(report['boxes'])} box(es) on the device, equal to the host's: "
                f"{'yes' if report['boxes_match_host'] else 'NO'} (post-processing "
                f"{report['detection_instructions']:,} instructions)"
            )
            for x1, y1, x2, y2, score in report["boxes"][:10]:
                print(f"    ({x1:.1f}, {y1:.1f}) - ({x2:.1f}, {y2:.1f})  score {score:.3f}")
            if len(report["boxes"]) > 10:
                print(f"    ... {len(report['boxes']) - 10} more")
    return 0 if report["output_matches_host"] and report.get("boxes_match_host", True) else 1
