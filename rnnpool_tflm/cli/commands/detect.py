"""`rnnpool-tflm detect`: a face detector's boxes drawn on images (PNG)."""

HELP = "run a face detector (Keras, .tflite or the emulated firmware) on images and draw its boxes (PNG)"


def add_arguments(parser):
    parser.add_argument("model", help="a Keras detector (.keras, .h5, SavedModel folder) or a converted .tflite")
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files (any format Pillow reads); "
        "resized and converted to the model's input, the boxes drawn on the original",
    )
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for the drawn images (<name>.png)")
    parser.add_argument("--threshold", type=float, default=0.5, help="draw boxes scoring at least this (default 0.5)")
    parser.add_argument(
        "--emulate",
        action="store_true",
        help="run the .tflite in the firmware on the emulated Cortex-M4, which post-processes "
        "on the device (needs TFLM_DIR; one firmware run per image)",
    )
    parser.add_argument(
        "--machine",
        choices=("netduinoplus2", "mps2-an386"),
        help="with --emulate: the QEMU machine (default: netduinoplus2, mps2-an386 when the "
        "model does not fit the F405)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    import json
    import pathlib

    import numpy as np

    from ...core import progress
    from ...core.errors import RNNPoolError
    from ...detection.images import draw_detections, fit_to_model, read_rgb, save_png
    from ...detection.runners import open_detector, runner_kind_label

    if not 0.0 <= args.threshold <= 1.0:
        raise RNNPoolError(f"--threshold must be a score in [0, 1], got {args.threshold}")
    if args.machine and not args.emulate:
        raise RNNPoolError("--machine goes with --emulate")
    read = [(path, *read_rgb(path)) for path in args.images]  # an unreadable image stops us before the model loads
    # The emulated firmware builds and runs once per image: elapsed time and the build's notes.
    with progress.activity("detect", echo_notes=args.emulate) as note:
        runner = open_detector(args.model, emulate=args.emulate, machine=args.machine, log=note)
        loaded = [fit_to_model(path, rgb, notes, runner.input_shape) for path, rgb, notes in read]
        found = runner.detect(np.stack([image.model_input for image in loaded]))
    out_dir = pathlib.Path(args.out)
    report, used = [], set()
    for image, dets in zip(loaded, found, strict=True):
        keep = dets.scores >= np.float32(args.threshold)
        rows, cols = image.size
        boxes = dets.boxes[keep].astype(np.float64) * np.array([cols, rows, cols, rows])
        scores = dets.scores[keep]
        name = image.path.stem
        while name in used:
            name += "_"
        used.add(name)
        png = save_png(draw_detections(image.original, boxes, scores), out_dir / f"{name}.png")
        report.append(
            {
                "image": str(image.path),
                "output": str(png),
                "notes": list(image.notes),
                "boxes": [
                    [*(round(float(v), 2) for v in box), round(float(s), 4)]
                    for box, s in zip(boxes, scores, strict=True)
                ],
            }
        )
    if args.json:
        print(
            json.dumps(
                {"model": args.model, "run": runner_kind_label(runner), "threshold": args.threshold, "images": report}
            )
        )
        return 0
    print(f"{args.model} ({runner_kind_label(runner)}), boxes scoring >= {args.threshold}:")
    for entry in report:
        notes = f" ({'; '.join(entry['notes'])})" if entry["notes"] else ""
        print(f"  {entry['image']}: {len(entry['boxes'])} face(s) -> {entry['output']}{notes}")
    return 0
