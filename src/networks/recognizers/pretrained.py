"""A zoo recognizer with its published weights, frozen: the form in which papers use a recognizer as a judge,
a loss or a server network.

The zoo's ``build_recognizer`` gives the architecture only; :func:`pretrained_recognizer` adds the weights
(a manifest entry, checked by sha256, or a file) and freezes the network. ``weights=None`` keeps random
weights for plumbing tests, with a warning, since such a network says nothing about identity.
"""

from __future__ import annotations

import warnings
from typing import Any

from src.config.buildable import formerly
from src.networks.recognizers.base import FaceRecognizer, build_recognizer
from src.networks.recognizers.checkpoints import load_recognizer_checkpoint
from src.weights import resolve_spec


@formerly("src.papers.faceshield.judges.zoo_recognizer")
def pretrained_recognizer(
    name: str, weights: str | None, format: str | None = None, **kwargs: Any
) -> FaceRecognizer:
    """Zoo recognizer ``name`` (built with ``kwargs``) with ``weights``: ``manifest:<entry>``, a file path, or
    None (random); ``format`` is the checkpoint's key layout (the network's first declared one by default)."""
    model = build_recognizer(name, **kwargs)
    if weights is None:
        warnings.warn(
            f"recognizer '{name}' has RANDOM weights (weights=None): for tests only; its embeddings carry no "
            "identity",
            stacklevel=2,
        )
    else:
        load_recognizer_checkpoint(model, resolve_spec(weights), format=format)
    freeze = getattr(model, "freeze", None)
    return freeze() if callable(freeze) else model.eval().requires_grad_(False)
