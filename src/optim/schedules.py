"""Learning-rate schedules given as factories for experiment files."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from src.config.buildable import buildable


class LinearDecayFactor:
    """``1`` before epoch ``start``, then linear to ``0`` at epoch ``total`` (a picklable LambdaLR factor)."""

    def __init__(self, total: int, start: int) -> None:
        self.total, self.start = int(total), int(start)

    def __call__(self, epoch: int) -> float:
        if epoch < self.start:
            return 1.0
        return max(0.0, (self.total - epoch) / max(1, self.total - self.start))


@buildable
def linear_decay(optimizer: Optimizer, total_epochs: int, decay_start: float = 0.75) -> LambdaLR:
    """Constant learning rate until epoch ``floor(decay_start * total_epochs)``, then linear decay to zero at
    ``total_epochs`` (the original SBI code's ``LinearDecayLR``); step it once per epoch."""
    if total_epochs < 1:
        raise ValueError(f"linear_decay: total_epochs must be >= 1, got {total_epochs}")
    if not 0.0 <= decay_start <= 1.0:
        raise ValueError(f"linear_decay: decay_start must be in [0, 1], got {decay_start}")
    return LambdaLR(optimizer, LinearDecayFactor(total_epochs, int(decay_start * total_epochs)))
