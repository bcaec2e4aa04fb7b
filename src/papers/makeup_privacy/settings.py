"""Makeup-privacy's declarations for the shared machinery: tiny test settings (a narrow generator,
discriminator and VGG, a random BiSeNet run at 32 px, random recognizers — narrow where the zoo allows —,
the 32-px miniature MT-Dataset target image, a tiny checkpoint and a tiny generator file in the authors'
layout for the evaluation rows) and the cost entries of the generator and the discriminator at 256 px."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from src.networks.recognizers import build_recognizer, pretrained_recognizer
from src.papers.makeup_privacy.correspondence import SemanticCorrespondence
from src.papers.makeup_privacy.discriminator import PARAMETERS as D_PARAMETERS
from src.papers.makeup_privacy.discriminator import MultiscaleDiscriminator
from src.papers.makeup_privacy.generator import PARAMETERS as G_PARAMETERS
from src.papers.makeup_privacy.generator import SPADEGenerator
from src.papers.makeup_privacy.module import MakeupPrivacyModule
from src.papers.makeup_privacy.vgg import VGG19Features
from src.papers.registry import CostEntry, TinySettings, register_cost, register_tiny_settings
from src.utils.checkpoint_files import write_weights_checkpoint

TINY_CHECKPOINT = "makeup_privacy/tiny_module.ckpt"
TINY_GENERATOR_FILE = "makeup_privacy/latest_net_G.pth"
#: the miniature MT-Dataset's training target (tests/fixtures_datasets.py make_mt_dataset)
TINY_TARGET = "MT-Dataset/test_target_image/target/085807.jpg"
TINY_SIZE = 32
VGG_DIVISOR = 16
#: the tiny generator: relu4_1 has 512 / VGG_DIVISOR channels
GENERATOR: dict[str, int] = {
    "ngf": 4,
    "semantic_nc": 512 // VGG_DIVISOR,
    "spade_hidden": 8,
    "image_size": TINY_SIZE,
}
DISCRIMINATOR: dict[str, int] = {"ndf": 8}
#: narrow IR nets (the SE blocks need 16 channels or more) at the zoo's smallest input
IR_NARROW: dict[str, Any] = {"input_size": 16, "widths": [16, 16, 16, 32]}
#: the tiny recognizers: narrow IR nets, the (small) MobileFaceNet and dlib's network; no FaceNet (no width)
FR_TRAIN = ("mobilefacenet", "ir_se50")
FR_TEST = ("ir152", "ir_se50", "mobilefacenet", "dlib_resnet")
PUBLISHED = ("ir152", "ir_se50", "mobilefacenet")


def _overrides(prefix: str, values: Mapping[str, Any]) -> tuple[str, ...]:
    def text(value: Any) -> str:
        return "[" + ",".join(map(str, value)) + "]" if isinstance(value, list | tuple) else str(value)

    return tuple(f"{prefix}.{key}={text(value)}" for key, value in values.items())


def _list(names: tuple[str, ...]) -> str:
    return "[" + ",".join(names) + "]"


def tiny_recognizers() -> dict[str, Any]:
    """The tiny settings' recognizers, random (built as the overrides below build them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "ir152": pretrained_recognizer("ir152", None, **IR_NARROW),
            "ir_se50": pretrained_recognizer("ir_se50", None, **IR_NARROW),
            "mobilefacenet": pretrained_recognizer("mobilefacenet", None),
            "dlib_resnet": build_recognizer("dlib_resnet"),
        }


def tiny_module(target_path: str | Path, **options: Any) -> MakeupPrivacyModule:
    """The module of the tiny settings (``options`` override its keyword arguments)."""
    kwargs: dict[str, Any] = {
        "generator": SPADEGenerator(**GENERATOR),
        "discriminator": MultiscaleDiscriminator(**DISCRIMINATOR),
        "correspondence": SemanticCorrespondence(),
        "vgg": VGG19Features(width_divisor=VGG_DIVISOR),
        "recognizers": tiny_recognizers(),
        "target_path": str(target_path),
        "fr_train": FR_TRAIN,
        "fr_test": FR_TEST,
        "published_thresholds": PUBLISHED,
        "parser_weights": None,
        "parse_size": TINY_SIZE,
        "lpips_random": True,
        **options,
    }
    return MakeupPrivacyModule(**kwargs)


def write_tiny_checkpoint(path: Path) -> Path:
    """A random tiny module as a weights-only Lightning checkpoint (what the evaluation rows load); ``path``
    lies two levels below the miniature datasets' root, whose MT-Dataset target image the module reads."""
    torch.manual_seed(0)
    return write_weights_checkpoint(tiny_module(path.parents[1] / TINY_TARGET), path)


