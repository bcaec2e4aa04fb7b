"""FaceShield's networks wired together: the extractor (encoder + SE), the renderer (decoder + generator),
and the self-swap protection of aligned 512-px faces.

* :class:`FaceShieldExtractor` — the frozen IR-SE-50 encoder and the SE (IB) module: explicit identity
  ``X_id``, the encoder's feature maps and the SE output (restricted identity ``zid``, masks λ, restricted
  features). Stage I trains its SE; Stage II and inference keep all of it frozen.
* :class:`FaceShieldRenderer` — ``UnetDecoder512`` and ``AII512``: attribute features and λ masks in, an
  image in [-1, 1] out. Stage II trains it.
* :func:`prepare` — self-swap protection up to the DP step (extract → attribute inputs, ``P̃_0`` being the
  face itself → decode); the caller perturbs ``zid`` and renders each release (``predict.py``, the evaluation
  in ``module.py``; ``docs/papers/faceshield.md``, "Inference").

Images here are 512-px faces in [-1, 1] (the original's tensors); :func:`to_faceshield` and
:func:`from_faceshield` convert from and to the project's [0, 1] batches at any size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.config.buildable import buildable
from src.papers.faceshield.key_mapping import (
    READOUT_WEIGHTS,
    load_readout_statistics,
    load_released,
)
from src.papers.faceshield.networks import (
    AII512,
    FaceShieldEncoder,
    FaceShieldSE,
    SEOutput,
    UnetDecoder512,
    attribute_features,
    encoder_input,
)
from src.papers.faceshield.networks.encoder import ENCODER_CROP, ENCODER_SIZE
from src.papers.faceshield.networks.se import NUM_IB_LAYERS
from src.weights import resolve

IMAGE_SIZE = 512
EVAL_BATCHNORM = ("per_image", "running")
EXTRACTOR_PARTS = ("encoder", "readout", "se")
RENDERER_PARTS = ("decoder", "generator")


def to_faceshield(images: Tensor, size: int = IMAGE_SIZE) -> Tensor:
    """Project batches ``[B, 3, H, W]`` in [0, 1] → ``size``-px faces in [-1, 1] (bilinear, antialiased when
    shrinking)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"FaceShield expects [B, 3, H, W] images, got {tuple(images.shape)}")
    if tuple(images.shape[-2:]) != (size, size):
        images = F.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    return images * 2.0 - 1.0


#: face sizes the extractor works at; the renderer needs 256 or more (below, the generator's first maps
#: would be 1 × 1, where instance normalisation is undefined), so 128 serves Stage I tests only
EXTRACTOR_SIZES = (128, 256, 384, IMAGE_SIZE)
RENDER_SIZES = (256, 384, IMAGE_SIZE)


def check_image_size(owner: str, size: object, allowed: tuple[int, ...] = RENDER_SIZES) -> int:
    """``size`` if it is one of ``allowed``, else a ValueError naming ``owner``."""
    if isinstance(size, bool) or size not in allowed:
        raise ValueError(f"{owner}: image_size must be 512 (published) or one of {allowed}, got {size!r}")
    return size


