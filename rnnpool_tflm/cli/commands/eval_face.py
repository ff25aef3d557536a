"""`rnnpool-tflm eval-face`: WIDER FACE average precision (the official protocol) of detections."""

HELP = ("WIDER FACE AP (official protocol: IoU 0.5, 1000 thresholds, easy/medium/hard from the split "
        "files) of detections in the submission format")


def add_arguments(parser):
    parser.add_argument("model", nargs="?", help="a Keras or .tflite face detector to run on --data "
                                                 "(needs the detector post-processing, rnnpool_tflm.detection."
                                                 "postprocess); omit it to score --predictions")
    parser.add_argument("--predictions", metavar="DIR", help="detections in the official submission format: "
                                                             "one <event>/<image>.txt per image")
    parser.add_argument("--gt", metavar="FILE", help="ground truth, wider_face_val_bbx_gt.txt format")
    parser.add_argument("--splits", metavar="DIR", help="folder with wider_{easy,medium,hard}_val.mat "
                                                        "(official eval_tools/ground_truth); without it every "
                                                        "face counts and only 'all' is reported")
    parser.add_argument("--data", metavar="DIR", help="with MODEL: the WIDER FACE folder to detect on")
    parser.add_argument("--json", action="store_true", help='print one JSON object: {"ap": {subset: AP}, ...}')


def run(args):
    import json
    import sys

    from ...core.errors import RNNPoolError
    from ...detection.evaluation_files import as_json, evaluate_files

    if args.model is not None:
        _evaluate_model(args)
    if args.data is not None:
        raise RNNPoolError("--data goes with a MODEL to run; to score detections give --predictions DIR --gt FILE")
    if args.predictions is None or args.gt is None:
        raise RNNPoolError("give --predictions DIR and --gt FILE (or a MODEL with --data)")
    results, predictions, truth = evaluate_files(args.predictions, args.gt, args.splits)
    notes = []
    if predictions.missing:
        notes.append(f"{len(predictions.missing)} image(s) have no prediction file and count as no detections "
                     f"(first: {predictions.missing[0]})")
    if predictions.unknown:
        notes.append(f"{len(predictions.unknown)} prediction file(s) are for images not in the ground truth "
                     f"and were ignored (first: {predictions.unknown[0]})")
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
    """Running a detector needs its post-processing (decode + NMS), which lives in
    rnnpool_tflm.detection.postprocess; until that module exists this form is refused clearly."""
    import importlib.util

    from ...core.errors import RNNPoolError

    if importlib.util.find_spec("rnnpool_tflm.detection.postprocess") is None:
        raise RNNPoolError("evaluating a MODEL needs the detector post-processing "
                           "(rnnpool_tflm.detection.postprocess), which this installation does not have yet; "
                           "write detections in the submission format and use --predictions DIR --gt FILE")
    raise RNNPoolError("evaluating a MODEL directly is not wired to the post-processing yet; "
                       "use --predictions DIR --gt FILE")
