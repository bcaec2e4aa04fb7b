"""iFADIT's declarations for the shared machinery: tiny test settings (32-px faces, narrow random networks,
stand-in files in the authors' layouts, a tiny phase-1 checkpoint) and cost entries at the published sizes."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from src.losses.perceptual import PerceptualLoss
from src.networks.recognizers import pretrained_recognizer
from src.papers.ifadit.encoders import AttributeEncoder
from src.papers.ifadit.masks import LandmarkMask
from src.papers.ifadit.module import IFaditDisentangle
from src.papers.ifadit.networks import IdentityCompensation, IdentityFlow, LatentMapper
from src.papers.ifadit.stylegan2 import StyleGAN2Generator
from src.papers.ifadit.weights import authors_file_state
from src.papers.registry import CostEntry, TinySettings, register_cost, register_tiny_settings
from src.utils.checkpoint_files import write_weights_checkpoint

TINY_SIZE = 32
TINY_STYLES = 2 * 5 - 2  # W+ rows of a 32-px StyleGAN2
TINY_RECOGNIZER_WIDTHS = (16, 32, 64, 128)  # IR-SE's squeeze-excitation divides by 16
TINY_ENCODER_WIDTHS = (16, 32, 64, 128)  # 128-d attribute codes (the mapper is sized to match)
TINY_UNITS = (1, 1, 2, 1)
TINY_CHANNEL_DIVISOR = 16
TINY_PHASE1 = "ifadit/phase1.ckpt"
TINY_RELEASED = {
    "attribute": "ifadit/attr_best.pth",
    "mapper": "ifadit/mlp_best.pth",
    "flow": "ifadit/G_net.pth",
    "compensation": "ifadit/fuse_mlp.pth",
}


def _list(values: tuple[int, ...]) -> str:
    return "[" + ",".join(map(str, values)) + "]"


def tiny_networks() -> dict[str, Any]:
    """The tiny settings' networks (random): identity recognizer, attribute encoder, mapper, generator."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recognizer = pretrained_recognizer(
            "adaface_ir18", None, input_size=TINY_SIZE, widths=TINY_RECOGNIZER_WIDTHS
        )
    return {
        "identity_recognizer": recognizer,
        "attribute_encoder": AttributeEncoder(
            n_styles=TINY_STYLES, widths=TINY_ENCODER_WIDTHS, image_size=TINY_SIZE, units=TINY_UNITS
        ),
        "mapper": LatentMapper(attribute_dim=TINY_ENCODER_WIDTHS[-1]),
        "generator": StyleGAN2Generator(size=TINY_SIZE, channel_divisor=TINY_CHANNEL_DIVISOR),
    }


def write_tiny_phase1(path: Path) -> Path:
    """A random tiny phase-1 module as a weights-only Lightning checkpoint (what phase-2 rows read)."""
    torch.manual_seed(0)
    module = IFaditDisentangle(
        **tiny_networks(), masker=LandmarkMask(), perceptual=PerceptualLoss(kind="lpips_random", net="alex")
    )
    return write_weights_checkpoint(module, path)


def _released_writer(build: Callable[[], torch.nn.Module]) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        torch.manual_seed(0)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(authors_file_state(build()), path)
        return path

    return write


_COMMON = (
    "model.identity_recognizer.name=adaface_ir18",  # the paper's IR-SE-50 depth is not what a CPU test checks
    "model.identity_recognizer.weights=null",
    f"model.identity_recognizer.input_size={TINY_SIZE}",
    f"model.identity_recognizer.widths={_list(TINY_RECOGNIZER_WIDTHS)}",
    f"model.attribute_encoder.widths={_list(TINY_ENCODER_WIDTHS)}",
    f"model.attribute_encoder.image_size={TINY_SIZE}",
    f"model.attribute_encoder.n_styles={TINY_STYLES}",
    f"model.attribute_encoder.units={_list(TINY_UNITS)}",
    f"model.mapper.attribute_dim={TINY_ENCODER_WIDTHS[-1]}",
    f"model.generator.size={TINY_SIZE}",
    f"model.generator.channel_divisor={TINY_CHANNEL_DIVISOR}",
    "model.generator_weights=null",
    "trainer.val_check_interval=null",
    "trainer.check_val_every_n_epoch=1",
)
_JUDGES = (
    "model.judges.adaface_ir50.name=adaface_ir18",
    "model.judges.adaface_ir50.weights=null",
    f"model.judges.adaface_ir50.input_size={TINY_SIZE}",
    f"model.judges.adaface_ir50.widths={_list(TINY_RECOGNIZER_WIDTHS)}",
    "model.judges.facenet=null",  # a random FaceNet adds seconds and nothing the other judges do not test
)
_RELEASED = tuple(f"model.{key}_weights={{tiny_data}}/{path}" for key, path in TINY_RELEASED.items())

