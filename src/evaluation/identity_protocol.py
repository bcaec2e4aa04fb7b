"""Open-set identity evaluation on a labelled image set, with optional obfuscated probes.

Protocol (dataset-agnostic, deterministic):

- samples are ordered by their dataset index (so DDP gathering order does not matter);
- **retrieval**: the first image of each identity is its clean gallery entry; every other image is a probe
  (clean, or obfuscated when ``probe_embeddings`` is given); rank-1/rank-5 over the whole gallery;
- **verification**: ``num_pairs`` genuine/impostor pairs (half each) drawn with ``pair_seed`` — or the
  dataset's own pair list with its folds (``pairs``/``fold_ids``, e.g. LFW ``pairs.txt``); a pair scores
  ``cos(probe[a], clean[b])``; accuracy under the k-fold LFW protocol (threshold from the other folds).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from src.metrics.retrieval import retrieval_rank_k
from src.metrics.verification import verification_accuracy, verification_pairs


def order_by_index(indices: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Sort gathered tensors by dataset index; duplicated indices (a padded sampler) are an error."""
    order = torch.argsort(indices)
    sorted_idx = indices[order]
    if sorted_idx.numel() > 1 and bool((sorted_idx[1:] == sorted_idx[:-1]).any()):
        raise ValueError("duplicate sample indices in evaluation outputs: a sampler repeated samples")
    return (sorted_idx, *(t[order] for t in tensors))


def gallery_probe_split(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Positions of the first sample of each identity (gallery) and of all others (probes)."""
    seen: set[int] = set()
    gallery, probes = [], []
    for position, label in enumerate(labels.tolist()):
        (probes if label in seen else gallery).append(position)
        seen.add(label)
    if not probes:
        raise ValueError("identity evaluation needs at least two images of some identity")
    return torch.tensor(gallery, dtype=torch.long), torch.tensor(probes, dtype=torch.long)


Pairs = tuple[Tensor, Tensor, Tensor]


def pair_scores(
    clean_embeddings: Tensor,
    labels: Tensor,
    probe_embeddings: Tensor | None = None,
    *,
    num_pairs: int = 2000,
    pair_seed: int = 0,
    pairs: Pairs | None = None,
) -> tuple[Tensor, Tensor]:
    """Cosine scores ``cos(probe[a], clean[b])`` of the verification pairs, and ``is_same``.

    ``pairs`` = ``(index_a, index_b, is_same)`` (positions in the embeddings) gives the pairs; ``None`` draws
    ``num_pairs`` from ``labels`` with ``pair_seed``.
    """
    clean = F.normalize(clean_embeddings.float(), dim=1)
    probes = clean if probe_embeddings is None else F.normalize(probe_embeddings.float(), dim=1)
    if pairs is None:
        generator = torch.Generator().manual_seed(int(pair_seed))
        pairs = verification_pairs(labels, num_pairs, generator)
    idx_a, idx_b, is_same = pairs
    return (probes[idx_a] * clean[idx_b]).sum(dim=1), is_same.bool()


def evaluate_identity(
    clean_embeddings: Tensor,
    labels: Tensor,
    probe_embeddings: Tensor | None = None,
    *,
    num_pairs: int = 2000,
    pair_seed: int = 0,
    num_folds: int = 10,
    pairs: Pairs | None = None,
    fold_ids: Tensor | None = None,
) -> dict[str, float]:
    """Rank-1/5 retrieval and k-fold verification accuracy (see module docstring).

    ``pairs``/``fold_ids``: the dataset's verification pairs (positions in the embeddings) and their folds;
    ``None`` derives ``num_pairs`` pairs from ``labels`` and cuts them into ``num_folds`` contiguous folds.
    """
    probes_all = clean_embeddings if probe_embeddings is None else probe_embeddings
    if probes_all.shape != clean_embeddings.shape:
        raise ValueError(
            f"probe embeddings {tuple(probes_all.shape)} must match clean {tuple(clean_embeddings.shape)}"
        )
    clean = F.normalize(clean_embeddings.float(), dim=1)
    probes_all = F.normalize(probes_all.float(), dim=1)
    gallery, probes = gallery_probe_split(labels)
    ranks = retrieval_rank_k(probes_all[probes], labels[probes], clean[gallery], labels[gallery], ks=(1, 5))
    scores, is_same = pair_scores(
        clean_embeddings, labels, probe_embeddings, num_pairs=num_pairs, pair_seed=pair_seed, pairs=pairs
    )
    if fold_ids is not None:
        num_folds = int(torch.unique(fold_ids).numel())
    verification = verification_accuracy(scores, is_same, num_folds=num_folds, fold_ids=fold_ids)
    return {
        "rank1": float(ranks["rank1"]),
        "rank5": float(ranks["rank5"]),
        "verif_acc": float(verification["mean"]),
        "verif_acc_std": float(verification["std"]),
        "genuine_cos": float(scores[is_same].mean()),
        "impostor_cos": float(scores[~is_same].mean()),
    }
