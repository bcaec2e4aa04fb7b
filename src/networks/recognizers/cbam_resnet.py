"""wujiyang/Face_Pytorch ``CBAMResNet`` in modes ``ir`` / ``ir_se`` (PRO-Face's IResNet50 / SEResNet50).

Published code: wujiyang/Face_Pytorch ``backbone/cbam.py`` (copied unchanged into PRO-Face as
``face/CBAM.py``), ``CBAMResNet(num_layers ∈ {50, 100, 152}, feature_dim=512, drop_ratio=0.4, mode)``:

- input layer: conv3×3 (3→64) → BN → PReLU;
- ``layer1``–``layer4`` of (3, 4, 14, 3) / (3, 13, 30, 3) / (3, 8, 36, 3) units, widths 64/128/256/512;
  the first unit of each layer has stride 2 and a conv1×1 + BN shortcut (``dim_match=False``) — also in
  ``layer1``, where the width does not change and TreB1eN/AdaFace use a parameter-free MaxPool(1, 2) — the
  others an identity shortcut;
- unit (``BottleNeck_IR``): BN → conv3×3 → **BN** → PReLU → conv3×3(stride) → BN [→ SE(16) for ``ir_se``] —
  AdaFace's ordering; TreB1eN's unit has no middle BN;
- output layer: BN2d → dropout 0.4 → flatten → FC(512·7·7 → 512) → BN1d (affine); raw, not L2-normalised.

So it is an IR-50 that differs from both zoo IR layouts: :class:`CBAMIRNet` is :class:`~.irse.IRNet` with the
middle BN and the projected first shortcut switched on (43.59 M parameters for ``ir``, 43.81 M for ``ir_se``,
as docs/papers/proface.md, "Frozen recognizers E", lists). Modes ``ir_cam``/``ir_sam``/``ir_cbam`` (attention
variants) are not covered: no published weights use them.

Checkpoint format ``wujiyang``: ``input_layer.{0,1,2}``, ``layer{k}.{i}.res_layer.{0..5}``
(``.6.fc1``/``.6.fc2``: SE), ``layer{k}.{i}.shortcut_layer.{0,1}``, ``output_layer.{0,3,4}``. wujiyang's
``train.py`` saves ``{'iters': n, 'net_state_dict': ...}`` (``Iter_%06d_net.ckpt``; the loader unwraps it).
PRO-Face loads its ``CASIA_WebFace_{ResNet50,SEResNet50}_IR/Iter_64000_net.pth`` with a strict
``load_state_dict(torch.load(path))``, so those are bare state dicts in this naming.

Declared conventions: 112×112, RGB, mean = std = 0.5 ([-1, 1]), 512-d. Source: PRO-Face
``face/face_recognizer.py`` (PIL RGB images, ``Normalize(0.5, 0.5)``, bicubic resize to 112), the only
published consumer of the CASIA weights. Caveat: wujiyang's loaders (``dataset/casia_webface.py``,
``dataset/lfw.py`` ``img_loader``) read images with ``cv2.imread`` — training and evaluation on **BGR**
[-1, 1]. The training code of PRO-Face's CASIA files is not published; their naming
(``CASIA_WebFace_<backbone>/Iter_<n>_net.pth``) matches a public fork of this code whose loaders also appear
to use ``cv2.imread`` (unconfirmed). Pass ``channel_order="BGR"`` to feed what those trainers fed.

Our names are :class:`~.irse.IRNet`'s; published ``layer{k}.{i}`` is our ``stages.{k-1}.{i}``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from src.networks.recognizers.base import register_recognizer
from src.networks.recognizers.checkpoints import NATIVE, KeyMapping
from src.networks.recognizers.irse import (
    HEAD,
    SE_PARTS,
    SE_PARTS_INVERSE,
    SHORTCUT,
    SHORTCUT_INVERSE,
    STEM,
    TREB1EN_DEPTHS,
    IRNet,
)

WUJIYANG = "wujiyang"
# ``res_layer`` child → our unit attribute (BottleNeck_IR / BottleNeck_IR_SE ordering).
WUJIYANG_RESIDUAL = {
    "0": "bn_in",
    "1": "conv1",
    "2": "bn_mid",
    "3": "prelu",
    "4": "conv2",
    "5": "bn_out",
    "6": "se",
}
_THEIR_UNIT = re.compile(r"^layer([1-4])\.(\d+)\.(res_layer|shortcut_layer)\.([^.]+)\.(.+)$")
_OUR_UNIT = re.compile(r"^stages\.([0-3])\.(\d+)\.([^.]+)\.(.+)$")


class CBAMIRNet(IRNet):
    """wujiyang ``CBAMResNet`` (``ir`` / ``ir_se``; depth 50, 100 or 152); see the module docstring."""

    checkpoint_formats: ClassVar[tuple[str, ...]] = (WUJIYANG, NATIVE)
    conventions_source = (
        "PRO-Face face/face_recognizer.py: PIL RGB, Normalize(0.5, 0.5), 112 px (wujiyang's loaders read cv2 "
        "BGR: see module docstring)"
    )
    depth_table: ClassVar[dict[int, tuple[int, int, int, int]]] = TREB1EN_DEPTHS
    residual_names: ClassVar[dict[str, str]] = WUJIYANG_RESIDUAL
    mid_bn: ClassVar[bool] = True
    affine_embedding_bn: ClassVar[bool] = True
    project_first_shortcut: ClassVar[bool] = True

    def __init__(
        self,
        depth: int = 50,
        se: bool = False,
        input_size: int = 112,
        dropout: float = 0.4,
        channel_order: str | None = None,
    ) -> None:
        super().__init__(depth, se, input_size, dropout, channel_order)

    def published_stage_ends(self) -> tuple[int, ...]:
        """Index of the last unit within each published ``layer{k}`` (IR-50: 2, 3, 13, 2)."""
        return tuple(count - 1 for count in self.units)

    def _published_to_ours(self, key: str, head: dict[str, str] = HEAD) -> str | None:
        for theirs, ours in (*STEM.items(), *head.items()):
            if key.startswith(theirs):
                return ours + key[len(theirs) :]
        match = _THEIR_UNIT.match(key)
        if match is None:
            return key
        stage, unit, part, child, rest = int(match[1]) - 1, int(match[2]), match[3], match[4], match[5]
        if unit >= self.units[stage]:
            return key
        if part == "shortcut_layer":
            return f"stages.{stage}.{unit}.shortcut.{SHORTCUT[child]}.{rest}" if child in SHORTCUT else key
        name = self.residual_names.get(child)
        if name is None:
            return key
        if name == "se":
            module, _, tail = rest.partition(".")
            if module not in SE_PARTS:
                return key
            rest = f"{SE_PARTS[module]}.{tail}"
        return f"stages.{stage}.{unit}.{name}.{rest}"

    def _ours_to_published(self, key: str, head: dict[str, str] = HEAD) -> str:
        for theirs, ours in (*STEM.items(), *head.items()):
            if key.startswith(ours):
                return theirs + key[len(ours) :]
        match = _OUR_UNIT.match(key)
        if match is None:
            return key
        layer, unit, name, rest = int(match[1]) + 1, int(match[2]), match[3], match[4]
        if name == "shortcut":
            child, _, tail = rest.partition(".")
            return f"layer{layer}.{unit}.shortcut_layer.{SHORTCUT_INVERSE[child]}.{tail}"
        if name == "se":
            module, _, tail = rest.partition(".")
            rest = f"{SE_PARTS_INVERSE[module]}.{tail}"
        inverse = {ours: theirs for theirs, ours in self.residual_names.items()}
        return f"layer{layer}.{unit}.res_layer.{inverse[name]}.{rest}"

    def _published_mapping(self, format: str) -> KeyMapping:
        return KeyMapping(
            WUJIYANG,
            self._published_to_ours,
            self._ours_to_published,
            "wujiyang/Face_Pytorch backbone/cbam.py CBAMResNet (mode ir / ir_se) state_dict "
            "(= PRO-Face face/CBAM.py)",
        )


@register_recognizer("ir50_casia")
def ir50_casia(**kwargs: Any) -> CBAMIRNet:
    """CBAMResNet(50, mode='ir') (PRO-Face "IResNet50", ``CASIA_WebFace_ResNet50_IR/Iter_64000_net.pth``)."""
    return CBAMIRNet(depth=50, se=False, **kwargs)


@register_recognizer("ir_se50_casia")
def ir_se50_casia(**kwargs: Any) -> CBAMIRNet:
    """CBAMResNet(50, mode='ir_se') (PRO-Face "SEResNet50", ``CASIA_WebFace_SEResNet50_IR/...``)."""
    return CBAMIRNet(depth=50, se=True, **kwargs)
