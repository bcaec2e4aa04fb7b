"""The Inspector's declarations for the shared machinery: tiny test settings (with a stage-4 checkpoint for
the evaluation-only rows) and cost entries."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from src.networks.detectors import build_detector_net
from src.papers.inspector.defense import InspectorDefense
from src.papers.inspector.module import InspectorCorrector
from src.papers.inspector.networks import FEATURE_CHANNELS, AutoThresholder, Corrector, Reconstructor
from src.papers.registry import CostEntry, TinySettings, register_cost, register_tiny_settings
from src.utils.checkpoint_files import write_weights_checkpoint

TINY_STAGE4 = "inspector/stage4_small_cnn.ckpt"
_SMALL_PARTS = ("model.autothresh.arch=resnet10t",)
#: a tiny protocol: one ε, every kind of attack target, the fewest steps (the labels exist in every
#: stage-4 file: config merges keep inherited labels, so the tiny values are merged into them)
_TINY_EVALUATION = (
    "model.evaluation.eps=[4]",
    "model.evaluation.attacks.pgd5=null",
    "model.evaluation.attacks.pgd20=null",
    "model.evaluation.attacks.pgd10={attack: pgd, steps: 1}",
    "model.evaluation.attacks.cw={attack: cw_l2, steps: 2}",
    "model.evaluation.attacks.eot_pgd={attack: eot_pgd, steps: 1, eot_iter: 2, target: eot}",
    "model.evaluation.attacks.bpda_pgd={attack: pgd, steps: 1, target: bpda}",
)


def write_stage4_checkpoint(path: Path) -> Path:
    """A random stage-4 module (small CNN, ResNet-10 A and C) saved as a Lightning checkpoint: what the
    evaluation-only experiments load in the tests."""
    torch.manual_seed(0)
    module = InspectorCorrector(
        net=build_detector_net("small_cnn", weights=None, input_norm="imagenet"),
        optimizer=functools.partial(torch.optim.Adam),
        autothresh={"arch": "resnet10t"},
        corrector={"arch": "resnet10t"},
        random_dependencies=True,
    )
    return write_weights_checkpoint(module, path)


register_tiny_settings(
    "inspector",
    TinySettings(
        # the detector swapped for the small CNN (its reconstructor channels are wired too), A and C for
        # ResNet-10s; frozen parts random instead of loaded from previous stages (tests/test_inspector.py
        # chains the real checkpoints)
        model=("model.net.name=small_cnn", "model.net.weights=null", "model.net.input_norm=imagenet"),
        experiments={
            "inspector/*stage2_*": ("model.random_dependencies=true",),
            "inspector/*stage3_*": (
                *_SMALL_PARTS,
                "model.autothresh.weights=null",
                "model.random_dependencies=true",
            ),
            "inspector/*stage4_*": (
                *_SMALL_PARTS,
                "model.corrector.arch=resnet10t",
                "model.corrector.weights=null",
                "model.random_dependencies=true",
                *_TINY_EVALUATION,
            ),
            "inspector/robust_*": (
                *_SMALL_PARTS,
                "model.corrector.arch=resnet10t",
                f"ckpt_path={{tiny_data}}/{TINY_STAGE4}",
                *_TINY_EVALUATION,
            ),
            "inspector/*stage*": ("datamodule.methods=null",),
            "inspector/robust_ffpp_c23": ("datamodule.methods=null",),
        },
        required={
            "model.detector_ckpt": "null",
            "model.reconstructor_ckpt": "null",
            "model.autothresh_ckpt": "null",
        },
        files={TINY_STAGE4: write_stage4_checkpoint},
    ),
)


class InspectorNetworks(nn.Module):
    """D (Xception), G, A and C as one network for the cost table, at their published sizes."""

    def __init__(self) -> None:
        super().__init__()
        detector = build_detector_net("xception", weights=None, input_norm="half", input_size=299)
        self.defense = InspectorDefense(
            detector, Reconstructor(FEATURE_CHANNELS["xception"]), AutoThresholder(), Corrector()
        )


def _passes(
    net: InspectorNetworks, batch: int, size: int, device: torch.device
) -> Mapping[str, Callable[[], Any]]:
    """The undefended detector and the whole defence (D, G, A, C) on fixed images in [0, 1]."""
    g = torch.Generator().manual_seed(size * 100 + batch)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)
    defense = net.defense
    return {"detector": lambda: defense.detector(x), "defence": lambda: defense(x)}


register_cost(
    "inspector",
    CostEntry(
        network="Inspector (Xception D + reconstructor G + ResNet-18 A and C)",
        build=lambda: InspectorNetworks().eval(),
        params=44_163_286,  # D 20,811,050 + G 997,160 + A and C 11,177,538 each
        sizes=((299, "FF++ size"),),
        passes=_passes,
    ),
)
