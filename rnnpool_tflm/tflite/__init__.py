"""The one TensorFlow-free reader, editor and writer of .tflite models and custom-op options."""
