"""Facts every stage shares: errors, atomic files, the RNNPool configuration and weights,
the custom-op contracts (parsed from their C headers) and the board record."""
