"""PRO-Face's five frozen recognizers, built by their PRO-Face names from the zoo and the weights manifest.

PRO-Face (lixionga/ProFace ``FacePrivacy/PRO-Face/face/face_recognizer.py``; ``docs/papers/proface.md``,
"Frozen recognizers E") trains one embedder per (obfuscator, recognizer) through a frozen recognizer chosen by
name:

=================  ======================  ========================================  =======================
PRO-Face name      zoo name (format)       upstream file (face/checkpoints/...)      manifest entry
=================  ======================  ========================================  =======================
MobileFaceNet      mobilefacenet_casia     CASIA_WebFace_MobileFaceNet/              proface-mobilefacenet-
                   (proface)               Iter_64000_net.pth                        casia
InceptionResNet    facenet_vggface2        vggface2.pt (facenet-pytorch              facenet-vggface2
                   (facenet_pytorch)       20180402-114759-vggface2.pt)
IResNet50          ir50_casia (wujiyang)   CASIA_WebFace_ResNet50_IR/Iter_64000...   proface-ir50-casia
SEResNet50         ir_se50_casia           CASIA_WebFace_SEResNet50_IR/Iter_64000..  proface-ir-se50-casia
                   (wujiyang)
IResNet100         iresnet100              iresnet100.pt                             proface-iresnet100
                   (insightface)
=================  ======================  ========================================  =======================

PRO-Face feeds every recognizer RGB in [-1, 1] (``Normalize(0.5, 0.5)``), bicubically resized to its input
size (160 for InceptionResNet, 112 for the others); :func:`build_proface_recognizer` sets exactly that input
contract on the zoo module (for InceptionResNet this replaces facenet-pytorch's ``(x·255 − 127.5)/128``
standardisation, a 0.4 % scale difference). PRO-Face's losses use the raw module outputs, which are
L2-normalised only for InceptionResNet (facenet-pytorch normalises inside ``forward``):
``ProFaceRecognizerSpec.l2_normalized_output`` says which, so a port can reproduce it with
``embed(..., normalize=spec.l2_normalized_output)``. (``embed(..., resize=True)`` resizes bilinearly with
antialiasing, not bicubically as PRO-Face: resize beforehand for exact parity.)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.config.buildable import formerly
from src.networks.recognizers import cbam_resnet, facenet, iresnet, mobilefacenet_wujiyang
from src.networks.recognizers.base import FaceRecognizer, build_recognizer
from src.networks.recognizers.checkpoints import LoadReport, load_recognizer_checkpoint
from src.weights import WeightEntry, WeightsError, resolve

MANIFEST = "manifest"
PROFACE_MEAN = (0.5, 0.5, 0.5)
PROFACE_STD = (0.5, 0.5, 0.5)


class RandomWeightsWarning(UserWarning):
    """A PRO-Face recognizer was built without weights (random init): its embeddings mean nothing."""


@dataclass(frozen=True)
class ProFaceRecognizerSpec:
    """How PRO-Face used one recognizer and how the zoo rebuilds it.

    ``name``: the PRO-Face name; ``zoo_name``/``build_kwargs``: :func:`build_recognizer` arguments;
    ``weights``: the manifest entry of the published file and ``checkpoint_format`` its key layout;
    ``upstream_file``: its path under PRO-Face's ``face/checkpoints/``; ``input_size``: the side PRO-Face
    resizes to; ``embedding_dim``; ``l2_normalized_output``: whether PRO-Face's module returns L2-normalised
    embeddings (its triplet losses use the module output as is); ``channel_order``/``mean``/``std``: the input
    contract PRO-Face feeds (RGB, [-1, 1]).
    """

    name: str
    zoo_name: str
    weights: str
    checkpoint_format: str
    upstream_file: str
    input_size: int
    embedding_dim: int
    l2_normalized_output: bool
    build_kwargs: Mapping[str, Any] = field(default_factory=dict)
    channel_order: str = "RGB"
    mean: tuple[float, float, float] = PROFACE_MEAN
    std: tuple[float, float, float] = PROFACE_STD


PROFACE_RECOGNIZERS: dict[str, ProFaceRecognizerSpec] = {
    spec.name: spec
    for spec in (
        ProFaceRecognizerSpec(
            name="MobileFaceNet",
            zoo_name="mobilefacenet_casia",
            weights="proface-mobilefacenet-casia",
            checkpoint_format=mobilefacenet_wujiyang.PROFACE,
            upstream_file="CASIA_WebFace_MobileFaceNet/Iter_64000_net.pth",
            input_size=112,
            embedding_dim=128,
            l2_normalized_output=False,
        ),
        ProFaceRecognizerSpec(
            name="InceptionResNet",
            zoo_name="facenet_vggface2",
            weights="facenet-vggface2",
            checkpoint_format=facenet.FACENET_PYTORCH,
            upstream_file="vggface2.pt",
            input_size=160,
            embedding_dim=512,
            l2_normalized_output=True,
        ),
        ProFaceRecognizerSpec(
            name="IResNet50",
            zoo_name="ir50_casia",
            weights="proface-ir50-casia",
            checkpoint_format=cbam_resnet.WUJIYANG,
            upstream_file="CASIA_WebFace_ResNet50_IR/Iter_64000_net.pth",
            input_size=112,
            embedding_dim=512,
            l2_normalized_output=False,
        ),
        ProFaceRecognizerSpec(
            name="IResNet100",
            zoo_name="iresnet100",
            weights="proface-iresnet100",
            checkpoint_format=iresnet.INSIGHTFACE,
            upstream_file="iresnet100.pt",
            input_size=112,
            embedding_dim=512,
            l2_normalized_output=False,
        ),
        ProFaceRecognizerSpec(
            name="SEResNet50",
            zoo_name="ir_se50_casia",
            weights="proface-ir-se50-casia",
            checkpoint_format=cbam_resnet.WUJIYANG,
            upstream_file="CASIA_WebFace_SEResNet50_IR/Iter_64000_net.pth",
            input_size=112,
            embedding_dim=512,
            l2_normalized_output=False,
        ),
    )
}


def proface_recognizer_spec(name: str) -> ProFaceRecognizerSpec:
    """The spec of PRO-Face recognizer ``name``; unknown names list the five."""
    if name not in PROFACE_RECOGNIZERS:
        raise ValueError(
            f"unknown PRO-Face recognizer {name!r}; PRO-Face names: {', '.join(PROFACE_RECOGNIZERS)}"
        )
    return PROFACE_RECOGNIZERS[name]


@formerly(
    "src.networks.recognizers.build_proface_recognizer",
    "src.networks.recognizers.proface_names.build_proface_recognizer",
)
def build_proface_recognizer(
    name: str,
    weights: str | os.PathLike[str] | None = MANIFEST,
    *,
    freeze: bool = True,
    manifest: Mapping[str, WeightEntry] | None = None,
) -> FaceRecognizer:
    """The zoo recognizer PRO-Face calls ``name``, with PRO-Face's input contract (RGB, [-1, 1], its size).

    ``weights``:

    - ``"manifest"`` (default): the published file of the manifest entry ``spec.weights``, located and checked
      by :func:`src.weights.resolve` (errors name the file, where to put it and how to get or pin it);
    - a path: that file, loaded in ``spec.checkpoint_format`` (strict; no manifest check);
    - ``None``: **random initialisation**, for synthetic runs and tests only (a
      :class:`RandomWeightsWarning` says so); the embeddings carry no identity information.

    The returned module is frozen (eval mode, no parameter gradients) unless ``freeze=False``; its
    ``proface_load_report`` attribute holds the :class:`LoadReport` (``None`` for random weights).
    ``manifest`` overrides the framework manifest (tests).
    """
    spec = proface_recognizer_spec(name)
    model = build_recognizer(spec.zoo_name, **spec.build_kwargs)
    model.channel_order = spec.channel_order
    model.mean = spec.mean
    model.std = spec.std
    report: LoadReport | None = None
    if weights is None:
        warnings.warn(
            f"PRO-Face recognizer '{name}' ({spec.zoo_name}) built with RANDOM weights (weights=None): for "
            f"synthetic runs and tests only; its embeddings carry no identity information",
            RandomWeightsWarning,
            stacklevel=2,
        )
    else:
        if isinstance(weights, str) and weights == MANIFEST:
            try:
                path = resolve(spec.weights, manifest)
            except WeightsError as exc:
                raise type(exc)(
                    f"PRO-Face recognizer '{name}' needs weights '{spec.weights}' (PRO-Face's "
                    f"face/checkpoints/{spec.upstream_file}): {exc}"
                ) from exc
        else:
            path = Path(weights)
        report = load_recognizer_checkpoint(model, path, format=spec.checkpoint_format)
    model.proface_load_report = report
    return model.freeze() if freeze else model
