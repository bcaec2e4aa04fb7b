"""The detection baselines' declarations for the shared machinery: tiny test settings and cost entries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from src.networks.detectors import build_detector_net
from src.papers.registry import CostEntry, TinySettings, register_cost, register_tiny_settings

register_tiny_settings(
    "detection_baselines",
    TinySettings(
        # the experiments' networks swapped for the 4.9 M-parameter CNN (same options); the real Xception and
        # EfficientNet-B4 are built and stepped in tests/test_detectors.py
        model=("model.net.name=small_cnn", "model.net.weights=null"),
        # the miniature FF++ index holds two manipulations only
        # (evaluation-only rows load a random small-CNN checkpoint)
        experiments={
            "detection_baselines/*/ffpp_c23": ("datamodule.methods=null",),
            "detection_baselines/demo_synthetic": ("datamodule.methods=null",),
            "detection_baselines/*/celeb_df_v2": ("ckpt_path={tiny_data}/detectors/small_cnn.ckpt",),
            "detection_baselines/demo_synthetic_cross_*": (
                "ckpt_path={tiny_data}/detectors/small_cnn.ckpt",
                "datamodule.methods=null",
            ),
        },
    ),
)


def _passes(net: nn.Module, batch: int, size: int, device: torch.device) -> Mapping[str, Callable[[], Any]]:
    """Inference on fixed [0, 1] images. (No training pass: torch's FlopCounterMode overcounts the backward
    of grouped convolutions tenfold, and both networks are made of them; a training step is about three
    forward passes.)"""
    g = torch.Generator().manual_seed(size * 100 + batch)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)
    return {"infer": lambda: net(x)}


COST_ENTRIES_BY_NETWORK = {
    entry.network: entry
    for entry in register_cost(
        "detection_baselines",
        CostEntry(
            network="Xception",
            build=lambda: build_detector_net("xception").eval(),
            params=20_811_050,
            sizes=((299, "FF++ size"), (256, "DeepfakeBench size")),
            passes=_passes,
        ),
        CostEntry(
            network="EfficientNet-B4",
            build=lambda: build_detector_net("efficientnet_b4").eval(),
            params=17_552_202,
            sizes=((380, "SBI size"), (256, "DeepfakeBench size")),
            passes=_passes,
        ),
    )
}