def write_tiny_generator(path: Path) -> Path:
    """A random tiny generator saved as the authors save theirs (``latest_net_G.pth``: its state dict)."""
    torch.manual_seed(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(SPADEGenerator(**GENERATOR).state_dict(), path)
    return path


_PAPER_ROWS = (
    "model.recognizers.facenet_vggface2=null",
    *(f"model.recognizers.{name}.weights=null" for name in ("ir152", "ir_se50", "mobilefacenet")),
    *_overrides("model.recognizers.ir152", IR_NARROW),
    *_overrides("model.recognizers.ir_se50", IR_NARROW),
    f"model.fr_train={_list(FR_TRAIN)}",
    f"model.fr_test={_list(FR_TEST)}",
    f"model.published_thresholds={_list(PUBLISHED)}",
)
_STANDIN = ("model.recognizers.standin.weights=null", f"model.recognizers.standin.input_size={TINY_SIZE}")

register_tiny_settings(
    "makeup_privacy",
    TinySettings(
        model=(
            *_overrides("model.generator", GENERATOR),
            *_overrides("model.discriminator", DISCRIMINATOR),
            "model.vgg.weights=null",
            f"model.vgg.width_divisor={VGG_DIVISOR}",
            "model.parser_weights=null",
            f"model.parse_size={TINY_SIZE}",
            f"model.target_path={{tiny_data}}/{TINY_TARGET}",
            "model.fid=false",
            "model.lpips_random=true",
        ),
        experiments={
            # the paper's rows attack the AMT-GAN set: random and narrow here (every file but demo_* and
            # leaderboard_demo*)
            **dict.fromkeys(("makeup_privacy/[!dl]*", "makeup_privacy/l[!e]*"), _PAPER_ROWS),
            # the demo and the leaderboard's demo attack their stand-in recognizer (random here, at the
            # miniature data's size)
            **dict.fromkeys(("makeup_privacy/demo_[st]*", "makeup_privacy/leaderboard_demo*"), _STANDIN),
            "makeup_privacy/demo_test_*": (f"ckpt_path={{tiny_data}}/{TINY_CHECKPOINT}",),
            # the 1:1 and 1:N evaluation rows: a tiny trained-module checkpoint, or (LADN) a tiny generator
            # file in the authors' layout
            "makeup_privacy/*_1to[1N]*": (f"ckpt_path={{tiny_data}}/{TINY_CHECKPOINT}",),
            "makeup_privacy/ladn_1to1": (
                "ckpt_path=null",
                f"model.generator_weights={{tiny_data}}/{TINY_GENERATOR_FILE}",
            ),
            # the miniature test release holds the LFW layout only: CelebA's 1:N row reads it too
            "makeup_privacy/celeba_1toN": ("datamodule.image_dir=lfw112x112_500",),
        },
        # tiny runs that repeat another's: CelebA 1:N is LFW 1:N on the same miniature folder, and the
        # CelebA-HQ 1:1 run is the robustness row's (which inherits it) without the degraded variants
        # (the demo's pair row repeats the robustness row's path without the variants; the demo runs it;
        # the leaderboard's demo repeats demo_synthetic with fewer steps, and the leaderboard runs it)
        slow=(
            "makeup_privacy/celeba_1toN",
            "makeup_privacy/celebahq_1to1",
            "makeup_privacy/demo_test_pairs",
            "makeup_privacy/leaderboard_demo",
        ),
        files={TINY_CHECKPOINT: write_tiny_checkpoint, TINY_GENERATOR_FILE: write_tiny_generator},
    ),
)


def _generator_passes(
    net: SPADEGenerator, batch: int, size: int, device: torch.device
) -> Mapping[str, Callable[[], Any]]:
    """The generator on fixed warped features (relu4_1 at 1/8, relu3_1 at 1/4 of the image side)."""
    g = torch.Generator().manual_seed(size * 100 + batch)
    level0 = torch.rand(batch, 512, size // 8, size // 8, generator=g).to(device)
    level1 = torch.rand(batch, 256, size // 4, size // 4, generator=g).to(device)
    source = torch.rand(batch, 512, size // 8, size // 8, generator=g).to(device)
    return {"infer": lambda: net([level0, level1], [source])}


def _discriminator_passes(
    net: MultiscaleDiscriminator, batch: int, size: int, device: torch.device
) -> Mapping[str, Callable[[], Any]]:
    """Both PatchGANs on a fixed (source, image) pair."""
    g = torch.Generator().manual_seed(size * 100 + batch)
    pair = (torch.rand(batch, 6, size, size, generator=g) * 2 - 1).to(device)
    return {"infer": lambda: net(pair)}


register_cost(
    "makeup_privacy",
    CostEntry(
        network="Makeup-privacy SPADE generator (ngf 128, two warped levels)",
        build=lambda: SPADEGenerator().eval(),
        params=G_PARAMETERS,
        sizes=((256, "paper size"),),
        passes=_generator_passes,
    ),
    CostEntry(
        network="Makeup-privacy multiscale discriminator (2 PatchGANs, ndf 64)",
        build=lambda: MultiscaleDiscriminator().eval(),
        params=D_PARAMETERS,
        sizes=((256, "paper size"),),
        passes=_discriminator_passes,
    ),
)
