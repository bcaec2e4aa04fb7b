"""FPG's declarations for the shared machinery: tiny test settings (with a small-CNN FPG checkpoint for the
evaluation-only experiment) and the cost entry."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from src.papers.fpg.module import FPGModule
from src.papers.fpg.network import FPGNet
from src.papers.registry import CostEntry, TinySettings, register_cost, register_tiny_settings
from src.utils.checkpoint_files import write_weights_checkpoint

TINY_CHECKPOINT = "fpg/small_cnn_fpg.ckpt"


def write_tiny_checkpoint(path: Path) -> Path:
    """A Lightning checkpoint of :class:`FPGModule` on the small CNN (random weights): what the
    evaluation-only experiment loads in the tests."""
    torch.manual_seed(0)
    module = FPGModule(
        FPGNet(backbone={"name": "small_cnn", "input_size": 64}),
        functools.partial(torch.optim.AdamW),
        quality_teacher=None,
    )
    return write_weights_checkpoint(module, path)


register_tiny_settings(
    "fpg",
    TinySettings(
        # EfficientNet-B4 swapped for the small CNN; 64-px crops give it a 2×2 feature map, so masked pooling,
        # pair filtering and Grad-CAM all have something to work on (32 px would give 1×1)
        model=(
            "model.net.backbone.name=small_cnn",
            "model.net.backbone.weights=null",
            "model.net.backbone.dropout=0.0",
            "model.net.backbone.drop_path_rate=0.0",
            "datamodule.image_size=64",
        ),
        experiments={
            # the training row keeps every term: a RANDOM IR-50 teacher stands in for the SDD-FIQA file
            "fpg/ffpp_c23": (
                "datamodule.methods=null",
                "model.quality_teacher.weights=null",
                "trainer.precision=32-true",
                "trainer.accumulate_grad_batches=1",
            ),
            "fpg/celeb_df_v2": (f"ckpt_path={{tiny_data}}/{TINY_CHECKPOINT}",),
        },
        files={TINY_CHECKPOINT: write_tiny_checkpoint},
    ),
)


def _passes(net: FPGNet, batch: int, size: int, device: torch.device) -> Mapping[str, Callable[[], Any]]:
    """Inference on fixed [0, 1] images (the only pass at test time; no training pass, for the reason the
    detection baselines give: FlopCounterMode overcounts the backward of grouped convolutions)."""
    g = torch.Generator().manual_seed(size * 100 + batch)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)
    return {"infer": lambda: net(x)}


register_cost(
    "fpg",
    CostEntry(
        network="FPG (EfficientNet-B4 + irregularity branch, attention, quality head)",
        build=lambda: FPGNet(backbone={"name": "efficientnet_b4"}).eval(),
        # the original Detector (src/model.py: lukemelas B4 with its own 2-class _fc, irr_block, c_attn, fc,
        # _fc) has 19,080,781; its inner net._fc (3,586) is never used and has no counterpart here
        params=19_077_195,
        sizes=((380, "FPG size"),),
        passes=_passes,
    ),
)
