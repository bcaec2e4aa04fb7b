"""1:N protection success rate: how often a protected query is *not* retrieved among the top k of a gallery
with one image per identity (the face-retrieval test of adversarial face-protection papers).

Protocol
--------
Identity ``i`` has one query image (protected before it is embedded) and one clean gallery image, row ``i``
of the gallery; gallery rows ``N, N+1, ...`` (optional) are distractor identities without a query. For query
``i`` the *genuine* score is its cosine similarity with gallery row ``i``, the *impostor* scores those with
every other gallery row. Protection succeeds at top-k when the genuine score is **at most** the k-th best
impostor score (1-based: top-1 compares with the best impostor, top-5 with the fifth best):

    success_k(i)  ⇔  genuine_i <= kth_largest(impostors_i)  ⇔  #{impostors_i >= genuine_i} >= k.

Ties count as successes (``<=``, as in the published evaluation script): the recognizer cannot rank the
genuine image above an impostor it scores equally. Equivalently, ``PSR@k = 1 - rank-k`` with ties ranked
*against* the genuine item, whereas :func:`src.metrics.retrieval.retrieval_rank_k` breaks ties by gallery
index; without exact ties the two agree. Scores are cosine similarities in the promoted input dtype, so a tie
is an exact equality in that dtype. ``k`` larger than the number of impostors is an error (the k-th best
impostor does not exist). Queries are processed in chunks of bounded memory
(:data:`src.metrics.retrieval.RETRIEVAL_CHUNK_BYTES`).

Definitions: ``docs/metrics.md`` ("1:N protection success rate").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from src.metrics._checks import check_embeddings
from src.metrics.retrieval import RETRIEVAL_CHUNK_BYTES, cosine_similarity_matrix

__all__ = ["impostors_at_or_above_genuine", "protection_rank_success_rate"]


def _chunk_rows(chunk_size: int | None, n_query: int, n_gallery: int, itemsize: int, name: str) -> int:
    """Queries per chunk: ``chunk_size`` if given, else as many score rows (and scratch) as fit the budget."""
    if chunk_size is None:
        return max(1, min(n_query, RETRIEVAL_CHUNK_BYTES // (2 * n_gallery * itemsize)))
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"{name}: chunk_size must be a positive integer or None, got {chunk_size!r}")
    return min(chunk_size, n_query)


def _check_inputs(name: str, query_emb: object, gallery_emb: object) -> tuple[Tensor, Tensor]:
    """Finite ``[N, D]`` queries and an ``[M, D]`` gallery with ``M >= max(N, 2)``, detached."""
    query = check_embeddings(name, "query_emb", query_emb).detach()
    gallery = check_embeddings(name, "gallery_emb", gallery_emb).detach()
    n_query, n_gallery = query.shape[0], gallery.shape[0]
    if n_gallery < n_query:
        raise ValueError(
            f"{name}: the gallery must hold each query's genuine image (row i for query i), so M >= N; "
            f"got N={n_query} queries and M={n_gallery} gallery rows"
        )
    if n_gallery < 2:
        raise ValueError(f"{name}: a gallery of {n_gallery} row has no impostor")
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"{name}: embedding sizes differ: queries have D={query.shape[1]}, gallery D={gallery.shape[1]}"
        )
    return query, gallery


def _impostor_counts(name: str, query: Tensor, gallery: Tensor, chunk_size: int | None) -> Tensor:
    """:func:`impostors_at_or_above_genuine` on validated inputs, with errors naming ``name``."""
    n_query, n_gallery = query.shape[0], gallery.shape[0]
    itemsize = torch.promote_types(query.dtype, gallery.dtype).itemsize
    rows = _chunk_rows(chunk_size, n_query, n_gallery, itemsize, name)
    counts = torch.empty(n_query, dtype=torch.long, device=query.device)
    for start in range(0, n_query, rows):
        stop = min(start + rows, n_query)
        scores = cosine_similarity_matrix(query[start:stop], gallery)  # [c, M]
        own = torch.arange(start, stop, device=scores.device)
        genuine = scores[torch.arange(stop - start, device=scores.device), own]
        # Every row counts its own genuine column (score >= itself), hence the - 1.
        counts[start:stop] = (scores >= genuine[:, None]).sum(dim=1) - 1
    return counts


def impostors_at_or_above_genuine(
    query_emb: Tensor, gallery_emb: Tensor, chunk_size: int | None = None
) -> Tensor:
    """For each query ``i`` ``[N, D]``, the number of impostor gallery rows (all rows but ``i`` of the
    ``[M, D]`` gallery, ``M >= N``) whose cosine similarity with it is ``>=`` the genuine one (row ``i``)
    → long ``[N]`` on the queries' device. Query ``i`` is protected at top-k iff this count is ``>= k``.
    """
    name = "impostors_at_or_above_genuine"
    query, gallery = _check_inputs(name, query_emb, gallery_emb)
    return _impostor_counts(name, query, gallery, chunk_size)


def protection_rank_success_rate(
    query_emb: Tensor, gallery_emb: Tensor, ks: Sequence[int] = (1, 5), chunk_size: int | None = None
) -> dict[str, float]:
    """1:N protection success rate at top-k: the share of queries whose genuine gallery score is ``<=`` their
    k-th best impostor score (see the module docstring for the protocol and tie handling).

    ``query_emb`` ``[N, D]``: embeddings of the protected queries; ``gallery_emb`` ``[M, D]``, ``M >= N``:
    clean gallery, row ``i`` the genuine image of query ``i``, rows ``>= N`` distractors. ``ks`` must be
    positive and at most ``M - 1`` (the number of impostors). Returns ``{"top{k}": float}``.
    """
    name = "protection_rank_success_rate"
    ks = tuple(ks)
    if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
        raise ValueError(f"{name}: ks must be a non-empty sequence of positive integers, got {ks!r}")
    query, gallery = _check_inputs(name, query_emb, gallery_emb)
    if max(ks) > gallery.shape[0] - 1:
        raise ValueError(
            f"{name}: k={max(ks)} needs at least {max(ks)} impostors, but the gallery of "
            f"{gallery.shape[0]} rows has {gallery.shape[0] - 1} per query"
        )
    counts = _impostor_counts(name, query, gallery, chunk_size)
    return {f"top{k}": float((counts >= k).double().mean()) for k in ks}
