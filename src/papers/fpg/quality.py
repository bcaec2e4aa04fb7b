"""FPG's frozen face-quality teacher: the SDD-FIQA regressor (Ou et al., CVPR 2021; Tencent/TFace
``quality``).

The network is TFace's ``R50([112, 112], use_type="Qua")``: the IR-50 body of the TreB1eN / face.evoLVe
layout (:class:`~src.networks.recognizers.irse.IRNet`, unit BN → conv3×3 → PReLU → conv3×3(stride) → BN)
with a one-unit head ``Flatten → PReLU(512·7·7) → Dropout(0.5) → Linear(512·7·7 → 1)`` instead of the
embedding head. Its checkpoint (``SDD_FIQA_checkpoints_r50.pth``, manifest ``fpg-sdd-fiqa-r50``) names the
parts ``input_layer``, ``body.<g>.res_layer|shortcut_layer`` and ``quality.1`` / ``quality.3``; format
``sdd_fiqa`` maps them onto ours (the ``module.`` prefix of a DataParallel save is stripped) and loads
strictly.

FPG's input (``utils/qnet/eval.py``): the batch in ``[0, 1]`` ×255 cast to uint8 (truncating), resized to 112
with antialiasing, back to ``[0, 1]``, normalised with mean = std = 0.5; the target is the score / 50.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any, ClassVar

import torch
import torchvision.transforms.functional as TF
from torch import Tensor, nn

from src.config.buildable import buildable
from src.networks.recognizers.checkpoints import NATIVE, KeyMapping, load_recognizer_checkpoint
from src.networks.recognizers.irse import IRNet
from src.weights import resolve_spec

SDD_FIQA = "sdd_fiqa"
#: the published head's children (Flatten, PReLU, Dropout, Linear) → ours
QUALITY_HEAD = {"quality.1.": "head.prelu.", "quality.3.": "head.fc."}


class QualityRegressor(IRNet):
    """SDD-FIQA's quality regressor: IR body + one-unit head (module docstring). ``forward_features`` of a
    preprocessed batch gives the raw score ``[B, 1]``; :meth:`score` takes images in ``[0, 1]``."""

    embedding_dim = 1
    checkpoint_formats: ClassVar[tuple[str, ...]] = (SDD_FIQA, NATIVE)
    conventions_source = (
        "Tencent/TFace quality/eval.py (RGB, Resize 112, Normalize(0.5, 0.5)); FPG src/utils/qnet/eval.py "
        "read_imgs2 (×255 → uint8, antialiased resize to 112, /255, Normalize(0.5, 0.5))"
    )

    def __init__(self, depth: int = 50, input_size: int = 112, dropout: float = 0.5) -> None:
        super().__init__(depth=depth, se=False, input_size=input_size, dropout=dropout)
        width = 512 * (input_size // 16) ** 2
        self.head = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                prelu=nn.PReLU(width),
                dropout=nn.Dropout(dropout),
                fc=nn.Linear(width, 1),
            )
        )

    def preprocess_like_fpg(self, images: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` in ``[0, 1]`` → the network input, exactly as FPG prepares it."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"QualityRegressor: expected [B, 3, H, W] images, got {tuple(images.shape)}")
        pixels = (images.detach().clamp(0, 1) * 255).to(torch.uint8)  # truncation, as .type(torch.uint8)
        pixels = TF.resize(pixels, list(self.input_size), antialias=True)
        x = pixels.to(torch.float32) / 255
        return (x - 0.5) / 0.5

    def score(self, images: Tensor) -> Tensor:
        """Raw quality scores ``[B, 1]`` of images in ``[0, 1]``."""
        return self.forward_features(self.preprocess_like_fpg(images))

    def _published_mapping(self, format: str) -> KeyMapping:
        return KeyMapping(
            SDD_FIQA,
            lambda key: self._published_to_ours(key, QUALITY_HEAD),
            lambda key: self._ours_to_published(key, QUALITY_HEAD),
            "Tencent/TFace quality generate_pseudo_labels/extract_embedding/model/model.py "
            "R50([112, 112], use_type='Qua') state_dict (SDD_FIQA_checkpoints_r50.pth)",
        )


@buildable
def build_quality_teacher(weights: str | None, depth: int = 50, **options: Any) -> QualityRegressor:
    """The frozen teacher: ``weights`` is ``manifest:fpg-sdd-fiqa-r50`` (or a path) in TFace's layout;
    ``None`` leaves it randomly initialised, for tests only (its targets then mean nothing)."""
    net = QualityRegressor(depth=depth, **options)
    if weights:
        load_recognizer_checkpoint(net, resolve_spec(weights), format=SDD_FIQA)
    else:
        warnings.warn(
            "FPG quality teacher built with RANDOM weights (weights=None): for tests only; its quality "
            "targets carry no information",
            UserWarning,
            stacklevel=2,
        )
    net.freeze()
    return net


def quality_targets(teacher: QualityRegressor, images: Tensor, scale: float = 50.0) -> Tensor:
    """``Q(x) / scale`` ``[B, 1]`` without gradients (the regression targets of FPG's quality head)."""
    with torch.no_grad():
        return teacher.score(images).float() / scale
