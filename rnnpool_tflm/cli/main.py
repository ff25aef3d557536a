"""`rnnpool-tflm` command line: one module per subcommand in rnnpool_tflm.cli.commands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

from .. import __version__

# Subcommand modules, imported on use so that `--help` does not load TensorFlow.
# Each defines HELP (one line), add_arguments(parser) and run(args) -> int.
COMMANDS = ("demo", "convert", "check", "export", "emulate", "profile", "bench", "train-face", "eval-face", "detect")


def _load(name: str):
    return importlib.import_module(f"rnnpool_tflm.cli.commands.{name.replace('-', '_')}")


def build_parser(commands: Optional[List[str]] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnpool-tflm", description="RNNPool from Keras to an int8 TensorFlow Lite Micro model on Cortex-M4."
    )
    parser.add_argument("--version", action="version", version=f"rnnpool-tflm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands if commands is not None else COMMANDS:
        module = _load(name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            help="no progress bars (bars show only on a terminal, and never with --json)",
        )
        p.set_defaults(_module=module)
    return parser


def _import_tensorflow_quietly() -> None:
    """TensorFlow prints start-up notices on fd 2 before its logging is configured;
    they are noise on a command line. Import errors still raise normally."""
    if "tensorflow" in sys.modules:
        return
    import rnnpool_tflm  # noqa: F401  (Keras 2 before TensorFlow)

    from ..runtime.native_output import captured_stderr_fd

    with captured_stderr_fd():
        import tensorflow  # noqa: F401


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    # Only the chosen subcommand's module is imported (TensorFlow is slow to load).
    chosen = [a for a in argv if a in COMMANDS][:1]
    wants_help = not chosen and any(a in ("-h", "--help") for a in argv)
    parser = build_parser(None if (wants_help or not chosen) else chosen)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from ..core import progress

    try:
        _import_tensorflow_quietly()
        # stdout carries the results; progress goes to stderr, and not at all with --quiet or --json.
        with progress.shown(False if args.quiet or getattr(args, "json", False) else None):
            return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure becomes one clear line, not a traceback
        if args.debug:
            raise
        from ..core.errors import RNNPoolError

        kind = "" if isinstance(exc, (RNNPoolError, ValueError, OSError)) else f"{type(exc).__name__}: "
        print(f"rnnpool-tflm {args.command}: error: {kind}{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
