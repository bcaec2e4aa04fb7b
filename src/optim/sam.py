"""Sharpness-Aware Minimization (SAM; Foret et al., ICLR 2021) around any torch optimizer.

One SAM update is two forward/backward passes: with the gradient ``g`` at ``w``, move to the worst nearby
point ``w + e`` with ``e = rho * g / ||g||_2`` (the global L2 norm over every parameter; ``adaptive=True``
scales each coordinate by ``|w|`` as in ASAM), compute the gradient there, go back to ``w`` and let the base
optimizer step with that gradient. This is what the original SBI code trains with (SGD, rho 0.05,
non-adaptive). Written here (about forty lines) because no maintained package on PyPI provides it as a
torch optimizer with the first/second-step split a Lightning manual-optimisation loop needs.

Usage (manual optimisation)::

    loss_fn(model(x)).backward(); opt.first_step(zero_grad=True)
    loss_fn(model(x)).backward(); opt.second_step(zero_grad=True)

or ``opt.step(closure)`` with a closure that recomputes the loss and calls ``backward``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from src.config.buildable import buildable


@buildable
class SAM(Optimizer):
    """SAM around ``base_optimizer``, a factory such as ``functools.partial(torch.optim.SGD, momentum=0.9)``.

    ``lr`` and any other keyword arguments go to the base optimizer; both share the same ``param_groups``,
    so learning-rate schedulers attached to this optimizer drive the base one.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: Callable[..., Optimizer],
        rho: float = 0.05,
        adaptive: bool = False,
        **kwargs: Any,
    ) -> None:
        if rho < 0:
            raise ValueError(f"SAM: rho must be >= 0, got {rho}")
        super().__init__(params, {"rho": float(rho), "adaptive": bool(adaptive), **kwargs})
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [
            ((p.abs() if group["adaptive"] else 1.0) * p.grad).norm(p=2)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        if not norms:
            raise RuntimeError("SAM.first_step: no parameter has a gradient (call backward first)")
        return torch.norm(torch.stack(norms), p=2)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move every parameter to ``w + e(w)`` (the ascent step) and remember ``e``."""
        scale_base = 1.0 / (self._grad_norm() + 1e-12)
        for group in self.param_groups:
            scale = group["rho"] * scale_base
            for p in group["params"]:
                if p.grad is None:
                    continue
                e = (p.pow(2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e)
                self.state[p]["e_w"] = e
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Return to ``w`` and step the base optimizer with the gradient taken at ``w + e``."""
        for group in self.param_groups:
            for p in group["params"]:
                e = self.state[p].pop("e_w", None)
                if e is not None:
                    p.sub_(e)
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Both steps; ``closure`` must recompute the loss and call ``backward`` (it is called once)."""
        if closure is None:
            raise RuntimeError("SAM.step needs a closure that recomputes the loss and calls backward()")
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore, keeping the base optimizer on the same parameter groups."""
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups
