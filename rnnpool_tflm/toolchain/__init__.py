"""Compilers and sources the native builds use: the TFLM tree (TFLM_DIR), the build
cache, and the Cortex-M4 kernel harness under QEMU."""
