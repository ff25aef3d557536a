"""`rnnpool-tflm convert`: Keras model -> int8 .tflite with one RNNPool custom op per layer."""

HELP = "convert a Keras model (QAT, or float with representative data) to an int8 .tflite"


def add_arguments(parser):
    parser.add_argument(
        "model",
        help="Keras model: .keras / .h5 file, SavedModel directory, or zoo:NAME (a float "
        "zoo model with random weights, as `profile` takes it; needs --representative); "
        "or a .tflite, whose memory plan alone is redone (--memory-plan)",
    )
    parser.add_argument("-o", "--output", required=True, help="output .tflite path (written atomically)")
    parser.add_argument(
        "--representative",
        metavar="FILE.npz",
        help="representative inputs for post-training quantization of a float model "
        "(one array per model input, named like the input, or 'x')",
    )
    parser.add_argument(
        "--float-io", action="store_true", help="float32 model input/output (QUANTIZE/DEQUANTIZE around the int8 graph)"
    )
    parser.add_argument(
        "--no-fuse",
        action="store_true",
        help="keep the plain graph: do not fold op chains into custom ops (the replicate "
        "pad after RNNPool, inverted-residual blocks); the outputs are the same bytes either way",
    )
    parser.add_argument(
        "--rnn1-mode",
        choices=("cached", "recompute"),
        default=None,
        help="RNNPool ops: cache RNN1 results across overlapping patches (default, fewest "
        "instructions) or recompute them per patch (scratch of about 1 KB instead of tens); "
        "for a .tflite: change it (default: keep)",
    )
    parser.add_argument(
        "--memory-plan",
        choices=("offline", "greedy"),
        default="offline",
        help="offline (default): write TFLM a memory plan from the exact tensor lifetimes, "
        "with in-place ops where provably safe, when it needs less arena than TFLM's own; "
        "greedy: leave planning to TFLM's greedy planner",
    )


def run(args):
    import os

    from ...analysis.profile import ZOO_PREFIX, load
    from ...convert.keras_converter import convert_model, representative_hint
    from ...core.errors import RNNPoolError
    from ...core.files import atomic_write_bytes, load_arrays, require_output_file

    zoo = args.model.startswith(ZOO_PREFIX)
    if not zoo and not os.path.exists(args.model):
        raise RNNPoolError(f"model {args.model} does not exist")
    require_output_file(args.output, "output")  # before the conversion, not after it
    memory_plan = getattr(args, "memory_plan", "offline")
    if not zoo and args.model.endswith(".tflite"):
        given = [
            flag
            for flag, used in (
                ("--representative", args.representative),
                ("--float-io", args.float_io),
                ("--no-fuse", args.no_fuse),
            )
            if used
        ]
        if given:
            raise RNNPoolError(
                f"{args.model} is converted already: {', '.join(given)} only apply to a Keras model "
                "(a .tflite takes --memory-plan and --rnn1-mode)"
            )
        return _replan(args.model, args.output, memory_plan, getattr(args, "rnn1_mode", None))
    data = None
    if args.representative:
        data = load_arrays(args.representative, "representative data file")
    model = load(args.model).keras_model
    if model is None:
        raise RNNPoolError(
            f"cannot load Keras model {args.model}: it is a .tflite already (convert takes a .keras/.h5 "
            f"file, a SavedModel folder or {ZOO_PREFIX}NAME)"
        )
    if zoo and data is None:
        raise RNNPoolError(
            f"{args.model} is a float model with random weights: calibrate it with --representative "
            f"FILE.npz holding {representative_hint(model)}"
        )
    result = convert_model(
        model,
        data,
        float_io=args.float_io,
        fuse=not args.no_fuse,
        rnn1_mode=getattr(args, "rnn1_mode", None) or "cached",
        memory_plan=memory_plan,
    )
    atomic_write_bytes(args.output, result.tflite)
    print(f"wrote {args.output}")
    print(result.summary.format())
    if result.fusion is not None and (result.fusion.fused or result.fusion.skipped):
        print(result.fusion.format())
    from ...convert.memory_plan import describe

    print(describe(result.memory_plan))
    print(f"validated: {len(result.nodes)} RNNPool op(s) match the op contract")
    return 0


def _replan(path: str, output: str, memory_plan: str, rnn1_mode=None) -> int:
    """A converted .tflite with its memory plan redone (and its RNNPool ops' rnn1_mode changed
    when given); nothing else changes."""
    import pathlib

    from ...convert.memory_plan import apply_memory_plan, describe
    from ...core.files import atomic_write_bytes
    from ...tflite import model as tfm

    data = pathlib.Path(path).read_bytes()
    tfm.validate_model(tfm.read_model(data, path), path)
    if rnn1_mode is not None:
        data = tfm.set_rnn1_mode(data, rnn1_mode)
    planned, plan = apply_memory_plan(data, memory_plan)
    atomic_write_bytes(output, planned)
    print(f"wrote {output}")
    print(describe(plan))
    return 0
