"""`rnnpool-tflm profile`: per-layer parameters, MACs and memory, paper convention next to the TFLM arena."""

HELP = (
    "per-layer parameters, MACs, activation memory and peak RAM (paper convention and TFLM arena), "
    "optionally plotted against a baseline"
)


def add_arguments(parser):
    parser.add_argument(
        "model",
        help="a .keras/.h5 model, a SavedModel folder, a .tflite, or zoo:NAME "
        "(zoo: mobilenetv2_rnnpool, mobilenetv2, mobilenetv2_rnnpool_vww, "
        "mobilenetv2_vww, face_m4, face_m4_strided_conv, face_quant)",
    )
    parser.add_argument("--board", help="board to check the memory against (e.g. nucleo_f446re)")
    parser.add_argument(
        "--no-boxes",
        action="store_true",
        help="for a detector, judge the firmware without its post-processing, as `export "
        "--no-boxes` builds it (default: with it, as `export` does)",
    )
    parser.add_argument("--plot", metavar="FILE.png", help="draw memory over the layers into this PNG")
    parser.add_argument(
        "--baseline",
        metavar="MODEL",
        help="a second model (same forms as MODEL) to compare with, on the same plot axes",
    )
    parser.add_argument(
        "--tflite",
        metavar="FILE",
        help="the converted .tflite of MODEL for the TFLM part (default: convert MODEL with rnnpool_tflm.convert)",
    )
    parser.add_argument(
        "--target",
        default="cortex-m4",
        choices=("cortex-m4", "x86-64"),
        help="TFLM build whose arena is modelled (default: cortex-m4)",
    )
    parser.add_argument(
        "--element-bytes",
        type=int,
        default=1,
        choices=(1, 4),
        help="bytes per activation element for the paper-convention figures: 1 (int8, "
        "default) or 4 (float32, as the paper's classification tables)",
    )
    parser.add_argument(
        "--resident-input",
        action="store_true",
        help="keep the input image in RAM throughout (as Table 5's Face-M4 figure)",
    )
    parser.add_argument("--no-tflm", action="store_true", help="skip the conversion and the TFLM arena")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    import json
    import pathlib

    from ...analysis import profile as prof
    from ...core.boards import get_board
    from ...core.errors import RNNPoolError

    if args.board:
        get_board(args.board)  # a bad name fails before any model is built

    if args.plot and pathlib.Path(args.plot).suffix.lower() != ".png":
        raise RNNPoolError(f"--plot must name a .png file, got {args.plot!r}")
    tflite = None
    if args.tflite:
        if pathlib.Path(args.tflite).suffix.lower() != ".tflite":
            raise RNNPoolError(f"--tflite {args.tflite!r} is not a .tflite file")
        tflite = prof.load(args.tflite).tflite
    from ...detection.on_device import detector_setup_or_none

    options = dict(
        board=args.board,
        bytes_per_element=args.element_bytes,
        resident_input=args.resident_input,
        target=args.target,
        with_tflm=not args.no_tflm,
        detector_for=None if args.no_boxes else detector_setup_or_none,
    )
    main = prof.profile(prof.load(args.model), tflite=tflite, **options)
    profiles = [main]
    if args.baseline:
        profiles.append(prof.profile(prof.load(args.baseline), **options))
    if args.plot:
        prof.plot_memory(profiles, args.plot, board=main.board)
    if args.json:
        report = main.as_dict()
        if args.baseline:
            report["baseline"] = profiles[1].as_dict()
        if args.plot:
            report["plot"] = str(args.plot)
        print(json.dumps(report))
        return 0
    for i, p in enumerate(profiles):
        if i:
            print()
            print("baseline:")
        print(prof.format_profile(p))
    if args.plot:
        print(f"\nplot written to {args.plot}")
    return 0
