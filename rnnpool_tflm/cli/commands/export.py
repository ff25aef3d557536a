"""`rnnpool-tflm export`: a model's firmware sources (C array, operator list, test data)."""

HELP = "write a .tflite model into the firmware's generated sources (C array, ops, arena, test data)"


def add_arguments(parser):
    parser.add_argument("model", help="the .tflite model")
    parser.add_argument(
        "--firmware",
        required=True,
        metavar="DIR",
        help="the firmware project folder (e.g. firmware); files go to DIR/generated",
    )
    parser.add_argument(
        "--input",
        metavar="FILE.npy",
        help="test input (.npy, or .npz for several inputs; float data is quantized); "
        "default: deterministic random data",
    )
    parser.add_argument(
        "--board", default="nucleo_f446re", help="board whose RAM/flash the model must fit (default: nucleo_f446re)"
    )
    parser.add_argument(
        "--no-boxes",
        action="store_true",
        help="for a detector, leave the post-processing out of the firmware (default: it prints "
        "the boxes, docs/detection.md)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    import json
    import pathlib

    from ...core import progress
    from ...deploy.export import export_model
    from ...detection.on_device import detector_setup_or_none

    model = pathlib.Path(args.model)
    detector = None if args.no_boxes or not model.is_file() else detector_setup_or_none(model.read_bytes())
    # With TFLM sources the arena is measured on the emulated Cortex-M4 and the firmware built: minutes.
    with progress.activity("export"):
        generated, verdict = export_model(
            model, pathlib.Path(args.firmware), pathlib.Path(args.input) if args.input else None, args.board, detector
        )
    m = generated.manifest
    if args.json:
        print(
            json.dumps(
                {
                    "directory": str(generated.directory),
                    "files": [str(f) for f in generated.files],
                    "ops": m["ops"],
                    "arena_bytes": m["arena_bytes"],
                    "arena_figure_bytes": m["arena_figure_bytes"],
                    "arena_figure_source": m["arena_figure_source"],
                    "model_bytes": m["model_bytes"],
                    "emulated_output_matches_host": m.get("emulated_output_matches_host"),
                    "detector": m.get("detector") is not None,
                    **{f"verdict_{k}": v for k, v in verdict.as_dict().items()},
                }
            )
        )
        return 0
    print(f"exported {args.model} -> {generated.directory}")
    print(f"  operators: {', '.join(m['ops'])}")
    print(
        f"  model {m['model_bytes']:,} B; arena {m['arena_bytes']:,} B "
        f"({m['arena_figure_source']} {m['arena_figure_bytes']:,} B + margin)"
    )
    if "emulated_output_matches_host" in m:
        print(f"  emulated Cortex-M4 output equals the host's: {'yes' if m['emulated_output_matches_host'] else 'NO'}")
    if "detector" in m:
        print(
            f"  detector: the firmware prints up to {m['detector']['top_k']} boxes "
            f"({m['detector']['scratch_bytes']:,} B of post-processing scratch)"
        )
    print(f"  {verdict.message()}")
    print(f"  files: {', '.join(f.name for f in generated.files)}")
    return 0
