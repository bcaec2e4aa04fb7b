"""Recognizers that judge FaceShield's protected faces: zoo networks with their published weights.

The zoo's ``build_recognizer`` gives the architecture only; :func:`zoo_recognizer` adds the weights (a
manifest entry, checked by sha256, or a file) and freezes the network. ``weights=None`` keeps random weights
for plumbing tests, with a warning, since such a judge says nothing about identity.
"""

from __future__ import annotations

import warnings

from src.config.buildable import buildable
from src.networks.recognizers import build_recognizer
from src.networks.recognizers.base import FaceRecognizer
from src.networks.recognizers.checkpoints import load_recognizer_checkpoint
from src.weights import resolve_spec


@buildable
def zoo_recognizer(name: str, weights: str | None) -> FaceRecognizer:
    """Zoo recognizer ``name`` with ``weights``: ``manifest:<entry>``, a file path, or None (random)."""
    model = build_recognizer(name)
    if weights is None:
        warnings.warn(
            f"judge '{name}' has RANDOM weights (weights=None): for tests only; its scores carry no identity",
            stacklevel=2,
        )
    else:
        load_recognizer_checkpoint(model, resolve_spec(weights))
    return model.eval().requires_grad_(False)