register_tiny_settings(
    "ifadit",
    TinySettings(
        model=_COMMON,
        experiments={
            "ifadit/phase1*": ("model.perceptual.kind=lpips_random",),
            "ifadit/phase2*": (f"model.disentangle_ckpt={{tiny_data}}/{TINY_PHASE1}", *_JUDGES),
            "ifadit/demo_phase2": (f"model.disentangle_ckpt={{tiny_data}}/{TINY_PHASE1}",),
            "ifadit/leaderboard_demo_phase2": (f"model.disentangle_ckpt={{tiny_data}}/{TINY_PHASE1}",),
            "ifadit/released*": (*_RELEASED, *_JUDGES),
        },
        # the no-ICL row differs from phase2_ffhq by one network and one weight (unit-tested), the released
        # row by where the weights come from (their loading is unit-tested): their runs are slow tests
        # and the demo's two phases repeat phase1_ffhq / phase2_ffhq on SyntheticFaces (the demo runs them),
        # as the leaderboard's two do with fewer steps (the leaderboard runs them)
        slow=(
            "ifadit/phase2_no_icl_ffhq",
            "ifadit/released_ffhq",
            "ifadit/demo_phase1",
            "ifadit/demo_phase2",
            "ifadit/leaderboard_demo_*",
        ),
        files={
            TINY_PHASE1: write_tiny_phase1,
            TINY_RELEASED["attribute"]: _released_writer(
                lambda: AttributeEncoder(
                    n_styles=TINY_STYLES, widths=TINY_ENCODER_WIDTHS, image_size=TINY_SIZE, units=TINY_UNITS
                )
            ),
            TINY_RELEASED["mapper"]: _released_writer(lambda: LatentMapper(TINY_ENCODER_WIDTHS[-1])),
            TINY_RELEASED["flow"]: _released_writer(IdentityFlow),
            TINY_RELEASED["compensation"]: _released_writer(IdentityCompensation),
        },
    ),
)


def _flow_passes(
    net: IdentityFlow, batch: int, size: int, device: torch.device
) -> Mapping[str, Callable[[], Any]]:
    """The flow both ways on fixed identities and key conditions (512-d vectors; ``size`` unused)."""
    g = torch.Generator().manual_seed(batch)
    z = torch.nn.functional.normalize(torch.randn(batch, 512, generator=g), dim=1).to(device)
    c = torch.randn(batch, 512, generator=g).to(device)
    return {"forward": lambda: net(z, c), "inverse": lambda: net.inverse(z, c)}


def _encoder_passes(
    net: AttributeEncoder, batch: int, size: int, device: torch.device
) -> Mapping[str, Callable[[], Any]]:
    g = torch.Generator().manual_seed(size * 100 + batch)
    images = torch.rand(batch, 3, size, size, generator=g).to(device)
    return {"infer": lambda: net(images)}


def _generator_passes(
    net: StyleGAN2Generator, batch: int, size: int, device: torch.device
) -> Mapping[str, Callable[[], Any]]:
    g = torch.Generator().manual_seed(size * 100 + batch)
    codes = torch.randn(batch, net.n_latent, net.style_dim, generator=g).to(device)
    return {"infer": lambda: net(codes)}


register_cost(
    "ifadit",
    CostEntry(
        network="iFADIT identity flow F (FrEIA, 4 AllInOneBlocks)",
        build=lambda: IdentityFlow().eval(),
        # 1,647,616 trainable (the sub-networks and global affines) + each block's fixed permutation and its
        # inverse (2 x 512 x 512, FrEIA stores them as frozen parameters)
        params=3_744_768,
        sizes=((256, "paper size (the flow sees 512-d identities)"),),
        passes=_flow_passes,
    ),
    CostEntry(
        network="iFADIT attribute encoder E_attr (pSp GradualStyleEncoder)",
        build=lambda: AttributeEncoder().eval(),
        params=209_450_688,
        sizes=((256, "paper size"),),
        passes=_encoder_passes,
    ),
    CostEntry(
        network="iFADIT generator G (StyleGAN2 FFHQ-256)",
        build=lambda: StyleGAN2Generator().eval(),
        params=30_034_338,  # rosinality's 256-px configuration (mapping 8 x 512, channel multiplier 2)
        sizes=((256, "paper size"),),
        passes=_generator_passes,
    ),
)
