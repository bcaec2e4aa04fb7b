"""Adapters that make any detector or recognizer a well-behaved victim for gradient attacks.

- ``LogitsOnly``: torchattacks computes its loss on ``model(x)``; models that return ``(logits, features)``
  (or a dict) break every attack, so this wrapper keeps the logits only.
- ``BPDA``: Backward Pass Differentiable Approximation (Athalye et al., 2018) for non-differentiable
  pre-processing (quantisation, JPEG, a detection/crop step): exact forward, approximate gradient.
- ``victim_mode``: eval mode, gradients on, autocast off and parameters frozen for the duration of an attack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

TensorFn = Callable[[torch.Tensor], torch.Tensor]


class LogitsOnly(nn.Module):
    """Return only ``output[index]`` of a model whose output is a tuple, list or dict."""

    def __init__(self, model: nn.Module, index: int | str = 0) -> None:
        super().__init__()
        self.model = model
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, torch.Tensor):
            return out
        try:
            logits = out[self.index]
        except (IndexError, KeyError, TypeError) as err:
            raise ValueError(
                f"LogitsOnly: cannot take index {self.index!r} of a {type(out).__name__} model output"
            ) from err
        if not isinstance(logits, torch.Tensor):
            raise ValueError(f"LogitsOnly: output[{self.index!r}] is a {type(logits).__name__}, not a tensor")
        return logits


class _BPDAFunction(torch.autograd.Function):
    """Exact ``forward`` on the way in; the vector-Jacobian product of ``backward`` on the way out."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, fwd: TensorFn, bwd: TensorFn | None) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.bwd = bwd
        with torch.no_grad():
            return fwd(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        if ctx.bwd is None:  # straight-through: d forward / dx ≈ identity
            return grad_output, None, None
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            x_ = x.detach().requires_grad_(True)
            (grad_input,) = torch.autograd.grad(ctx.bwd(x_), x_, grad_output)
        return grad_input, None, None


class BPDA(nn.Module):
    """Apply a non-differentiable ``forward``; back-propagate through ``backward`` (identity when None).

    ``backward`` is a differentiable approximation g ≈ forward (Athalye et al., 2018): the gradient is that of
    g at the same input. Compose it in front of the victim, e.g. ``nn.Sequential(BPDA(quantise), model)``.
    """

    def __init__(self, forward: TensorFn, backward: TensorFn | None = None) -> None:
        super().__init__()
        self.fwd = forward
        self.bwd = backward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _BPDAFunction.apply(x, self.fwd, self.bwd)


@contextmanager
def victim_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode, grad enabled, fp32 (autocast off), parameters frozen; restores every submodule's own
    train/eval mode and the flags after (not ``model.train(...)``: that would put frozen parts in train mode).

    Freezing the parameters keeps attacks that call ``loss.backward()`` (e.g. CW) from writing ``.grad``
    into the victim, and skips needless weight-gradient work.
    """
    modes = [(module, module.training) for module in model.modules()]  # a victim may mix modes (frozen parts)
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    with ExitStack() as stack:
        stack.enter_context(torch.enable_grad())
        stack.enter_context(torch.autocast("cpu", enabled=False))
        if torch.cuda.is_available():
            stack.enter_context(torch.autocast("cuda", enabled=False))
        try:
            model.eval()
            for p in params:
                p.requires_grad_(False)
            yield model
        finally:
            for p, flag in zip(params, flags, strict=True):
                p.requires_grad_(flag)
            for module, mode in modes:
                module.training = mode
