"""Subcommands of `rnnpool-tflm` (see rnnpool_tflm.cli.main)."""
