"""FaceShield's declarations for the shared machinery: tiny test settings and cost-benchmark entries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from src.papers.faceshield.pipeline import FaceShieldExtractor, FaceShieldRenderer, attribute_inputs
from src.papers.registry import CostEntry, TinySettings, register_cost, register_tiny_settings

#: Both stages: random encoder and SE at 256 px (every size halved: a quarter of the cost); Stage I, which
#: has no renderer, at 128 px (a sixteenth).
_TINY_EXTRACTOR = ("model.extractor.released=[]", "model.extractor.image_size=256")
_TINY_STAGE1 = ("model.extractor.released=[]", "model.extractor.image_size=128")
#: Stage II and the evaluation rows: 1/32-width renderer, small adversaries, offline judges.
_TINY_IRC = (
    *_TINY_EXTRACTOR,
    "model.renderer.released=[]",
    "model.renderer.width=32",
    "model.discriminator.ndf=8",
    "model.discriminator.num_d=2",
    "model.iid.backbone=resnet10t",
    "model.iid.input_size=64",
    "model.iid_weights=null",
    "model.perceptual.kind=lpips_random",
    "model.fars=[0.1]",
)

#: The evaluation rows without the released weights: random networks, evaluated without a checkpoint.
_TINY_EVAL = (*_TINY_IRC, "model.evaluate_untrained=true")

register_tiny_settings(
    "faceshield",
    TinySettings(
        experiments={
            "faceshield/stage1_*": _TINY_STAGE1,
            "faceshield/stage2_*": _TINY_IRC,
            "faceshield/sweep/*": (*_TINY_EVAL, "model.evaluators.arcface.weights=null"),
            "faceshield/baselines/*": (*_TINY_EVAL, "model.evaluators.arcface.weights=null"),
            # the leaderboard's demo checkpoints: Stage I at 128 px, both with the least batch (2)
            "faceshield/leaderboard_demo_fse": (*_TINY_STAGE1, "datamodule.batch_size=2"),
            "faceshield/leaderboard_demo_irc": ("datamodule.batch_size=2",),
            "faceshield/demo_*": (  # its 18 variants on 2 faces, judged by dlib only
                "model.perceptual=null",
                "model.whitebox=false",
                "model.fars=[0.1]",
                "datamodule.batch_size=2",
            ),
        },
        # the sweep and baseline rows differ from the demo only in which variant they name, and the demo's
        # 18 variants are evaluated by the default paper test (tests/test_papers.py): their runs are slow
        # tests, and a covering subset of them is built by default; the leaderboard's two files repeat
        # stage1_fse / stage2_irc on SyntheticFaces (the leaderboard runs them)
        slow=(
            "faceshield/sweep/*",
            "faceshield/baselines/*",
            "faceshield/demo_*",
            "faceshield/leaderboard_demo_*",
        ),
        required={"model.extractor_ckpt": "null"},
    ),
)


def _passes(net: nn.Module, batch: int, size: int, device: torch.device) -> Mapping[str, Callable[[], Any]]:
    """Extract (encoder + SE) and render (decoder + generator) on fixed faces in [-1, 1]."""
    extractor, renderer = net.extractor, net.renderer
    g = torch.Generator().manual_seed(size * 100 + batch)
    faces = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    with torch.inference_mode():
        extraction = extractor(faces)
        attributes = attribute_inputs(faces, extraction, extraction)
    identity = torch.nn.functional.normalize(extraction.se.identity, dim=1)
    return {
        "extract": lambda: extractor(faces),
        "render": lambda: renderer(identity, attributes, extraction.se.lambdas),
    }


class _Pipeline(nn.Module):
    """Extractor and renderer as one network for the cost table (the DP step itself costs O(d))."""

    def __init__(self) -> None:
        super().__init__()
        self.extractor = FaceShieldExtractor()
        self.renderer = FaceShieldRenderer()


register_cost(
    "faceshield",
    CostEntry(
        network="FaceShield (encoder + SE + decoder + AII generator)",
        build=lambda: _Pipeline().eval(),
        params=250_563_413,
        sizes=((512, "published size"),),
        passes=_passes,
    ),
)
