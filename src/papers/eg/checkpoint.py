"""Loading EG's released weights (``EG_FF++(raw).tar``) into :class:`~src.papers.eg.network.EGNet`.

The original saves ``{"model": Detector.state_dict()}`` where ``net`` is a lukemelas ``efficientnet_pytorch``
EfficientNet-B4 and ``face_model`` an insightface IResNet-18; :data:`EG_ORIGINAL` renames every key:

============================================  ====================================================
original                                      ours
============================================  ====================================================
``net._fc.{weight,bias}``                     ``detector.head.1.{weight,bias}``
``net.<lukemelas key>``                       ``detector.backbone.<timm key>`` (EfficientNet table)
``face_model.layer{k}.…``                     ``face_model.net.stages.{k-1}.…``
``face_model.<other>``                        ``face_model.net.<other>``
``reconstruction_network.fc.{i}.…``           ``reconstruction_network.{i}.…``
``bn``, ``reshape_layer``, ``fc_cat``,         unchanged
``fc_cat1``, ``fc``
============================================  ====================================================

The file is read with ``torch.load(weights_only=True)`` (tensors only, never arbitrary objects) and the
load is strict: a missing, unexpected or misshapen key raises an error naming it.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from src.networks.detectors.efficientnet_keys import lukemelas_to_timm, timm_to_lukemelas
from src.networks.recognizers.checkpoints import KeyMapping, convert_state_dict, read_checkpoint
from src.networks.recognizers.iresnet import insightface_to_ours, ours_to_insightface
from src.papers.eg.network import EGNet

_NET, _FC = "net.", "net._fc."
_OUR_BACKBONE, _OUR_FC = "detector.backbone.", "detector.head.1."
_RECON, _OUR_RECON = "reconstruction_network.fc.", "reconstruction_network."
_FACE = "face_model."


def original_to_ours(key: str) -> str:
    """A key of the released EG checkpoint → our parameter name (table in the module docstring)."""
    if key.startswith(_FC):
        return _OUR_FC + key[len(_FC) :]
    if key.startswith(_NET):
        try:
            return _OUR_BACKBONE + lukemelas_to_timm(key[len(_NET) :])
        except KeyError:
            return key  # not an EfficientNet-B4 key: the strict load reports it as unexpected
    if key.startswith(_FACE):
        return _FACE + insightface_to_ours(key[len(_FACE) :])
    if key.startswith(_RECON):
        return _OUR_RECON + key[len(_RECON) :]
    return key


def ours_to_original(key: str) -> str:
    """Inverse of :func:`original_to_ours`."""
    if key.startswith(_OUR_FC):
        return _FC + key[len(_OUR_FC) :]
    if key.startswith(_OUR_BACKBONE):
        return _NET + timm_to_lukemelas(key[len(_OUR_BACKBONE) :])
    if key.startswith(_FACE):
        return _FACE + ours_to_insightface(key[len(_FACE) :])
    if key.startswith(_OUR_RECON):
        return _RECON + key[len(_OUR_RECON) :]
    return key


EG_ORIGINAL = KeyMapping(
    "eg-original",
    original_to_ours,
    ours_to_original,
    "lixionga/ProFace FaceSecurity/EG Detector.state_dict() saved as {'model': ...} (EG_FF++(raw).tar)",
)


def to_original_state_dict(net: EGNet) -> dict[str, Tensor]:
    """Our state dict under the original's key names (export; builds test checkpoints)."""
    return {ours_to_original(key): value for key, value in net.state_dict().items()}


def load_eg_checkpoint(net: EGNet, path: str | Path) -> dict[str, object]:
    """Load a released EG checkpoint into ``net`` strictly; returns what the run record keeps about it."""
    state, containers = read_checkpoint(path)
    converted, stripped, dropped, filled = convert_state_dict(net, state, EG_ORIGINAL, str(path))
    net.load_state_dict(converted, strict=True)
    return {
        "path": str(path),
        "format": EG_ORIGINAL.format,
        "containers": list(containers),
        "stripped_prefixes": list(stripped),
        "filled": len(filled),
        "dropped": list(dropped),
    }
