"""A torchmetrics container that gathers named per-sample tensors from every rank (``cat`` sync)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat


class TensorCollector(Metric):
    """Collect per-sample tensors (embeddings, labels, dataset indices, ...) across batches and ranks.

    ``compute()`` returns a dict of concatenated tensors gathered from all processes, so uneven DDP
    shards are handled exactly (no padding, no duplicates).
    """

    full_state_update = False

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        if not names:
            raise ValueError("TensorCollector needs at least one state name")
        self.names = tuple(names)
        for name in self.names:
            self.add_state(name, default=[], dist_reduce_fx="cat")

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
        first = getattr(self, self.names[0])
        if isinstance(first, list) and not first:
            raise ValueError("TensorCollector is empty: no batch was collected")
        return {name: dim_zero_cat(getattr(self, name)) for name in self.names}
