"""Shared test set-up: Keras 2 before TensorFlow, quiet TF logs, deterministic hypothesis."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from hypothesis import HealthCheck, settings  # noqa: E402

import rnnpool_tflm  # noqa: E402,F401  (selects tf-keras before anything imports TensorFlow)

# Derandomized so CI runs the same examples every time; no per-example deadline
# (TensorFlow's first calls are slow and would make the suite flaky).
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
