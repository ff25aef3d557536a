"""The `rnnpool-tflm` command line (main) and the demo pipeline."""
