"""EG's network: an EfficientNet-B4 artifact branch with a BNNeck, guided in training by a frozen ArcFace.

Module names follow the released checkpoint (:mod:`src.papers.eg.checkpoint` maps its keys), so each part
is where the original has it:

- ``detector``: the artifact branch, a :class:`~src.networks.detectors.DetectorNet` (EfficientNet-B4 by
  default); its ``head`` Linear is the original's ``net._fc``;
- ``bn``: the BNNeck between the pooled features and ``net._fc`` (BatchNorm1d, weight 1, bias 0);
- ``face_model``: the frozen face recognizer (insightface IResNet-18), read out with EG's own head:
  ``emb = features(GAP(z) + GMP(z))``, ``z = dropout(bn2(layer4(...)))`` (its ``fc`` stays, unused). Any
  other recognizer of the zoo (``fr_name``) gives its own embedding instead (e.g. the offline
  ``dlib_resnet`` of the CPU demo, whose weights ship with a package);
- ``reshape_layer`` (1792 → 2304), ``reconstruction_network`` (2304 → 1024 → 1792), ``fc_cat`` and
  ``fc_cat1`` (BN + bias-free linear classifiers), ``fc`` (512 → 2): the training-only heads.

The test-time forward is the original's exactly: ``f → dropout → bn → net._fc``; only that path runs at
test. The face recognizer sees the detector's ``[0, 1]`` crops through the ``fr_input`` contract, which the
original never defined: ``"native"`` (default: the recognizer's own input size and normalisation; for the
ArcFace IResNet, resized to 112 and mapped to ``[-1, 1]``) or ``"raw"`` (the ``[0, 1]`` crop as is; IResNet
only, since its read-out pools any size).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.networks.detectors import DetectorNet, build_detector_net
from src.networks.recognizers import FaceRecognizer, build_recognizer
from src.networks.recognizers.iresnet import InsightFaceIResNet

FR_INPUTS = ("native", "raw")


class BNClassifier(nn.Module):
    """BatchNorm1d (bias frozen at 0) then a bias-free linear layer initialised with N(0, 0.001²)."""

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(in_dim)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(in_dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(bn(x), logits)``."""
        feature = self.bn(x)
        return feature, self.classifier(feature)


class EGNet(nn.Module):
    """The EG detector (module docstring); ``forward(images in [0, 1]) -> [B, 2]`` logits."""

    def __init__(
        self,
        detector: DetectorNet | dict[str, Any] | None = None,
        face_model: FaceRecognizer | None = None,
        fr_input: str = "native",
        fr_name: str = "iresnet18",
        hidden_dim: int = 1024,
    ) -> None:
        super().__init__()
        if fr_input not in FR_INPUTS:
            raise ValueError(f"model.net.fr_input must be one of {FR_INPUTS}, got {fr_input!r}")
        if detector is None or isinstance(detector, dict):
            detector = build_detector_net(**{"name": "efficientnet_b4", **(detector or {})})
        self.detector = detector
        width = detector.feature_dim
        self.bn = nn.BatchNorm1d(width)
        self.face_model = face_model if face_model is not None else build_recognizer(fr_name)
        self.face_model.freeze()
        if fr_input == "raw" and not isinstance(self.face_model, InsightFaceIResNet):
            raise ValueError(
                f"model.net.fr_input=raw needs the IResNet read-out (any input size); "
                f"{type(self.face_model).__name__} takes its own input size: use fr_input=native"
            )
        embedding = self.face_model.embedding_dim
        fused = width + embedding
        self.reshape_layer = nn.Linear(width, fused)
        self.reconstruction_network = nn.Sequential(
            nn.Linear(fused, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, width)
        )
        self.fc_cat = BNClassifier(width, 2)
        self.fc_cat1 = BNClassifier(width, 2)
        self.fc = nn.Linear(embedding, 2)
        self.fr_input = fr_input
        self._init_heads()

    def _init_heads(self) -> None:
        """Kaiming (fan-out) linear layers with zero bias and unit BatchNorm, as the original initialises
        its own layers (the backbone and the recognizer keep theirs)."""
        for module in (self.bn, self.reshape_layer, self.reconstruction_network, self.fc):
            for layer in module.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.kaiming_normal_(layer.weight, a=0, mode="fan_out")
                    nn.init.zeros_(layer.bias)
                elif isinstance(layer, nn.BatchNorm1d):
                    nn.init.ones_(layer.weight)
                    nn.init.zeros_(layer.bias)

    # --- the artifact branch ----------------------------------------------------------------------------
    def artifact_features(self, images: Tensor) -> Tensor:
        """Pooled detector features ``f`` ``[B, 1792]`` of images in ``[0, 1]``."""
        return self.detector.features(images)

    def classify(self, features: Tensor) -> Tensor:
        """The test-time head: ``net._fc(bn(dropout(f)))``."""
        dropout, linear = self.detector.head[0], self.detector.head[1]
        return linear(self.bn(dropout(features)))

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``[B, 2]`` (class 1 = fake) of images in ``[0, 1]``: the original's test forward."""
        return self.classify(self.artifact_features(images))

    # --- the face-recognition branch --------------------------------------------------------------------
    def fr_preprocess(self, images: Tensor) -> Tensor:
        """Detector crops in ``[0, 1]`` → the recognizer's input under ``fr_input``."""
        if self.fr_input == "raw":
            return images
        return self.face_model.preprocess(images, resize=True)

    @torch.no_grad()
    def face_embedding(self, images: Tensor) -> Tensor:
        """The frozen recognizer's embedding (no gradient): EG's ``features(GAP(z) + GMP(z))`` read-out for
        the IResNet, the recognizer's own embedding otherwise."""
        x = self.fr_preprocess(images)
        if not isinstance(self.face_model, InsightFaceIResNet):
            return self.face_model.forward_features(x)
        net = self.face_model.net
        x = net.prelu(net.bn1(net.conv1(x)))
        for stage in net.stages:
            x = stage(x)
        z = net.dropout(net.bn2(x))
        pooled = F.adaptive_avg_pool2d(z, 1).flatten(1) + F.adaptive_max_pool2d(z, 1).flatten(1)
        return net.features(pooled)

    def describe(self) -> dict[str, Any]:
        """What the run record says about the network (the FR input contract included)."""
        return {
            "detector": self.detector.describe(),
            "face_model": self.face_model.describe(),
            "fr_input": self.fr_input,
            "fr_input_meaning": (
                "the recognizer's own size and normalisation" if self.fr_input == "native" else "the crop"
            ),
            "trainable_parameters": sum(p.numel() for p in self.parameters() if p.requires_grad),
        }
