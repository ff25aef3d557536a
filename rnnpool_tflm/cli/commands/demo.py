"""`rnnpool-tflm demo`: the whole pipeline on built-in data."""

HELP = "run the pipeline end to end on built-in data (train, QAT, convert, check, export, emulate)"


def add_arguments(parser):
    parser.add_argument(
        "--task",
        choices=("classifier", "face"),
        default="classifier",
        help="classifier (default): line orientations, 64x64; face: Face-M4 on synthetic faces "
        "(AP float/QAT/int8, boxes on the emulated M4, an image with the boxes)",
    )
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument("--quick", action="store_true", help="less data and fewer epochs (about a minute)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and initial weights")


def run(args):
    if args.task == "face":
        from ..face_demo import run_face_demo

        run_face_demo(args.out, quick=args.quick, seed=args.seed)
        return 0
    from ..demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0
