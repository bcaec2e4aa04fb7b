"""PRO-Face C's declarations for the shared machinery: tiny test settings (a narrow random server at 32 px,
mild obfuscations, a stand-in ``Backbone.pth`` in the authors' layout) and cost entries."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from src.networks.arcface_head import ArcMarginHead
from src.networks.recognizers import build_recognizer, pretrained_recognizer
from src.obfuscators import GaussianBlur, MedianBlur, Pixelate
from src.papers.proface_c.module import ProFaceCModule
from src.papers.proface_c.networks import ClientNetwork, compensated, server_stage_shapes
from src.papers.proface_c.obfuscation import PatchHybridBlur
from src.papers.proface_c.weights import authors_state_dict
from src.papers.registry import CostEntry, TinySettings, register_cost, register_tiny_settings
from src.utils.checkpoint_files import write_weights_checkpoint

TINY_CLIENT = "proface_c/Backbone.pth"
TINY_CHECKPOINT = "proface_c/tiny_module.ckpt"
#: the tiny torchkit list of the miniature datasets (4 classes: labels 0, 1, 3)
_TINY_CELEBA_LIST = (
    "datamodule.train.root={tiny_data}/image_list/align_crop_112",
    "datamodule.train.list_file={tiny_data}/image_list/Anno/loss/celebA_train.txt",
    "datamodule.train.train_identities=4",
)
TINY_WIDTHS = (8, 16, 32, 64)
#: the stage outputs of the tiny server (AdaFace IR-18 at 32 px with TINY_WIDTHS)
TINY_SHAPES = ((8, 16, 16), (16, 8, 8), (32, 4, 4), (64, 2, 2))


def _shape_list(shapes: tuple[tuple[int, int, int], ...]) -> str:
    return "[" + ",".join(f"[{c},{h},{w}]" for c, h, w in shapes) + "]"


def _mild(prefix: str) -> tuple[str, ...]:
    """Small kernels and blocks for 32-px images (the paper's are for 112 px)."""
    return (
        f"{prefix}.median.kernel_range=[3,5]",
        f"{prefix}.median.eval_kernel=3",
        f"{prefix}.gaussian.kernel_size=5",
        f"{prefix}.gaussian.sigma_range=[1.0,2.0]",
        f"{prefix}.gaussian.eval_sigma=1.5",
        f"{prefix}.pixelate.block_range=[2,3]",
        f"{prefix}.pixelate.eval_block=2",
    )


def write_tiny_client(path: Path) -> Path:
    """A random tiny client saved in the authors' ``Backbone.pth`` layout (what the released row loads)."""
    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(authors_state_dict(ClientNetwork(TINY_SHAPES)), path)
    return path


def tiny_module() -> ProFaceCModule:
    """The module of the tiny settings (random narrow server, mild obfuscations, a 4-class head)."""
    mild = {
        "median": MedianBlur(kernel_range=(3, 5), eval_kernel=3),
        "gaussian": GaussianBlur(kernel_size=5, sigma_range=(1.0, 2.0), eval_sigma=1.5),
        "pixelate": Pixelate(block_range=(2, 3), eval_block=2, method="resize", antialias=False),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pretrained_recognizer("adaface_ir18", None, input_size=32, widths=TINY_WIDTHS)
    return ProFaceCModule(
        server=server,
        client=ClientNetwork(TINY_SHAPES),
        head=ArcMarginHead(512, 4, scale=64.0, margin=0.5),
        obfuscator=PatchHybridBlur(cells=[4], **mild),
        eval_obfuscators={**mild, "hybrid": PatchHybridBlur(cells=[16], **mild)},
    )


def write_tiny_checkpoint(path: Path) -> Path:
    """A random tiny module as a weights-only Lightning checkpoint (what the evaluation-only rows load)."""
    torch.manual_seed(0)
    return write_weights_checkpoint(tiny_module(), path)


register_tiny_settings(
    "proface_c",
    TinySettings(
        model=(
            "model.server.name=adaface_ir18",
            "model.server.weights=null",
            "model.server.format=null",
            "model.server.input_size=32",
            f"model.server.widths=[{','.join(map(str, TINY_WIDTHS))}]",
            f"model.client.stage_shapes={_shape_list(TINY_SHAPES)}",
            "model.obfuscator.cells=[4]",
            *_mild("model.obfuscator"),
            *_mild("model.eval_obfuscators"),
        ),
        experiments={
            "proface_c/[crt]*": _TINY_CELEBA_LIST,  # celeba_*, released_*, transmission_*
            "proface_c/released_*": (f"model.client_weights={{tiny_data}}/{TINY_CLIENT}",),
            "proface_c/transmission_*": (f"ckpt_path={{tiny_data}}/{TINY_CHECKPOINT}",),
            "proface_c/demo_synthetic": (
                "datamodule.train.num_identities=16",
                "datamodule.train.train_identities=8",
                "datamodule.train.val_identities=4",
                "datamodule.train.test_identities=4",
                "datamodule.train.images_per_identity=2",
                "datamodule.train.augment=false",
            ),
        },
        # with the tiny server, celeba_ir50's run is celeba_ir101's (only the server differs), and the two
        # transmission rows differ only in bits / pruning (unit-tested): their runs are slow tests, and a
        # covering subset of the experiments is still built by default
        slow=("proface_c/celeba_ir50", "proface_c/transmission_4bit_pruned50"),
        files={TINY_CLIENT: write_tiny_client, TINY_CHECKPOINT: write_tiny_checkpoint},
    ),
)


def _server() -> nn.Module:
    return build_recognizer("adaface_ir101").eval()


def _client_passes(
    net: ClientNetwork, batch: int, size: int, device: torch.device
) -> Mapping[str, Callable[[], Any]]:
    """The client on a fixed residual (what runs on the user's device per image)."""
    g = torch.Generator().manual_seed(size * 100 + batch)
    residual = (torch.rand(batch, 3, size, size, generator=g) - 0.5).to(device)
    return {"infer": lambda: net(residual)}


def _server_passes(
    net: nn.Module, batch: int, size: int, device: torch.device
) -> Mapping[str, Callable[[], Any]]:
    """The server on obfuscated images with four compensation maps injected (what runs on the server)."""
    g = torch.Generator().manual_seed(size * 100 + batch)
    images = torch.rand(batch, 3, size, size, generator=g).to(device)
    shapes = server_stage_shapes(net)
    maps = [torch.rand(batch, *shape, generator=g).to(device) for shape in shapes]
    keys = [torch.ones(*shape, device=device) for shape in shapes]

    def infer() -> Any:
        with compensated(net, maps, keys):
            return net.embed(images)

    return {"infer": infer}


register_cost(
    "proface_c",
    CostEntry(
        network="PRO-Face C client A (MobileFaceNet body, interfaces, keys)",
        build=lambda: ClientNetwork().eval(),
        # the authors' ClientBackbone has 1,943,872: 289,792 more in its unused output head (7x7 depthwise
        # conv, BN, Linear 512->512, BN1d), dropped here, and its 784 x 64 permutation table (50,176, stored
        # as a parameter), of which the 4 used rows are a buffer here
        params=1_603_904,
        sizes=((112, "paper size"),),
        passes=_client_passes,
    ),
    CostEntry(
        network="PRO-Face C server S (AdaFace IR-101, compensated)",
        build=_server,
        params=65_150_912,
        sizes=((112, "paper size"),),
        passes=_server_passes,
    ),
)
