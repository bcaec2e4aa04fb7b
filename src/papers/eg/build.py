"""Build :class:`~src.papers.eg.network.EGNet` from a config: initial weights for the frozen recognizer, or
the released EG checkpoint for evaluation (files come from the weights manifest or a path)."""

from __future__ import annotations

from typing import Any

from src.config.buildable import buildable
from src.networks.recognizers import load_recognizer_checkpoint
from src.papers.eg.checkpoint import load_eg_checkpoint
from src.papers.eg.network import EGNet
from src.weights import resolve_spec


@buildable
def build_eg_net(
    detector: dict[str, Any] | None = None,
    fr_weights: str | None = None,
    fr_input: str = "native",
    fr_name: str = "iresnet18",
    weights: str | None = None,
) -> EGNet:
    """``detector``: options of :func:`~src.networks.detectors.build_detector_net` (EfficientNet-B4 with
    AdvProp weights in the experiments); ``fr_name``: the frozen recognizer (zoo name); ``fr_weights``: its
    weights (the ArcFace IResNet-18 in insightface layout, ``manifest:eg-arcface-iresnet18``), ``None``
    keeps the zoo's own (the dlib network loads its packaged file; an IResNet stays random, which only tests
    may do: the guidance is then meaningless); ``weights``: a released EG checkpoint loaded over everything
    (evaluation)."""
    net = EGNet(detector=detector, fr_input=fr_input, fr_name=fr_name)
    if fr_weights:
        load_recognizer_checkpoint(net.face_model, resolve_spec(fr_weights), format="insightface")
    if weights:
        load_eg_checkpoint(net, resolve_spec(weights))
    net.loaded = {"fr_weights": fr_weights, "weights": weights}
    return net
