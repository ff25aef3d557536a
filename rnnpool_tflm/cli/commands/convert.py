"""`rnnpool-tflm convert`: Keras model -> int8 .tflite with one RNNPool custom op per layer."""

HELP = "convert a Keras model (QAT, or float with representative data) to an int8 .tflite"


def add_arguments(parser):
    parser.add_argument("model", help="Keras model: .keras / .h5 file, SavedModel directory, or zoo:NAME (a float "
                                      "zoo model with random weights, as `profile` takes it; needs --representative)")
    parser.add_argument("-o", "--output", required=True, help="output .tflite path (written atomically)")
    parser.add_argument("--representative", metavar="FILE.npz",
                        help="representative inputs for post-training quantization of a float model "
                             "(one array per model input, named like the input, or 'x')")
    parser.add_argument("--float-io", action="store_true",
                        help="float32 model input/output (QUANTIZE/DEQUANTIZE around the int8 graph)")
    parser.add_argument("--no-fuse", action="store_true",
                        help="keep the plain graph: do not fold op chains into custom ops (e.g. the replicate "
                             "pad after RNNPool); the outputs are the same bytes either way")
    parser.add_argument("--rnn1-mode", choices=("cached", "recompute"), default="cached",
                        help="RNNPool ops: cache RNN1 results across overlapping patches (default, fewest "
                             "instructions) or recompute them per patch (scratch of about 1 KB instead of tens)")


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
    data = None
    if args.representative:
        data = load_arrays(args.representative, "representative data file")
    model = load(args.model).keras_model
    if model is None:
        raise RNNPoolError(f"cannot load Keras model {args.model}: it is a .tflite already (convert takes a .keras/.h5 "
                           f"file, a SavedModel folder or {ZOO_PREFIX}NAME)")
    if zoo and data is None:
        raise RNNPoolError(f"{args.model} is a float model with random weights: calibrate it with --representative "
                           f"FILE.npz holding {representative_hint(model)}")
    result = convert_model(model, data, float_io=args.float_io, fuse=not args.no_fuse,
                           rnn1_mode=getattr(args, "rnn1_mode", "cached"))
    atomic_write_bytes(args.output, result.tflite)
    print(f"wrote {args.output}")
    print(result.summary.format())
    print(f"validated: {len(result.nodes)} RNNPool op(s) match the op contract")
    return 0
