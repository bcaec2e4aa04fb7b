"""A torchmetrics container that gathers named per-sample tensors from every rank (``cat`` sync)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from src.metrics.gather import GatherMetric


class TensorCollector(GatherMetric):
    """Collect per-sample tensors (embeddings, labels, dataset indices, ...) across batches and ranks.

    ``compute()`` returns a dict of concatenated tensors gathered from all processes, so uneven DDP
    shards are handled exactly (no padding, no duplicates). A rank that saw no batch at all contributes
    empty tensors of the dtype and shape the other ranks hold (:class:`src.metrics.gather.GatherMetric`),
    so integer and boolean states keep their dtype.
    """

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        if not names:
            raise ValueError("TensorCollector needs at least one state name")
        self.names = tuple(names)
        for name in self.names:
            self.add_gather_state(name)

    def update(self, **tensors: Tensor) -> None:  # type: ignore[override]
        """Append one batch; every name must be given with the same batch size."""
        if set(tensors) != set(self.names):
            raise ValueError(f"TensorCollector expects tensors {sorted(self.names)}, got {sorted(tensors)}")
        sizes = {t.shape[0] for t in tensors.values()}
        if len(sizes) != 1:
            raise ValueError(f"TensorCollector got tensors with different batch sizes {sorted(sizes)}")
        for name, tensor in tensors.items():
            getattr(self, name).append(tensor.detach())

    def compute(self) -> dict[str, Tensor]:  # type: ignore[override]
        """Concatenated tensors (empty collector → ValueError)."""
        if self.is_empty():
            raise ValueError("TensorCollector is empty: no batch was collected")
        return {name: self.gathered(name) for name in self.names}
