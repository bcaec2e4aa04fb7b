"""Verification of protected faces in the four protection settings, from image batches or from pair batches.

A privacy method is judged by a recognizer's embeddings of each test image in three versions: ``original``,
``obfuscated`` and ``protected``. :class:`ProtectionEmbeddings` collects them (DDP-safe) from either
evaluation protocol of the DataModules:

* **images** (``{"image", "identity", "index"}``): verification pairs are derived from the identity labels
  (``num_pairs``, ``pair_seed``; :func:`src.metrics.verification.verification_pairs`), folds are contiguous;
* **pairs** (``{"image_a", "image_b", "is_same", "fold", "index"}``, e.g. LFW ``pairs.txt``): the given pairs
  and folds are used as they are.

:func:`evaluate_protection` then reports :func:`src.metrics.identity_settings.identity_settings` for the four
settings (``orig``, ``obf``, ``prot_prot`` = ADR, ``prot_orig`` = XDR) and the pair scores for figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from src.evaluation.collector import TensorCollector
from src.evaluation.identity_protocol import order_by_index
from src.metrics.identity_settings import SETTINGS, identity_settings, pair_scores
from src.metrics.verification import verification_pairs

VERSIONS = ("original", "obfuscated", "protected")
PROTOCOLS = ("images", "pairs")
#: The names results tables use for the verification settings.
PAPER_NAMES = {"orig": "Orig", "obf": "Obf.", "prot_prot": "ADR", "prot_orig": "XDR"}


def batch_protocol(batch: Mapping[str, Tensor]) -> str:
    """``pairs`` for a pair batch, ``images`` for an image batch; anything else is an error."""
    if "image_a" in batch and "image_b" in batch:
        return "pairs"
    if "image" in batch and "identity" in batch:
        return "images"
    raise ValueError(
        f"evaluation batches must hold image/identity (images protocol) or image_a/image_b/is_same "
        f"(pairs protocol); got keys {sorted(batch)}"
    )


class ProtectionEmbeddings(TensorCollector):
    """Embeddings of the original, obfuscated and protected version of every evaluated image or pair."""

    def __init__(self, protocol: str) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        names = (
            [*VERSIONS, "identity"]
            if protocol == "images"
            else [
                *(f"{v}_{side}" for v in VERSIONS for side in "ab"),
                "is_same",
                "fold",
            ]
        )
        super().__init__([*names, "index"])
        self.protocol = protocol

    def add_images(self, embeddings: Mapping[str, Tensor], identity: Tensor, index: Tensor) -> None:
        """One image batch: ``embeddings[version]`` for each of :data:`VERSIONS`."""
        self.update(**{v: embeddings[v] for v in VERSIONS}, identity=identity, index=index)

    def add_pairs(
        self,
        embeddings_a: Mapping[str, Tensor],
        embeddings_b: Mapping[str, Tensor],
        is_same: Tensor,
        fold: Tensor,
        index: Tensor,
    ) -> None:
        """One pair batch: per-version embeddings of both sides, the labels and folds."""
        sides = {"a": embeddings_a, "b": embeddings_b}
        self.update(
            **{f"{v}_{side}": sides[side][v] for v in VERSIONS for side in "ab"},
            is_same=is_same,
            fold=fold,
            index=index,
        )


@dataclass
class ProtectionResult:
    """Per-setting summaries (``identity_settings`` output) and the pair scores behind them."""

    settings: dict[str, dict[str, object]]
    scores: dict[str, Tensor]
    is_same: Tensor
    num_pairs: int


def _pairs_from_images(
    outputs: Mapping[str, Tensor], num_pairs: int, pair_seed: int
) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor, Tensor], Tensor | None]:
    _, identity, *versions = order_by_index(
        outputs["index"], outputs["identity"], *(outputs[v] for v in VERSIONS)
    )
    generator = torch.Generator().manual_seed(int(pair_seed))
    pairs = verification_pairs(identity.cpu(), int(num_pairs), generator)
    return dict(zip(VERSIONS, versions, strict=True)), pairs, None


def _pairs_from_pairs(
    outputs: Mapping[str, Tensor],
) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor, Tensor], Tensor]:
    names = [f"{v}_{side}" for v in VERSIONS for side in "ab"]
    _, is_same, fold, *ordered = order_by_index(
        outputs["index"], outputs["is_same"], outputs["fold"], *(outputs[n] for n in names)
    )
    by_name = dict(zip(names, ordered, strict=True))
    n = is_same.shape[0]
    embeddings = {v: torch.cat([by_name[f"{v}_a"], by_name[f"{v}_b"]]) for v in VERSIONS}
    idx = torch.arange(n)
    return embeddings, (idx, idx + n, is_same.bool().cpu()), fold.cpu()


def evaluate_protection(
    collector: ProtectionEmbeddings,
    *,
    distance: str = "angular",
    fars: Sequence[float] = (1e-3, 1e-2, 1e-1),
    num_folds: int = 10,
    num_pairs: int = 6000,
    pair_seed: int = 0,
    settings: Sequence[str] = tuple(SETTINGS),
) -> ProtectionResult:
    """Verification in each protection setting over everything ``collector`` gathered (from every rank)."""
    outputs = collector.compute()
    if collector.protocol == "images":
        embeddings, pairs, fold_ids = _pairs_from_images(outputs, num_pairs, pair_seed)
    else:
        embeddings, pairs, fold_ids = _pairs_from_pairs(outputs)
    if fold_ids is not None:
        num_folds = int(torch.unique(fold_ids).numel())
        if num_folds < 2:
            raise ValueError(
                "the evaluation pairs hold a single fold; k-fold verification needs at least 2 "
                "(set datamodule.pair_folds >= 2 or use a pairs file with folds)"
            )
    results = identity_settings(
        embeddings["original"],
        pairs,
        embeddings["obfuscated"],
        embeddings["protected"],
        distance=distance,
        settings=settings,
        num_folds=num_folds,
        fold_ids=fold_ids,
        fars=fars,
    )
    idx_a, idx_b, is_same = pairs
    scores = {}
    for setting in settings:
        query, gallery = SETTINGS[setting]
        scores[setting] = pair_scores(embeddings[query][idx_a], embeddings[gallery][idx_b], "cosine")
    return ProtectionResult(results, scores, is_same, int(is_same.numel()))