def from_faceshield(images: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    """512-px faces in [-1, 1] → [0, 1] at ``size`` (``None``: keep 512), clamped."""
    out = ((images + 1.0) / 2.0).clamp(0.0, 1.0)
    if size is not None and tuple(out.shape[-2:]) != tuple(size):
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    return out


def _check_parts(owner: str, parts: Sequence[str], allowed: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [p for p in parts if p not in allowed]
    if unknown:
        raise ValueError(f"{owner}: unknown released part(s) {unknown}; expected some of {list(allowed)}")
    return tuple(parts)


@dataclass
class Extraction:
    """What the extractor knows about a batch of faces."""

    #: the encoder's L2-normalised explicit identity ``X_id`` ``[B, 512]``
    explicit: Tensor
    #: the encoder's feature maps f0 … f24
    features: list[Tensor]
    #: the SE output: restricted identity ``zid`` (not unit-norm), masks λ_0 … λ_9, restricted Z_0 … Z_9
    se: SEOutput

    def half(self, which: int) -> Extraction:
        """The first (0) or second (1) half of a batch built as ``cat([source, target])``."""
        pick = lambda t: t.chunk(2)[which]  # noqa: E731
        se = SEOutput(
            pick(self.se.identity),
            [pick(t) for t in self.se.lambdas],
            [pick(t) for t in self.se.restricted],
            self.se.info,
        )
        return Extraction(pick(self.explicit), [pick(t) for t in self.features], se)

    def select(self, i: int) -> Extraction:
        """Face ``i`` alone (a batch of one)."""
        se = self.se
        one = SEOutput(
            se.identity[i : i + 1],
            [t[i : i + 1] for t in se.lambdas],
            [t[i : i + 1] for t in se.restricted],
            se.info,
        )
        return Extraction(self.explicit[i : i + 1], [f[i : i + 1] for f in self.features], one)


@buildable
class FaceShieldExtractor(nn.Module):
    """Frozen encoder ``E`` (IR-SE-50 at 128 px) plus the SE module; ``forward`` → :class:`Extraction`.

    ``released``: parts loaded from the weights manifest at construction — ``encoder`` (the 128-px IR-SE-50),
    ``readout`` (the 11 readout-statistics files) and ``se`` (the released FSE, with the readout statistics).
    ``readout_dir``: a folder of ``readout_layer{0..10}.pth`` made by ``python -m
    src.papers.faceshield.readout_stats`` (instead of the released ones). Without either, the statistics are
    mean 0, std 1, all neurons active (tests and the CPU demo).

    ``image_size``: the face size the pipeline works at: 512 (published; the encoder sees the 37:475 crop at
    128 px), or 384, 256 or 128 with every size scaled alike (CPU tests and the demo: 256-px faces, a 64-px
    encoder input, about 1/4 of the cost; 128 only without a renderer, i.e. Stage I). Released weights need
    512.
    """

    def __init__(
        self,
        released: Sequence[str] = (),
        readout_dir: str | None = None,
        kernel_size: int = 1,
        min_std: float = 0.01,
        active_threshold: float = 0.01,
        image_size: int = IMAGE_SIZE,
    ) -> None:
        super().__init__()
        parts = _check_parts("FaceShieldExtractor", released, EXTRACTOR_PARTS)
        self.image_size = check_image_size("FaceShieldExtractor", image_size, EXTRACTOR_SIZES)
        if image_size != IMAGE_SIZE and (parts or readout_dir is not None):
            raise ValueError(
                f"FaceShieldExtractor: released weights and statistics need image_size=512, got {image_size}"
            )
        scale = image_size / IMAGE_SIZE
        self.encoder_crop = (round(ENCODER_CROP[0] * scale), round(ENCODER_CROP[1] * scale))
        self.encoder_size = round(ENCODER_SIZE * scale)
        self.released = parts
        if readout_dir is not None and ({"readout", "se"} & set(parts)):
            raise ValueError(
                "FaceShieldExtractor: give readout_dir or the released readout statistics ('readout'/'se'), "
                "not both"
            )
        self.encoder = FaceShieldEncoder(input_size=self.encoder_size)
        self.se = FaceShieldSE(
            input_size=self.encoder_size,
            kernel_size=kernel_size,
            min_std=min_std,
            active_threshold=active_threshold,
        )
        if "encoder" in parts:
            load_released(self.encoder)
        if "se" in parts:
            load_released(self.se)
        elif "readout" in parts:
            load_readout_statistics(self.se.readout, [resolve(entry) for entry in READOUT_WEIGHTS])
        if readout_dir is not None:
            load_readout_statistics(self.se.readout, readout_files(Path(readout_dir)))

    def explicit(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Faces in [-1, 1] at ``image_size`` → (explicit identity ``[B, 512]``, feature maps f0 … f24)."""
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"FaceShieldExtractor works on {self.image_size}-px faces, got {tuple(images.shape[-2:])}"
            )
        return self.encoder(encoder_input(images, self.encoder_crop, self.encoder_size))

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Extraction:
        """Encoder and SE on 512-px faces in [-1, 1] (the IB noise comes from ``generator``)."""
        identity, features = self.explicit(images)
        return Extraction(identity, features, self.se(features, self.encoder.restrict_forward, generator))


def readout_files(folder: Path) -> list[Path]:
    """The 11 ``readout_layer{i}.pth`` of ``folder`` in layer order; a clear error for a missing one."""
    files = [folder / f"readout_layer{i}.pth" for i in range(NUM_IB_LAYERS + 1)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"readout statistics folder {folder} lacks {', '.join(missing)}; make them with "
            f"`python -m src.papers.faceshield.readout_stats IMAGE_DIR {folder}`"
        )
    return files


@buildable
class FaceShieldRenderer(nn.Module):
    """Attribute decoder and generator: (identity, attribute features, λ masks) → image in [-1, 1].

    ``width`` divides both networks' channels (1 = published; tests and the CPU demo use 16 or 32).
    ``released``: ``decoder`` and/or ``generator`` loaded from the weights manifest (width 1 only).

    ``eval_batchnorm`` — how the decoder's BatchNorm normalises outside training: ``per_image`` (faithful:
    the original's ``test.py`` leaves the decoder in train mode and protects one photo at a time, so each
    photo is normalised by its own statistics; the running statistics are left untouched) or ``running``
    (the usual eval mode, the stored running statistics).
    """

    def __init__(
        self, width: int = 1, released: Sequence[str] = (), eval_batchnorm: str = "per_image"
    ) -> None:
        super().__init__()
        parts = _check_parts("FaceShieldRenderer", released, RENDERER_PARTS)
        if eval_batchnorm not in EVAL_BATCHNORM:
            raise ValueError(
                f"FaceShieldRenderer: eval_batchnorm must be one of {EVAL_BATCHNORM}, got {eval_batchnorm!r}"
            )
        self.eval_batchnorm = eval_batchnorm
        self.released = parts
        if parts and width != 1:
            raise ValueError(f"FaceShieldRenderer: released weights need width=1, got width={width}")
        self.decoder = UnetDecoder512(first_use_img=True, width=width)
        self.generator = AII512(width=width)
        if "decoder" in parts:
            load_released(self.decoder)
        if "generator" in parts:
            load_released(self.generator)

    def decode(
        self, attributes: Sequence[Tensor], lambdas: Sequence[Tensor]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Attribute maps and λ maps at the generator's 8 scales (independent of the identity)."""
        if self.training or self.eval_batchnorm == "running":
            return self.decoder(attributes, lambdas, use_lambda=True, first_use_img=True)
        per_image = []
        with batch_statistics(self.decoder):
            for i in range(attributes[0].shape[0]):
                one = [t[i : i + 1] for t in attributes], [t[i : i + 1] for t in lambdas]
                per_image.append(self.decoder(*one, use_lambda=True, first_use_img=True))
        attrs = [torch.cat(maps) for maps in zip(*(a for a, _ in per_image), strict=True)]
        lambda_maps = [torch.cat(maps) for maps in zip(*(m for _, m in per_image), strict=True)]
        return attrs, lambda_maps

    def generate(self, identity: Tensor, attrs: Sequence[Tensor], lambda_maps: Sequence[Tensor]) -> Tensor:
        """The image for ``identity`` ``[B, 512]`` from decoded maps, clamped to [-1, 1]."""
        return self.generator(identity, attrs, lambda_maps).clamp(-1.0, 1.0)

    def forward(self, identity: Tensor, attributes: Sequence[Tensor], lambdas: Sequence[Tensor]) -> Tensor:
        """``Y = clamp(G(identity, decoder(P̃, λ)))``."""
        return self.generate(identity, *self.decode(attributes, lambdas))


@contextlib.contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """BatchNorm layers of ``module`` normalise by the batch's own statistics and leave their running
    statistics unchanged (train mode with momentum 0), whatever mode ``module`` is in; restored after."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [
        (m.training, m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
        for m in norms
    ]
    try:
        for m in norms:
            m.train(True)
            m.momentum = 0.0
        yield
    finally:
        for m, (training, momentum, tracked) in zip(norms, saved, strict=True):
            m.train(training)
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def attribute_inputs(
    images: Tensor,
    target: Extraction,
    source: Extraction,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """The decoder's 10 inputs ``P̃_0 … P̃_9`` for ``target`` faces (noise statistics from ``source``):
    ``P̃_i = (1 − λ_i)·f_i + λ_i·η`` for i ≥ 1 and ``P̃_0`` = the 512-px target images themselves."""
    feats = attribute_features(
        target.features[:NUM_IB_LAYERS], target.se.lambdas, source.features[:NUM_IB_LAYERS], generator
    )
    feats[0] = images
    return feats


def self_attribute_inputs(
    faces: Tensor, extraction: Extraction, generator: torch.Generator | None = None
) -> list[Tensor]:
    """Attribute inputs of a self-swap, face by face: each face's noise statistics are its own (the original
    protects one photo at a time, so its "batch mean" is the photo's own features)."""
    per_image = [
        attribute_inputs(faces[i : i + 1], one, one, generator)
        for i, one in enumerate(extraction.select(i) for i in range(faces.shape[0]))
    ]
    return [torch.cat(layer) for layer in zip(*per_image, strict=True)]


@dataclass
class Prepared:
    """A batch of faces extracted and decoded once, ready to be rendered with any released identities."""

    extraction: Extraction
    attrs: list[Tensor]
    lambda_maps: list[Tensor]

    @property
    def restricted(self) -> Tensor:
        """The restricted identities ``zid`` the DP step perturbs ``[B, 512]``."""
        return self.extraction.se.identity


@torch.no_grad()
def prepare(
    extractor: FaceShieldExtractor,
    renderer: FaceShieldRenderer,
    faces: Tensor,
    generator: torch.Generator | None = None,
) -> Prepared:
    """Self-swap protection up to the DP step: extract (IB noise from ``generator``), the attribute inputs
    (``P̃_0`` is the face itself), decode. Then ``renderer.generate(DPP(prepared.restricted), prepared.attrs,
    prepared.lambda_maps)`` releases a protected face; one preparation serves any number of releases."""
    extraction = extractor(faces, generator)
    attrs, lambda_maps = renderer.decode(
        self_attribute_inputs(faces, extraction, generator), extraction.se.lambdas
    )
    return Prepared(extraction, attrs, lambda_maps)
