"""The Keras RNNPool layer (tf-keras), its TensorFlow forward pass and EdgeML weight import."""
