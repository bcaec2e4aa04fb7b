"""Closed-set identification on face embeddings: cosine similarity matrices, rank-k and mean average
precision at 100k-gallery scale, computed in probe chunks with bounded memory.

Conventions
-----------
* Similarity is the cosine similarity of L2-normalised embeddings, computed in the promoted input dtype.
* Ranking ties are broken by gallery index (lower index first), i.e. the order of a *stable* descending
  sort, so results never depend on the ``torch.topk`` / sort kernel or on the chunk size.
* All functions raise :class:`ValueError` naming the function for bad input.

References and measured agreement: ``docs/metrics.md`` ("Retrieval").
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from src.metrics._checks import check_embeddings, check_labels, check_tensor

__all__ = [
    "RETRIEVAL_CHUNK_BYTES",
    "cosine_similarity_matrix",
    "mean_average_precision",
    "retrieval_rank_k",
]


def _l2_normalise(name: str, arg: str, x: Tensor) -> Tensor:
    """L2-normalise rows, refusing zero-norm rows (their cosine similarity is undefined)."""
    norms = x.norm(dim=1)
    if bool((norms == 0).any()):
        raise ValueError(
            f"{name}: `{arg}` has {int((norms == 0).sum())} all-zero row(s); cosine is undefined"
        )
    return x / norms.unsqueeze(1)


def cosine_similarity_matrix(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of every row of ``a`` ``[N, D]`` with every row of ``b`` ``[M, D]`` → ``[N, M]``."""
    name = "cosine_similarity_matrix"
    a = check_embeddings(name, "a", a)
    b = check_embeddings(name, "b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{name}: embedding sizes differ: a has D={a.shape[1]}, b has D={b.shape[1]}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    return (
        _l2_normalise(name, "a", a.to(dtype)) @ _l2_normalise(name, "b", b.to(device=a.device, dtype=dtype)).T
    )


def _stable_argsort(x: Tensor) -> Tensor:
    """Stable ascending argsort of a 1-D tensor; numpy's on CPU (≈30× faster than torch's stable sort)."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.argsort(x.numpy(), kind="stable"))
    return torch.argsort(x, stable=True)


#: Working memory (bytes) the retrieval functions allow themselves per probe chunk when ``chunk_size`` is
#: ``None``: the score block ``[chunk, G]`` plus one scratch block of the same shape (8 bytes per probe ×
#: gallery item in float32), so 671 probes per chunk at G = 100,000. The only other sizeable allocation is the
#: L2-normalised copy of the embeddings (G × D × 4 bytes: 205 MB at G = 100k, D = 512); the measured peak
#: extra memory (RSS) of a 10k-probe × 100k-gallery × 512-d search is about 0.71 GB.
RETRIEVAL_CHUNK_BYTES = 512 * 2**20


def _normalised_rows(name: str, arg: str, x: Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Validated, L2-normalised copy of an ``[N, D]`` embedding matrix in ``dtype`` on ``device``.

    Fast path: all row norms finite and non-zero implies every element is finite (an inf or NaN element makes
    its row norm non-finite), so the full element-wise check (≈1 s at 100k × 512) only runs to explain a
    failure.
    """
    if isinstance(x, Tensor) and x.ndim == 2 and x.numel() > 0 and x.is_floating_point():
        x = x.detach().to(device, dtype)
        norms = torch.linalg.vector_norm(x, dim=1)
        if bool(torch.isfinite(norms).all()) and bool((norms > 0).all()):
            return x / norms.unsqueeze(1)
    return _l2_normalise(name, arg, check_embeddings(name, arg, x).detach().to(device, dtype))


