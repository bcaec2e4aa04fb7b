"""The adaptive "parrot" attacker: a panel recognizer fine-tuned on protected faces.

A protection that only fools recognizers which never saw protected faces is weak: an attacker who can run
the protection on faces of known people (the panel's *training* identities, disjoint from its test ones) can
fine-tune a recognizer to see through it. :func:`fine_tune_parrot` does exactly that — an ArcFace head over
the training identities, AdamW, horizontal-flip augmentation — on a deep copy of a panel recognizer, so the
panel's own network is never changed. The leaderboard then scores the parrot like any other recognizer and
reports its gain over the un-tuned one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.leaderboarding.recognizers import PanelRecognizer, network_embeddings
from src.networks.arcface_head import ArcMarginHead

__all__ = ["TRAIN_LAYERS", "fine_tune_parrot", "trainable_modules"]

TRAIN_LAYERS = ("all", "last")


def _check_inputs(images: Tensor, identities: Tensor, steps: int, batch_size: int, lr: float) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"parrot: images must be a [N, 3, H, W] tensor, got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"parrot: images must be float in [0, 1], got dtype {images.dtype}")
    if images.numel() and (
        not torch.isfinite(images).all() or images.min() < -1e-4 or images.max() > 1 + 1e-4
    ):
        raise ValueError(
            f"parrot: images must lie in [0, 1], got values in [{images.min().item():.4g}, "
            f"{images.max().item():.4g}]"
        )
    if not isinstance(identities, Tensor) or identities.ndim != 1:
        shape = tuple(identities.shape) if isinstance(identities, Tensor) else type(identities).__name__
        raise ValueError(f"parrot: identities must be a 1-D tensor, got {shape}")
    if identities.is_floating_point() or identities.is_complex() or identities.dtype == torch.bool:
        raise ValueError(f"parrot: identities must be integer labels, got dtype {identities.dtype}")
    if identities.shape[0] != images.shape[0]:
        raise ValueError(
            f"parrot: {images.shape[0]} images but {identities.shape[0]} identities (one label per image)"
        )
    distinct = int(identities.unique().numel())
    if distinct < 2:
        raise ValueError(f"parrot: fine-tuning needs at least 2 identities, got {distinct}")
    if steps < 1 or batch_size < 2 or not lr > 0:
        raise ValueError(
            f"parrot: need steps >= 1, batch_size >= 2, lr > 0 (got {steps}, {batch_size}, {lr})"
        )


def trainable_modules(network: nn.Module, train_layers: str) -> list[nn.Module]:
    """The modules whose parameters fine-tuning updates: every module (``all``), or (``last``) the last
    fully-connected layer and every parameterised module after it (e.g. a final BatchNorm1d) — the last
    parameterised module when the network has no ``nn.Linear``."""
    if train_layers not in TRAIN_LAYERS:
        raise ValueError(f"parrot: train_layers must be one of {TRAIN_LAYERS}, got {train_layers!r}")
    owners = [module for module in network.modules() if any(True for _ in module.parameters(recurse=False))]
    if not owners:
        raise ValueError(f"parrot: {type(network).__name__} has no parameters to fine-tune")
    if train_layers == "all":
        return owners
    linear = [index for index, module in enumerate(owners) if isinstance(module, nn.Linear)]
    return owners[linear[-1] if linear else len(owners) - 1 :]


def _unfreeze(network: nn.Module, modules: list[nn.Module]) -> list[nn.Parameter]:
    """Lift a zoo recognizer's freeze (it pins eval mode) and enable gradients of ``modules`` only."""
    for module in network.modules():
        if getattr(module, "_frozen", False):
            module._frozen = False
    network.requires_grad_(False)
    parameters: list[nn.Parameter] = []
    for module in modules:
        for parameter in module.parameters(recurse=False):
            parameter.requires_grad_(True)
            parameters.append(parameter)
    return parameters


def _set_mode(network: nn.Module, modules: list[nn.Module], train_layers: str) -> None:
    """Training mode for the trained part only (frozen layers keep their BatchNorm statistics)."""
    if train_layers == "all":
        network.train()
        return
    network.eval()
    for module in modules:
        module.train()


def fine_tune_parrot(
    recognizer: PanelRecognizer,
    images: Tensor,
    identities: Tensor,
    *,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 1e-3,
    margin: float = 0.3,
    scale: float = 30.0,
    seed: int = 0,
    weight_decay: float = 5e-4,
    train_layers: Literal["all", "last"] = "all",
    progress: Callable[[int, float], None] | None = None,
) -> PanelRecognizer:
    """A copy of ``recognizer`` fine-tuned with an ArcFace head to tell ``identities`` apart on ``images``.

    ``images``: protected training faces ``[N, 3, H, W]`` in [0, 1] (any size: the network resizes them);
    ``identities``: their integer labels (any values, relabelled 0..K-1; at least 2 distinct). Batches are
    drawn from a seeded permutation and flipped horizontally at random, so the result is deterministic
    under ``seed`` (the global RNG state is left as it was). ``train_layers``: ``all`` (default) or ``last``
    (:func:`trainable_modules`). ``progress(step, loss)`` is called after every step.

    Returns a new frozen :class:`PanelRecognizer` named ``"<name> (parrot)"`` whose ``source`` adds a
    ``parrot`` record (steps, images, identities, settings, final loss, seconds); the recognizer passed in
    is not modified.
    """
    _check_inputs(images, identities, steps, batch_size, lr)
    _, labels = identities.unique(sorted=True, return_inverse=True)
    num_classes = int(labels.max().item()) + 1
    network = copy.deepcopy(recognizer.network)
    modules = trainable_modules(network, train_layers)
    parameters = _unfreeze(network, modules)
    device = next(network.parameters()).device
    images = images.to(device, torch.float32)
    labels = labels.to(device)
    count = images.shape[0]
    batch = min(batch_size, count)
    start = time.perf_counter()
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        network.eval()
        with torch.no_grad():
            embedding_dim = int(network_embeddings(network, images[:1]).shape[1])
        head = ArcMarginHead(embedding_dim, num_classes, scale=scale, margin=margin).to(device)
        optimizer = torch.optim.AdamW([*parameters, *head.parameters()], lr=lr, weight_decay=weight_decay)
        _set_mode(network, modules, train_layers)
        order = torch.randperm(count, generator=generator)
        cursor = 0
        loss_value = float("nan")
        for step in range(1, steps + 1):
            if cursor + batch > count:
                order, cursor = torch.randperm(count, generator=generator), 0
            index = order[cursor : cursor + batch].to(device)
            cursor += batch
            flip = (torch.rand(batch, generator=generator) < 0.5).to(device).view(-1, 1, 1, 1)
            x = torch.where(flip, images[index].flip(-1), images[index])
            embeddings = network_embeddings(network, x)
            loss = F.cross_entropy(head(embeddings, labels[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())
            if progress is not None:
                progress(step, loss_value)
    freeze = getattr(network, "freeze", None)
    network = freeze() if callable(freeze) else network.eval().requires_grad_(False)
    record = {
        "base": recognizer.name,
        "steps": steps,
        "images": count,
        "identities": num_classes,
        "batch_size": batch,
        "lr": lr,
        "weight_decay": weight_decay,
        "margin": margin,
        "scale": scale,
        "seed": seed,
        "train_layers": train_layers,
        "augmentation": "horizontal flip (p=0.5)",
        "final_loss": loss_value,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return PanelRecognizer(f"{recognizer.name} (parrot)", network, {**recognizer.source, "parrot": record})
