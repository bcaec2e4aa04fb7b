"""Rank-distributed collection of per-sample tensors: one torchmetrics base for every gather-style metric.

Metrics that need all samples at once (ROC curves, k-fold verification, retrieval, video aggregation) keep
lists of per-sample tensors reduced with ``dist_reduce_fx="cat"``. torchmetrics gives a rank that saw no
data a 1-D float32 placeholder for each empty list, so the ranks would gather tensors of different dtypes
and shapes (long labels or ``[N, D]`` embeddings on one rank, ``float32[0]`` on another) and the result is
silently promoted to float or fails. :class:`GatherMetric` fixes that once for all of them:

* before every sync, the ranks exchange a small table (one ``all_gather``) with the dtype and trailing shape
  of each of their states, so an empty rank contributes an empty tensor of the right dtype and shape —
  even for states whose dtype or shape is only known from the data (:class:`src.evaluation.collector.
  TensorCollector`); ranks that disagree raise :class:`ValueError` on every rank;
* :meth:`GatherMetric.gathered` returns the concatenated state (synced or local) or an empty tensor of
  the declared dtype.

The gathered order is rank 0's samples, then rank 1's, ... (each in update order). A ``DistributedSampler``
pads uneven datasets with duplicates; metrics that care take a global sample index (see ``docs/metrics.md``,
"Distributed evaluation").
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.distributed import gather_all_tensors

from src.metrics._checks import check_embeddings, check_labels

__all__ = ["EmbeddingCollector", "GatherMetric"]

#: dtypes a gathered state may have (their position is the code exchanged between ranks).
_DTYPES: tuple[torch.dtype, ...] = (
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.complex64,
    torch.complex128,
)
#: Largest number of dimensions of a gathered state (the exchanged table has a fixed width).
MAX_STATE_DIMS = 8


class GatherMetric(Metric):
    """Base for metrics whose states are lists of per-sample tensors gathered (``cat``) across ranks.

    Subclasses declare each state with :meth:`add_gather_state` (``dtype=None`` when the data decides it)
    and read it with :meth:`gathered`. Every rank takes part in one extra ``all_gather`` per sync.
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gather_dtypes: dict[str, torch.dtype | None] = {}

    def add_gather_state(self, name: str, dtype: torch.dtype | None = None) -> None:
        """Declare a ``cat`` list state; ``dtype`` is its dtype (``None``: taken from the data)."""
        if dtype is not None and dtype not in _DTYPES:
            raise ValueError(f"{type(self).__name__}: unsupported state dtype {dtype}")
        self.add_state(name, default=[], dist_reduce_fx="cat")
        self._gather_dtypes[name] = dtype

    def _local_layout(self, name: str) -> list[int]:
        """``[has_data, dtype code, ndim, *shape[1:]]`` of a state on this rank (zeros when empty)."""
        row = [0] * (3 + MAX_STATE_DIMS)
        value = getattr(self, name)
        tensors = [value] if isinstance(value, Tensor) else list(value)
        if not tensors:
            return row
        first = tensors[0]
        if first.ndim > MAX_STATE_DIMS + 1 or first.dtype not in _DTYPES:
            raise ValueError(
                f"{type(self).__name__}: state `{name}` has {first.ndim} dims and dtype {first.dtype}; "
                f"gathering supports up to {MAX_STATE_DIMS + 1} dims and the dtypes {_DTYPES}"
            )
        row[:3] = [1, _DTYPES.index(first.dtype), first.ndim]
        row[3 : 3 + first.ndim - 1] = list(first.shape[1:])
        return row

    def _sync_dist(self, dist_sync_fn: Any = gather_all_tensors, process_group: Any | None = None) -> None:
        """Give empty states placeholders of the dtype/shape the other ranks hold, then let torchmetrics
        gather (see the module docstring)."""
        names = list(self._gather_dtypes)
        group = process_group or self.process_group
        local = torch.tensor([self._local_layout(n) for n in names], dtype=torch.long, device=self.device)
        world = dist.get_world_size(group)
        tables = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(tables, local, group=group)
        layouts = torch.stack(tables).cpu()  # [ranks, states, 3 + MAX_STATE_DIMS]
        for i, name in enumerate(names):
            rows = {tuple(r) for r in layouts[:, i].tolist() if r[0] == 1}
            if len(rows) > 1:
                raise ValueError(
                    f"{type(self).__name__}: ranks hold state `{name}` with different dtypes or shapes "
                    f"({sorted(rows)} as [has_data, dtype code, ndim, *shape[1:]])"
                )
            value = getattr(self, name)
            if isinstance(value, list) and not value:
                if rows:
                    _, code, ndim, *dims = rows.pop()
                    shape = (0, *dims[: ndim - 1])
                    dtype = _DTYPES[code]
                else:  # no rank has data: a typed empty placeholder everywhere
                    shape, dtype = (0,), self._gather_dtypes[name] or torch.float32
                setattr(self, name, [torch.zeros(shape, dtype=dtype, device=self.device)])
        super()._sync_dist(dist_sync_fn, process_group=process_group)

    def gathered(self, name: str) -> Tensor:
        """The concatenated state ``name`` (all ranks after a sync); empty tensor when nothing was added."""
        value = getattr(self, name)
        if isinstance(value, Tensor):
            return value
        if not value:
            return torch.zeros(0, dtype=self._gather_dtypes[name] or torch.float32, device=self.device)
        return torch.cat(value) if len(value) > 1 else value[0]

    def is_empty(self) -> bool:
        """True when no sample was collected (on any rank, after a sync)."""
        first = next(iter(self._gather_dtypes))
        return self.gathered(first).shape[0] == 0


class EmbeddingCollector(GatherMetric):
    """Collects ``(embeddings, labels)`` over batches and, under DDP, over ranks.

    Gather-style identity metrics (rank-k, TAR@FAR, verification over all pairs) need every embedding at
    once; feed ``compute()``'s output to :func:`src.metrics.retrieval.retrieval_rank_k` & co. Embeddings are
    stored detached as float32 so that all ranks gather tensors of one dtype; ranks may hold uneven numbers
    of samples, and a rank that saw no data at all is handled (:class:`GatherMetric`). The gathered order is
    rank 0's samples, then rank 1's, ... (each in update order).

    ``compute()`` returns ``(embeddings: float32[N, D], labels: long[N])`` and raises :class:`ValueError`
    when nothing was collected.
    """

    embeddings: list[Tensor] | Tensor
    labels: list[Tensor] | Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_gather_state("embeddings", torch.float32)
        self.add_gather_state("labels", torch.long)

    def update(self, embeddings: Tensor, labels: Tensor) -> None:
        """Append one batch: ``embeddings`` ``[B, D]`` (finite floats) and integer ``labels`` ``[B]``."""
        name = "EmbeddingCollector"
        embeddings = check_embeddings(name, "embeddings", embeddings)
        labels = check_labels(name, "labels", labels, embeddings.shape[0])
        if self.embeddings and self.embeddings[0].shape[1] != embeddings.shape[1]:
            raise ValueError(
                f"{name}: embedding size changed from D={self.embeddings[0].shape[1]} "
                f"to D={embeddings.shape[1]}"
            )
        self.embeddings.append(embeddings.detach().to(torch.float32))
        self.labels.append(labels.detach().to(torch.long))

    def compute(self) -> tuple[Tensor, Tensor]:
        """All collected embeddings and labels (from every rank), concatenated."""
        emb = self.gathered("embeddings")
        if emb.shape[0] == 0:
            raise ValueError(
                "EmbeddingCollector: compute() called on an empty state (no embeddings collected)"
            )
        return emb, self.gathered("labels")
