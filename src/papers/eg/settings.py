"""EG's declarations for the shared machinery: tiny test settings (with a checkpoint in the released layout)
and cost entries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from src.papers.eg.checkpoint import to_original_state_dict
from src.papers.eg.network import EGNet
from src.papers.registry import CostEntry, TinySettings, register_cost, register_tiny_settings

TINY_RELEASED = "eg/eg_released_layout.tar"


def write_released_layout(path: Path) -> Path:
    """A random EG network saved exactly as the authors' file is (``{"model": state_dict}`` with the
    original key names): what the evaluation-only experiments load in the tests."""
    torch.manual_seed(0)
    net = EGNet(detector={"name": "efficientnet_b4", "input_size": 32})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": to_original_state_dict(net)}, path)
    return path


_RELEASED = (
    "model.net.detector.name=efficientnet_b4",
    "model.net.detector.dropout=0.4",
    f"model.net.weights={{tiny_data}}/{TINY_RELEASED}",
    "ckpt_path=null",
)

register_tiny_settings(
    "eg",
    TinySettings(
        # the artifact branch swapped for the small CNN and a random (frozen) recognizer; the real
        # EfficientNet-B4 + IResNet-18 are loaded from a released-layout file by the evaluation rows
        model=(
            "model.net.detector.name=small_cnn",
            "model.net.detector.weights=null",
            "model.net.detector.dropout=0.0",
            "model.net.detector.drop_path_rate=0.0",
            "model.net.fr_weights=null",
        ),
        experiments={
            "eg/ffpp_c23": ("datamodule.methods=null",),
            "eg/celeb_df_v2": _RELEASED,
            "eg/released_*": (*_RELEASED, "datamodule.methods=null"),
        },
        files={TINY_RELEASED: write_released_layout},
    ),
)


def _passes(net: EGNet, batch: int, size: int, device: torch.device) -> Mapping[str, Callable[[], Any]]:
    """Inference (the only path the released model runs) and the frozen recognizer's guidance pass."""
    g = torch.Generator().manual_seed(size * 100 + batch)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)
    return {"infer": lambda: net(x), "fr_guidance": lambda: net.face_embedding(x)}


register_cost(
    "eg",
    CostEntry(
        network="EG (EfficientNet-B4 + frozen IResNet-18)",
        build=lambda: EGNet().eval(),
        params=49_924_940,  # the released module layout (all parts; 25.9 M trainable)
        sizes=((380, "EG size"),),
        passes=_passes,
    ),
)
