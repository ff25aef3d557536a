"""From a .tflite to the board: firmware sources, the firmware build, export, emulation
under QEMU and the fit verdict."""
