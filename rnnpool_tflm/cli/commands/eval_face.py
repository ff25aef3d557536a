"""`rnnpool-tflm eval-face`: WIDER FACE average precision (the official protocol) of a detector run on
synthetic faces or WIDER FACE, or of saved detections."""

HELP = (
    "WIDER FACE AP (official protocol: IoU 0.5, 1000 thresholds, easy/medium/hard from the split "
    "files) of a face detector run on data, or of detections in the submission format"
)


def add_arguments(parser):
    parser.add_argument(
        "model",
        nargs="?",
        help="a face detector to run on --data: Keras (.keras, .h5, "
        "SavedModel folder, float or QAT) or a converted .tflite; "
        "omit it to score --predictions",
    )
    parser.add_argument(
        "--predictions",
        metavar="DIR",
        help="detections in the official submission format: one <event>/<image>.txt per image",
    )
    parser.add_argument("--gt", metavar="FILE", help="ground truth, wider_face_val_bbx_gt.txt format")
    parser.add_argument(
        "--splits",
        metavar="DIR",
        help="folder with wider_{easy,medium,hard}_val.mat "
        "(official eval_tools/ground_truth); without it every "
        "face counts and only 'all' is reported",
    )
    parser.add_argument(
        "--data",
        metavar="SPEC",
        help="with MODEL: 'synthetic' (built-in synthetic faces) or 'wider:DIR' (WIDER FACE in its official layout)",
    )
    parser.add_argument(
        "--split", default="val", choices=("val", "train"), help="with wider:DIR: the split (default val)"
    )
    parser.add_argument(
        "--count",
        type=int,
        metavar="N",
        help="with MODEL: evaluate N images (synthetic: "
        "default 200; WIDER: the first N of the ground truth, default all)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        help="synthetic: the image set (default 1, the validation set of a train-face run with seed 0)",
    )
    parser.add_argument(
        "--save-predictions", metavar="DIR", help="with wider:DIR: also write the detections in the submission format"
    )
    parser.add_argument(
        "--emulate",
        action="store_true",
        help="with a .tflite MODEL: run it in the firmware on "
        "the emulated Cortex-M4 (needs TFLM_DIR; one firmware run per image, so slow)",
    )
    parser.add_argument("--json", action="store_true", help='print one JSON object: {"ap": {subset: AP}, ...}')


def run(args):
    import json
    import sys

    from ...core.errors import RNNPoolError
    from ...detection.evaluation_files import as_json, evaluate_files

    if args.model is not None:
        return _evaluate_model(args)
    if args.data is not None:
        raise RNNPoolError("--data goes with a MODEL to run; to score detections give --predictions DIR --gt FILE")
    if args.emulate or args.count is not None or args.save_predictions is not None:
        raise RNNPoolError("--emulate, --count and --save-predictions go with a MODEL and --data")
    if args.predictions is None or args.gt is None:
        raise RNNPoolError("give --predictions DIR and --gt FILE (or a MODEL with --data)")
    results, predictions, truth = evaluate_files(args.predictions, args.gt, args.splits)
    notes = []
    if predictions.missing:
        notes.append(
            f"{len(predictions.missing)} image(s) have no prediction file and count as no detections "
            f"(first: {predictions.missing[0]})"
        )
    if predictions.unknown:
        notes.append(
            f"{len(predictions.unknown)} prediction file(s) are for images not in the ground truth "
            f"and were ignored (first: {predictions.unknown[0]})"
        )
    if args.json:
        report = as_json(results)
        report["images"] = len(truth.faces)
        report["notes"] = notes
        print(json.dumps(report))
        return 0
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"WIDER FACE AP (IoU 0.5, 1000 thresholds), {len(truth.faces)} images:")
    for name, result in results.items():
        ap = "n/a (no faces)" if result.ap is None else f"{result.ap:.4f}"
        print(f"  {name:<7} {ap}   ({result.faces} faces)")
    return 0


def _evaluate_model(args):
    import json
    import sys

    from ...core import progress
    from ...core.errors import RNNPoolError
    from ...detection.face_evaluation import evaluate_face_model

    if args.data is None:
        raise RNNPoolError("a MODEL is evaluated on --data synthetic or --data wider:DIR")
    if args.predictions is not None or args.gt is not None:
        raise RNNPoolError("--predictions and --gt score saved detections; they do not go with a MODEL")

    with progress.bar(desc="eval-face", unit="image", leave=False) as images:

        def advance(done, total):
            images.total = total
            images.update(done - images.n)

        result = evaluate_face_model(
            args.model,
            args.data,
            count=args.count,
            seed=args.seed,
            split=args.split,
            splits_dir=args.splits,
            save_predictions=args.save_predictions,
            emulate=args.emulate,
            progress=advance,
        )
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(result.format())
    return 0