def _check_retrieval_inputs(
    name: str,
    probe_emb: Tensor,
    probe_labels: Tensor,
    gallery_emb: Tensor,
    gallery_labels: Tensor,
    chunk_size: int | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Validate, move to the probe device, L2-normalise; returns (probe, p_labels, gallery, g_labels)."""
    probe_emb = check_tensor(name, "probe_emb", probe_emb)
    gallery_emb = check_tensor(name, "gallery_emb", gallery_emb)
    if probe_emb.ndim == 2 and gallery_emb.ndim == 2 and probe_emb.shape[1] != gallery_emb.shape[1]:
        raise ValueError(
            f"{name}: embedding sizes differ: probes have D={probe_emb.shape[1]}, "
            f"gallery D={gallery_emb.shape[1]}"
        )
    if chunk_size is not None and (
        not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1
    ):
        raise ValueError(f"{name}: chunk_size must be a positive integer or None, got {chunk_size!r}")
    device = probe_emb.device
    dtype = torch.promote_types(probe_emb.dtype, gallery_emb.dtype)
    probe = _normalised_rows(name, "probe_emb", probe_emb, dtype, device)
    gallery = _normalised_rows(name, "gallery_emb", gallery_emb, dtype, device)
    probe_labels = check_labels(name, "probe_labels", probe_labels, probe.shape[0])
    gallery_labels = check_labels(name, "gallery_labels", gallery_labels, gallery.shape[0])
    return probe, probe_labels.to(device, torch.long), gallery, gallery_labels.to(device, torch.long)


class _GalleryGroups:
    """The gallery grouped by label, so each probe's same-label items are found without a ``[P, G]`` mask.

    ``members[starts[c] : starts[c] + counts[c]]`` are the gallery indices (ascending) with label
    ``labels[c]``; ``labels`` is sorted, so a probe label is looked up by binary search.
    """

    def __init__(self, gallery_labels: Tensor) -> None:
        self.members = _stable_argsort(gallery_labels)
        self.labels, self.counts = torch.unique_consecutive(gallery_labels[self.members], return_counts=True)
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def _lookup(self, probe_labels: Tensor) -> tuple[Tensor, Tensor]:
        """(group of each probe label, number of same-label gallery items; 0 when the label is absent)."""
        group = torch.searchsorted(self.labels, probe_labels).clamp_(max=self.labels.numel() - 1)
        return group, torch.where(self.labels[group] == probe_labels, self.counts[group], 0)

    def max_positives(self, probe_labels: Tensor) -> int:
        """Largest number of same-label gallery items of any probe."""
        return int(self._lookup(probe_labels)[1].max())

    def positives(self, probe_labels: Tensor) -> tuple[Tensor, Tensor]:
        """``(index [n, m], valid [n, m])``: the same-label gallery indices of each probe (ascending), padded
        to the chunk's largest count ``m`` with index 0 and ``valid`` False."""
        group, count = self._lookup(probe_labels)
        k = torch.arange(int(count.max()), device=probe_labels.device)
        valid = k < count[:, None]
        return self.members[torch.where(valid, self.starts[group][:, None] + k, 0)], valid


def _chunk_rows(chunk_size: int | None, n_probes: int, n_gallery: int, itemsize: int, max_pos: int) -> int:
    """Probes per chunk: ``chunk_size`` if given, else as many as fit :data:`RETRIEVAL_CHUNK_BYTES`."""
    if chunk_size is None:
        per_probe = n_gallery * 2 * itemsize + 64 * max_pos  # score + scratch rows; positive-index tables
        chunk_size = max(1, RETRIEVAL_CHUNK_BYTES // per_probe)
    return min(chunk_size, n_probes)


def _chunk_first_positions(scores: Tensor, index: Tensor, valid: Tensor, flags: Tensor) -> Tensor:
    """0-based position of each row's first same-label item in the ranking (score desc, index asc).

    ``scores`` ``[n, G]``; ``index``/``valid`` ``[n, m]`` the same-label columns; ``flags`` an ``[n, G]``
    float scratch buffer. The best same-label score ``b`` and the lowest index ``f`` attaining it come from
    the gathered same-label columns (no ``[n, G]`` label mask); then position = #items scoring ``> b`` +
    #other items scoring exactly ``b`` at an index ``< f`` (counted row by row, only in rows where such an
    exact tie exists). The two comparison passes write 0/1 into the float buffer and sum it (exact below
    2**24 items in float32), several times faster than summing a bool tensor. Rows without a same-label item
    get ``G``.
    """
    n_gallery = scores.shape[1]
    pos_scores = scores.gather(1, index).masked_fill_(~valid, -torch.inf)
    best = pos_scores.amax(dim=1, keepdim=True)
    at_best = valid & (pos_scores == best)
    first = torch.where(at_best, index, n_gallery).amin(dim=1).tolist()
    position = torch.gt(scores, best, out=flags).sum(dim=1).long()
    n_equal = torch.eq(scores, best, out=flags).sum(dim=1).long()
    has_match = valid.any(dim=1)
    for row in torch.nonzero(has_match & (n_equal > at_best.sum(dim=1))).flatten().tolist():
        position[row] += int((scores[row, : first[row]] == best[row]).sum())
    return torch.where(has_match, position, n_gallery)


def _flag_dtype(n_gallery: int) -> torch.dtype:
    """Scratch dtype whose sums of 0/1 over a row are exact: float32 below 2**24 items, else float64."""
    return torch.float32 if n_gallery < 2**24 else torch.float64


def _first_match_positions(
    probe: Tensor, p_lab: Tensor, gallery: Tensor, groups: _GalleryGroups, chunk_size: int
) -> Tensor:
    """Position of each probe's first same-label gallery item (``G`` if none), ``chunk_size`` probes at a
    time: one matmul into a reused buffer, then :func:`_chunk_first_positions`."""
    n_probe, n_gallery = probe.shape[0], gallery.shape[0]
    out = torch.full((n_probe,), n_gallery, dtype=torch.long, device=probe.device)
    scores_buf = torch.empty(chunk_size, n_gallery, dtype=probe.dtype, device=probe.device)
    flags_buf = torch.empty(chunk_size, n_gallery, dtype=_flag_dtype(n_gallery), device=probe.device)
    for start in range(0, n_probe, chunk_size):
        stop = min(start + chunk_size, n_probe)
        index, valid = groups.positives(p_lab[start:stop])
        if index.shape[1] == 0:
            continue  # no probe of this chunk has a same-label gallery item
        scores = torch.mm(probe[start:stop], gallery.T, out=scores_buf[: stop - start])
        out[start:stop] = _chunk_first_positions(scores, index, valid, flags_buf[: stop - start])
    return out


def retrieval_rank_k(
    probe_emb: Tensor,
    probe_labels: Tensor,
    gallery_emb: Tensor,
    gallery_labels: Tensor,
    ks: Sequence[int] = (1, 5),
    chunk_size: int | None = None,
) -> dict[str, float]:
    """Closed-set identification rank-k: share of probes whose top-k gallery items contain a same-label item.

    Cosine similarity on L2-normalised embeddings, computed in the promoted input dtype (float32 embeddings
    give a float32 matmul); ties are ranked by gallery index (lower first), so the result is deterministic.
    Instead of ``torch.topk`` (whose tie order is unspecified) the position of the first same-label item is
    counted directly (#items scoring higher plus #equal-scoring items with a lower index), which is exact for
    every k at once. Probes are processed ``chunk_size`` at a time (``None``: as many as fit
    :data:`RETRIEVAL_CHUNK_BYTES`, 671 at G = 100k in float32), so memory is ``O(chunk_size × G)``: a
    10k-probe × 100k-gallery × 512-d float32 search peaks at ≈ 0.71 GB extra and costs 1.07× the fastest bare
    chunked matmul on an idle 2-core CPU (``make bench-metrics``).
    Probes with no same-label gallery item count as misses (the denominator is all probes). A probe that
    also appears in the gallery matches itself: remove it beforehand for leave-one-out protocols.

    Returns ``{"rank{k}": float}`` for each ``k`` in ``ks``.
    """
    name = "retrieval_rank_k"
    ks = tuple(ks)
    if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
        raise ValueError(f"{name}: ks must be a non-empty sequence of positive integers, got {ks!r}")
    probe, p_lab, gallery, g_lab = _check_retrieval_inputs(
        name, probe_emb, probe_labels, gallery_emb, gallery_labels, chunk_size
    )
    groups = _GalleryGroups(g_lab)
    rows = _chunk_rows(
        chunk_size, probe.shape[0], gallery.shape[0], probe.element_size(), groups.max_positives(p_lab)
    )
    pos = _first_match_positions(probe, p_lab, gallery, groups, rows)
    return {f"rank{k}": float((pos < k).double().mean()) for k in ks}


def _sorted_rows(src: Tensor, dst: Tensor, pool: ThreadPoolExecutor | None) -> Tensor:
    """``dst`` ← the rows of ``src`` sorted ascending (values only); returns ``dst``.

    On CPU numpy's SIMD sort is used — about 20× faster than ``torch.sort``, which also builds an index
    tensor — on blocks of 4 rows (copied, then sorted while still in cache) spread over ``pool``'s threads
    (numpy releases the GIL while sorting), so the sort scales with the cores as the matmul does.
    """
    if src.device.type != "cpu":
        return dst.copy_(torch.sort(src, dim=1).values)
    source, target = src.numpy(), dst.numpy()

    def sort_block(lo: int) -> None:
        np.copyto(target[lo : lo + 4], source[lo : lo + 4])
        target[lo : lo + 4].sort(axis=1)

    blocks = range(0, src.shape[0], 4)
    if pool is None:
        for lo in blocks:
            sort_block(lo)
    else:
        list(pool.map(sort_block, blocks))
    return dst


def _average_precisions(
    scores: Tensor, index: Tensor, valid: Tensor, ranked: Tensor
) -> tuple[Tensor, Tensor]:
    """AP of each row of ``scores`` ``[n, G]`` with same-label items ``index``/``valid`` ``[n, m]``.

    ``ranked`` holds the rows of ``scores`` sorted ascending. Returns ``(ap [n], has_match [n])``; rows
    without a same-label item have ``has_match`` False (their AP is meaningless).
    """
    n_gallery = scores.shape[1]
    # Same-label items in ranking order: score desc, then index asc (`index` rows are ascending).
    value, perm = torch.sort(
        scores.gather(1, index).masked_fill_(~valid, -torch.inf), dim=1, descending=True, stable=True
    )
    index, valid = index.gather(1, perm), valid.gather(1, perm)
    n_le = torch.searchsorted(ranked, value, right=True)
    n_equal = n_le - torch.searchsorted(ranked, value)  # gallery items scoring exactly `value`
    ascending = value.flip(1)
    n_equal_pos = torch.searchsorted(ascending, value, right=True) - torch.searchsorted(ascending, value)
    k = torch.arange(value.shape[1], device=scores.device)
    new_value = torch.ones_like(valid)
    new_value[:, 1:] = value[:, 1:] != value[:, :-1]
    run_start = torch.where(new_value, k, 0).cummax(dim=1).values  # first same-label item of equal score
    position = (n_gallery - n_le) + (k - run_start)
    for row, j in torch.nonzero(valid & (n_equal > n_equal_pos)).tolist():  # a non-matching item ties
        tie = scores[row, : int(index[row, j])] == value[row, j]
        position[row, j] = n_gallery - n_le[row, j] + int(tie.sum())
    precision = (k + 1).double() / (position + 1).double()
    n_pos = valid.sum(dim=1)
    return (precision * valid).sum(dim=1) / n_pos.clamp(min=1), n_pos > 0


def mean_average_precision(
    probe_emb: Tensor,
    probe_labels: Tensor,
    gallery_emb: Tensor,
    gallery_labels: Tensor,
    chunk_size: int | None = None,
) -> float:
    """Mean over probes of the average precision of the gallery ranking (score desc, ties by index asc).

    AP of one probe = mean over its same-label gallery items of the precision at that item's position.
    Probes without any same-label gallery item are excluded (AP undefined); if none remain, ValueError.

    Exact without an argsort of the gallery: the position of a same-label item with score ``s`` at index
    ``i`` is #items scoring ``> s`` (a binary search in a value-sorted copy of the score row) plus #items
    scoring exactly ``s`` at an index ``< i`` — the other same-label items of that score when no other item
    has it, else counted in the raw row. Chunks as in :func:`retrieval_rank_k`; memory ``O(chunk_size × G)``
    (the score block and its sorted copy). On CPU the row sort runs on ``torch.get_num_threads()`` threads;
    a chunk whose probes have at most one same-label item each (a one-image-per-identity gallery) needs no
    sort: AP = 1 / (1 + that item's position), counted as in :func:`retrieval_rank_k`.
    Cost at 10k probes × 100k gallery × 512-d float32 on an idle 2-core CPU (``make bench-metrics``): 1.47×
    the fastest bare chunked matmul with 10 gallery images per identity — the row sort (≈0.45× the matmul) is
    the extra — and about 1.1× with one image per identity; peak extra memory ≈ 0.71 GB.
    """
    name = "mean_average_precision"
    probe, p_lab, gallery, g_lab = _check_retrieval_inputs(
        name, probe_emb, probe_labels, gallery_emb, gallery_labels, chunk_size
    )
    n_probe, n_gallery = probe.shape[0], gallery.shape[0]
    groups = _GalleryGroups(g_lab)
    rows = _chunk_rows(chunk_size, n_probe, n_gallery, probe.element_size(), groups.max_positives(p_lab))
    scores_buf = torch.empty(rows, n_gallery, dtype=probe.dtype, device=probe.device)
    sorted_buf = torch.empty_like(scores_buf)
    ap_sum = torch.zeros((), dtype=torch.float64, device=probe.device)
    n_valid = 0
    workers = min(torch.get_num_threads(), rows) if probe.device.type == "cpu" else 1
    with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        for start in range(0, n_probe, rows):
            stop = min(start + rows, n_probe)
            index, valid = groups.positives(p_lab[start:stop])
            if index.shape[1] == 0:
                continue  # no probe of this chunk has a same-label gallery item
            scores = torch.mm(probe[start:stop], gallery.T, out=scores_buf[: stop - start])
            if index.shape[1] == 1:  # at most one same-label item per probe: AP = 1 / (its rank), no sort
                flags = sorted_buf[: stop - start]  # the sort buffer is free: reuse it as the scratch buffer
                if flags.dtype == torch.float32 and _flag_dtype(n_gallery) == torch.float64:
                    flags = torch.empty_like(flags, dtype=torch.float64)
                position = _chunk_first_positions(scores, index, valid, flags)
                ap, has_match = 1.0 / (position + 1).double(), valid[:, 0]
            else:
                ranked = _sorted_rows(scores, sorted_buf[: stop - start], pool)
                ap, has_match = _average_precisions(scores, index, valid, ranked)
            ap_sum += ap[has_match].sum()
            n_valid += int(has_match.sum())
    if n_valid == 0:
        raise ValueError(f"{name}: no probe has a same-label gallery item; mAP is undefined")
    return float(ap_sum / n_valid)
