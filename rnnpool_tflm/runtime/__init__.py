"""Running models on the host: the ctypes C kernel, the tflite-micro interpreter, the
registered op, the partitioned host runner and input loading."""
