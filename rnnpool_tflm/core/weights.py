"""Plain NumPy containers for the float weights of an RNNPool layer.

Orientation follows EdgeML: pre-activations are ``x @ W + h @ U`` with
``W: [inputs, hidden]`` and ``U: [hidden, hidden]``.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class FastGRNNWeights:
    w: np.ndarray  # [inputs, hidden]
    u: np.ndarray  # [hidden, hidden]
    bias_gate: np.ndarray  # [hidden]
    bias_update: np.ndarray  # [hidden]
    zeta: float  # used as sigmoid(zeta)
    nu: float  # used as sigmoid(nu)

    @property
    def hidden(self) -> int:
        return int(self.w.shape[1])

    @property
    def inputs(self) -> int:
        return int(self.w.shape[0])

    def validate(self, name: str, inputs: int, hidden: int) -> None:
        expected = {"w": (inputs, hidden), "u": (hidden, hidden), "bias_gate": (hidden,), "bias_update": (hidden,)}
        for field, shape in expected.items():
            got = tuple(np.shape(getattr(self, field)))
            if got != shape:
                raise ValueError(f"{name}.{field} has shape {got}, expected {shape}")


@dataclasses.dataclass
class RNNPoolWeights:
    rnn1: FastGRNNWeights
    rnn2: FastGRNNWeights

    @property
    def channels(self) -> int:
        return self.rnn1.inputs

    @property
    def hidden_dims(self) -> tuple:
        return self.rnn1.hidden, self.rnn2.hidden

    def validate(self) -> None:
        self.rnn1.validate("rnn1", self.rnn1.inputs, self.rnn1.hidden)
        self.rnn2.validate("rnn2", self.rnn1.hidden, self.rnn2.hidden)

    @classmethod
    def random(
        cls,
        channels: int,
        h1: int,
        h2: int,
        rng: np.random.Generator,
        scale: float = 0.5,
        zeta: float = 100.0,
        nu: float = -100.0,
    ) -> RNNPoolWeights:
        """Random weights for tests and benchmarks (not a training initialiser)."""

        def cell(n_in: int, n_h: int) -> FastGRNNWeights:
            return FastGRNNWeights(
                w=(rng.standard_normal((n_in, n_h)) * scale / np.sqrt(n_in)).astype(np.float32),
                u=(rng.standard_normal((n_h, n_h)) * scale / np.sqrt(n_h)).astype(np.float32),
                bias_gate=(rng.standard_normal(n_h) * 0.5).astype(np.float32),
                bias_update=(rng.standard_normal(n_h) * 0.5).astype(np.float32),
                zeta=float(zeta),
                nu=float(nu),
            )

        return cls(cell(channels, h1), cell(h1, h2))
