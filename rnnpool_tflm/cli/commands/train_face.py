"""`rnnpool-tflm train-face`: train a zoo face detector (float or QAT) into a run folder."""

HELP = (
    "train a face detector (Face-M4, Face-Quant) on WIDER FACE or synthetic faces, float or QAT, "
    "on one device, the GPUs of one machine or several machines (tf.distribute)"
)


def _size(text):
    import argparse

    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS (e.g. 120x160), got {text!r}") from None
    return rows, cols


def add_arguments(parser):
    parser.add_argument(
        "--data",
        help="'synthetic' (built-in faces) or 'wider:DIR' (WIDER FACE in its official "
        "layout, see docs/wider_face.md); not with --resume",
    )
    parser.add_argument("--model", default="face_m4", help="face_m4 (default) or face_quant")
    parser.add_argument("--epochs", type=int, help="epochs (default 10); with --resume: a new total")
    parser.add_argument(
        "--qat",
        action="store_true",
        help="quantization-aware training (ranges calibrated first); usually with --init FLOAT_RUN/best.keras",
    )
    parser.add_argument("--init", metavar="MODEL", help="start from this saved detector (.keras)")
    parser.add_argument("--batch-size", type=int, default=32, help="global batch, split between replicas (default 32)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, cosine-decayed (default 1e-3)")
    parser.add_argument(
        "--input-size",
        type=_size,
        metavar="ROWSxCOLS",
        help="train at another input size (default: the model's, 240x320 for face_m4)",
    )
    parser.add_argument("--train-images", type=int, default=2048, help="synthetic: training images (default 2048)")
    parser.add_argument(
        "--val-images",
        type=int,
        default=256,
        help="validation images (synthetic: default 256; WIDER: the first N of val, 0 = all)",
    )
    parser.add_argument(
        "--checkpoint-steps",
        type=int,
        default=200,
        metavar="N",
        help="save the training state every N steps (default 200)",
    )
    parser.add_argument(
        "--strategy",
        default="auto",
        choices=("auto", "mirrored", "multiworker", "default"),
        help="tf.distribute strategy (auto: multiworker with TF_CONFIG, mirrored with several GPUs)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the stopped run in RUN_DIR")
    parser.add_argument("--seed", type=int, default=0, help="seed for data order, augmentation and weights")
    parser.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard logs")
    parser.add_argument("-o", "--out", required=True, metavar="RUN_DIR", help="the run folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")


def run(args):
    import json
    import sys

    from ...core.errors import RNNPoolError
    from ...detection.training import TrainSettings, train_face

    settings = None
    if args.resume:
        if args.data is not None or args.init is not None or args.qat:
            raise RNNPoolError("--resume continues RUN_DIR with its own settings; give only --epochs (a new total)")
    else:
        if args.data is None:
            raise RNNPoolError("give --data synthetic or --data wider:DIR (or --resume)")
        settings = TrainSettings(
            data=args.data,
            model=args.model,
            epochs=10 if args.epochs is None else args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            qat=args.qat,
            init=args.init,
            input_size=args.input_size,
            train_images=args.train_images,
            val_images=args.val_images,
            checkpoint_steps=args.checkpoint_steps,
            seed=args.seed,
        )
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    result = train_face(
        settings,
        args.out,
        resume=args.resume,
        epochs=args.epochs if args.resume else None,
        strategy=args.strategy,
        tensorboard=not args.no_tensorboard,
        log=log,
    )
    last = {k: v[-1] for k, v in result.history.items() if v}
    if args.json:
        print(
            json.dumps(
                {
                    "run_dir": str(result.run_dir),
                    "best": str(result.best),
                    "final": str(result.final),
                    "replicas": result.replicas,
                    "last_epoch": last,
                    "data": result.data_report,
                }
            )
        )
        return 0
    losses = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "epoch")
    print(f"epoch {last.get('epoch', 0)}: {losses}")
    print(
        f"best: {result.best}  final: {result.final}  history: {result.run_dir / 'history.csv'}  "
        f"TensorBoard: {result.run_dir / 'logs'}"
    )
    data = result.data_report["data"]
    seed = f" --seed {result.data_report['val_set']}" if data == "synthetic" else ""
    print(f"score it: rnnpool-tflm eval-face {result.best} --data {data}{seed}")
    return 0
