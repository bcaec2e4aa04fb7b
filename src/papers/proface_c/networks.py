"""PRO-Face C's client network ``A`` and the feature injection into the frozen server ``S``.

The client sees only the residual ``r = x - b(x)`` of an image and its obfuscation and returns four
*compensation maps* ``a_1..a_4`` shaped like the server's four stage outputs, plus its learned keys
``k_1..k_4``. The server runs on ``b(x)`` with each stage output ``h`` replaced by ``h + sigmoid(h) * a_i *
k_i`` (docs/papers/proface_c.md, "Networks").

Client layout (the authors' ``ClientBackbone``): a MobileFaceNet body (the torchkit one, whose body is the
zoo's :class:`~src.networks.recognizers.mobilefacenet.MobileFaceNet` body) tapped after its first three
strided bottlenecks and its last 1x1 expansion (64x28², 128x14², 128x7², 512x7² at 112 px); each tap goes
through an *interface* (bilinear upsampling to the server stage's size, then a 1x1 conv to its channels);
the first map is channel-shuffled per spatial block with fixed permutations. The authors' unused
MobileFaceNet head is dropped (it never receives a gradient); :func:`authors_client_to_ours` maps their
``Backbone.pth`` keys to ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from src.config.buildable import buildable
from src.networks.recognizers.mobilefacenet import MobileFaceNet, treb1en_mobilefacenet_to_ours
from src.networks.recognizers.stages import StagedRecognizer

#: the server stage outputs of an IR network at 112 px (AdaFace IR-50/101: 64x56², 128x28², 256x14², 512x7²)
IR_STAGE_SHAPES: tuple[tuple[int, int, int], ...] = ((64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7))
#: channels of the four client taps (MobileFaceNet: after conv_23, conv_34, conv_45, conv_6_sep)
CLIENT_TAP_CHANNELS = (64, 128, 128, 512)


class BlockChannelShuffle(nn.Module):
    """Cut a map into ``grid x grid`` spatial blocks and permute each block's channels with its own fixed
    permutation (a privacy measure of the authors: the map is useless without the permutations).

    The permutations are a buffer drawn from ``seed`` (they travel with checkpoints); block ``i`` (row-major)
    output channel ``j`` is input channel ``permutations[i, j]``.
    """

    def __init__(self, channels: int, grid: int = 2, seed: int = 1567) -> None:
        super().__init__()
        if grid < 1 or channels < 1:
            raise ValueError(f"BlockChannelShuffle: grid and channels must be >= 1, got {grid}, {channels}")
        self.grid = int(grid)
        generator = torch.Generator().manual_seed(int(seed))
        perms = torch.stack([torch.randperm(channels, generator=generator) for _ in range(grid * grid)])
        self.register_buffer("permutations", perms)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` [B, C, H, W] with H and W divisible by ``grid`` → the block-shuffled map (same shape)."""
        b, c, h, w = x.shape
        g = self.grid
        if h % g or w % g or c != self.permutations.shape[1]:
            raise ValueError(
                f"BlockChannelShuffle: a {g}x{g} grid of {self.permutations.shape[1]}-channel blocks does "
                f"not "
                f"fit a map of shape {tuple(x.shape)}"
            )
        blocks = (
            x.reshape(b, c, g, h // g, g, w // g)
            .permute(0, 1, 2, 4, 3, 5)
            .reshape(b, c, g * g, h // g, w // g)
        )
        index = torch.arange(g * g, device=x.device)
        shuffled = blocks[
            :, self.permutations.t(), index
        ]  # [B, C, g², h', w']: out[:, j, i] = in[:, p[i, j], i]
        out = shuffled.reshape(b, c, g, g, h // g, w // g).permute(0, 1, 2, 4, 3, 5)
        return out.reshape(b, c, h, w)


@buildable
class ClientNetwork(nn.Module):
    """PRO-Face C's client ``A``: residual → four compensation maps shaped ``stage_shapes`` (+ its keys).

    ``stage_shapes``: the server's stage outputs (C, H, W) at its input size (checked against the server
    when the module is built). ``shuffle_grid``: blocks per side of the first map's channel shuffle (the
    authors': 2, i.e. 28x28-pixel blocks of the 56x56 map; 0 disables it). ``shuffle_seed`` draws the
    permutations.
    """

    def __init__(
        self,
        stage_shapes: Sequence[Sequence[int]] = IR_STAGE_SHAPES,
        shuffle_grid: int = 2,
        shuffle_seed: int = 1567,
    ) -> None:
        super().__init__()
        shapes = [tuple(int(v) for v in shape) for shape in stage_shapes]
        if len(shapes) != 4 or any(len(s) != 3 or min(s) < 1 for s in shapes):
            raise ValueError(f"ClientNetwork: stage_shapes must be four (C, H, W) shapes, got {stage_shapes}")
        self.stage_shapes = shapes
        self.body = MobileFaceNet().stages  # the torchkit MobileFaceNet body; its GDC head is not used
        self.interfaces = nn.ModuleList(
            nn.Sequential(nn.Upsample(size=(h, w), mode="bilinear"), nn.Conv2d(cin, c, 1))
            for cin, (c, h, w) in zip(CLIENT_TAP_CHANNELS, shapes, strict=True)
        )
        self.keys = nn.ParameterList(nn.Parameter(torch.ones(*shape)) for shape in shapes)
        self.shuffle = BlockChannelShuffle(shapes[0][0], shuffle_grid, shuffle_seed) if shuffle_grid else None

    def taps(self, residual: Tensor) -> list[Tensor]:
        """The four MobileFaceNet features the interfaces read (64x28², 128x14², 128x7², 512x7² at 112 px)."""
        stem, group1, group2, group3 = self.body
        x = group1.down(stem(residual))
        out = [x]
        x = group2.down(group1.blocks(x))
        out.append(x)
        x = group3.down(group2.blocks(x))
        out.append(x)
        out.append(group3.expand(group3.blocks(x)))
        return out

    def forward(self, residual: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Residual (in the server's normalised units) → (compensation maps, keys)."""
        maps = [interface(tap) for interface, tap in zip(self.interfaces, self.taps(residual), strict=True)]
        if self.shuffle is not None:
            maps[0] = self.shuffle(maps[0])
        return maps, list(self.keys)


def inject_stage(h: Tensor, aux: Tensor, key: Tensor) -> Tensor:
    """One stage's compensated feature: ``h + sigmoid(h) * aux * key``."""
    return h + torch.sigmoid(h) * aux * key


@contextmanager
def compensated(server: StagedRecognizer, maps: Sequence[Tensor], keys: Sequence[Tensor]) -> Iterator[None]:
    """Within the block, the server's four stage outputs are compensated with ``maps`` and ``keys``."""
    names = list(server.stage_names)
    if len(names) != len(maps) or len(maps) != len(keys):
        raise ValueError(
            f"{type(server).__name__} has stages {names}; got {len(maps)} maps and {len(keys)} keys"
        )
    functions = {
        name: (lambda h, a=a, k=k: inject_stage(h, a, k))
        for name, a, k in zip(names, maps, keys, strict=True)
    }
    with server.inject(functions):
        yield


def server_stage_shapes(server: StagedRecognizer) -> list[tuple[int, int, int]]:
    """The server's stage output shapes (C, H, W) at its input size (a no-grad forward of a zero image)."""
    size = server.input_size
    with torch.no_grad():
        probe = torch.zeros(1, 3, *size, device=next(server.parameters()).device)
        _, stages = server.forward_stages(probe)
    return [tuple(int(v) for v in stages[name].shape[1:]) for name in server.stage_names]  # type: ignore[misc]


# --------------------------------------------------------------------------------- the authors' Backbone.pth

#: the authors' ``client_backbone.<name>`` (torchkit MobileFaceNet children) → TreB1eN MobileFaceNet names
AUTHOR_BODY = {
    "input_layer": "conv1",
    "body_0": "conv2_dw",
    "body_1": "conv_23",
    "body_2": "conv_3",
    "body_3": "conv_34",
    "body_4": "conv_4",
    "body_5": "conv_45",
    "body_6": "conv_5",
    "body_7": "conv_6_sep",
}


def authors_client_to_ours(key: str) -> str | None:
    """A key of the authors' ``ClientBackbone`` state dict (``Backbone.pth``) → ours; None = dropped.

    ``weight{i}`` → ``keys.{i-1}``; ``interface_{i}.1.*`` → ``interfaces.{i-1}.1.*``; the torchkit body →
    ``body.*`` (through the zoo's TreB1eN MobileFaceNet mapping); the unused ``output_layer`` head → dropped;
    ``channel_permutations`` → ``shuffle.permutations`` (only the first ``grid²`` rows are used: see
    :func:`load_authors_client`). Unknown keys come back unchanged (and are then reported as unexpected).
    """
    if match := re.fullmatch(r"weight([1-4])", key):
        return f"keys.{int(match[1]) - 1}"
    if match := re.fullmatch(r"interface_([1-4])\.(.*)", key):
        return f"interfaces.{int(match[1]) - 1}.{match[2]}"
    if key == "channel_permutations":
        return "shuffle.permutations"
    if key.startswith("client_backbone.output_layer."):
        return None
    if key.startswith("client_backbone."):
        child, _, rest = key.removeprefix("client_backbone.").partition(".")
        if child in AUTHOR_BODY:
            ours = treb1en_mobilefacenet_to_ours(f"{AUTHOR_BODY[child]}.{rest}")
            if ours.startswith("stages."):
                return "body." + ours.removeprefix("stages.")
    return key


def convert_authors_client(client: ClientNetwork, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The authors' ``Backbone.pth`` state dict → one for ``client`` (strict: every key accounted for).

    A ``module.`` prefix (DDP) is stripped. Their permutation table has 784 rows of which only the first
    ``grid²`` are used; those rows are kept. Raises ``ValueError`` naming missing, unexpected and
    mismatched keys.
    """
    own = client.state_dict()
    converted: dict[str, Tensor] = {}
    unexpected, mismatched = [], []
    for key, value in state.items():
        ours = authors_client_to_ours(key.removeprefix("module."))
        if ours is None:
            continue
        if ours == "shuffle.permutations" and client.shuffle is not None:
            value = value[: client.shuffle.permutations.shape[0]].to(torch.int64)
        if ours not in own:
            unexpected.append(key)
        elif tuple(value.shape) != tuple(own[ours].shape):
            mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(own[ours].shape)}")
        else:
            converted[ours] = value
    missing = [k for k in own if k not in converted and not k.endswith("num_batches_tracked")]
    if missing or unexpected or mismatched:
        parts = ["cannot load the authors' client weights (Backbone.pth layout) into ClientNetwork"]
        for label, names in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatches", mismatched),
        ):
            if names:
                parts.append(
                    f"{len(names)} {label}: {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}"
                )
        raise ValueError("; ".join(parts))
    for key in own:
        converted.setdefault(key, own[key])
    return converted
