"""`rnnpool-tflm check`: host run, parity with Keras, RNNPool bit-exactness, arena and board fit."""

HELP = "check an int8 .tflite: parity with the Keras model, RNNPool bit-exactness, arena and board fit"


def add_arguments(parser):
    parser.add_argument("model", help="the .tflite to check")
    parser.add_argument(
        "--keras",
        metavar="MODEL",
        help="the Keras model it came from, for parity: a .keras/.h5 "
        "file, a SavedModel folder or zoo:NAME (as `convert` built it)",
    )
    parser.add_argument(
        "--data",
        metavar="FILE.npz",
        help="inputs (one array per model input, or 'x') and optional labels 'y'; default: generated inputs",
    )
    parser.add_argument("--board", metavar="NAME", help="judge the fit for this board (e.g. nucleo_f446re)")
    parser.add_argument(
        "--no-boxes",
        action="store_true",
        help="for a detector, judge the firmware without its post-processing, as `export "
        "--no-boxes` builds it (default: with it, as `export` does)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--samples", type=int, default=64, help="generated inputs when --data is absent")
    parser.add_argument(
        "--mode",
        choices=("auto", "partitioned", "registered"),
        default="auto",
        help="how the RNNPool op runs on the host (auto: registered when TFLM_DIR is set)",
    )
    parser.add_argument("--min-top1", type=float, default=0.99, help="required top-1 agreement (default 0.99)")
    parser.add_argument("--max-lsb", type=int, default=2, help="allowed max abs output error in LSB (default 2)")


def run(args):
    import json
    import os
    import pathlib
    import sys

    from ...analysis.profile import ZOO_PREFIX, load
    from ...check.checker import check_model
    from ...core import progress
    from ...core.errors import RNNPoolError
    from ...core.files import require_file

    if args.model.startswith(ZOO_PREFIX):
        raise RNNPoolError(
            f"check takes a converted .tflite; convert {args.model} first: rnnpool-tflm convert "
            f"{args.model} -o MODEL.tflite --representative FILE.npz, then check MODEL.tflite "
            f"--keras {args.model}"
        )
    require_file(args.model, "model file")
    if args.keras and not args.keras.startswith(ZOO_PREFIX) and not os.path.exists(args.keras):
        raise RNNPoolError(f"Keras model {args.keras} does not exist")
    if args.data:
        require_file(args.data, "data file")
    if args.board:
        from ...core.boards import get_board

        get_board(args.board)  # a bad name fails before the work
    if args.samples <= 0:
        raise RNNPoolError(f"--samples must be positive, got {args.samples}")
    keras_model = args.keras
    if keras_model and keras_model.startswith(ZOO_PREFIX):
        keras_model = load(keras_model).keras_model
    detector = None
    if args.board and not args.no_boxes:  # the firmware export would build: a detector prints its boxes
        from ...detection.on_device import detector_setup_or_none

        detector = detector_setup_or_none(pathlib.Path(args.model).read_bytes())
    # The arena may be measured on the emulated Cortex-M4: a firmware build and a QEMU run.
    with progress.activity("check"):
        report = check_model(
            args.model,
            keras_model=keras_model,
            data=args.data,
            board=args.board,
            samples=args.samples,
            mode=args.mode,
            min_top1=args.min_top1,
            max_lsb=args.max_lsb,
            detector=detector,
        )
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        print(report.format())
    if not report.ok:
        print(f"rnnpool-tflm check: failed: {'; '.join(report.failures)}", file=sys.stderr)
        return 1
    return 0
