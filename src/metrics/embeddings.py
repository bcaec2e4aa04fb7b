"""Embeddings of a whole dataloader with any recognizer (the first step of every identity evaluation)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["extract_embeddings"]


def _module_device(recognizer: object) -> torch.device:
    """Device of the recognizer's first parameter or buffer (CPU for parameter-free callables)."""
    if isinstance(recognizer, nn.Module):
        for tensor in (*recognizer.parameters(), *recognizer.buffers()):
            return tensor.device
    return torch.device("cpu")


def _field(batch: object, key: str | int, what: str, batch_idx: int) -> Tensor:
    """``batch[key]`` as a tensor, or a ValueError naming the key, the batch and what is there."""
    if isinstance(batch, Mapping):
        if key not in batch:
            raise ValueError(
                f"extract_embeddings: batch {batch_idx} has no {what} key {key!r}; "
                f"keys: {sorted(map(str, batch))}"
            )
        value = batch[key]
    elif isinstance(batch, list | tuple) and isinstance(key, int):
        if not -len(batch) <= key < len(batch):
            raise ValueError(f"extract_embeddings: batch {batch_idx} has {len(batch)} items, no {what} {key}")
        value = batch[key]
    else:
        raise ValueError(
            f"extract_embeddings: batch {batch_idx} is a {type(batch).__name__}; expected a dict batch "
            f"(or a tuple/list with integer keys), {what} key {key!r}"
        )
    if not isinstance(value, Tensor):
        raise ValueError(
            f"extract_embeddings: batch {batch_idx}[{key!r}] ({what}) must be a tensor, "
            f"got {type(value).__name__}"
        )
    return value


def extract_embeddings(
    recognizer: Callable[[Tensor], Tensor],
    dataloader: Iterable[Any],
    image_key: str | int = "image",
    label_key: str | int | None = "identity",
    device: torch.device | str | None = None,
    normalize: bool = True,
    progress: bool = True,
    index_key: str | int | None = "index",
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Run ``recognizer`` over every batch of ``dataloader``; return ``(embeddings, labels, indices)`` on CPU.

    * ``recognizer``: any callable mapping images ``[B, 3, H, W]`` (the project's [0, 1] RGB batches) to
      embeddings ``[B, D]`` — a :class:`src.networks.recognizers.base.FaceRecognizer`, an ``IResNet``, a
      LightningModule. Modules run in eval mode (restored afterwards) under ``torch.no_grad()``.
    * ``device``: where images go (default: the recognizer's parameter device, CPU for parameter-free ones).
    * ``normalize``: L2-normalise the embeddings (a zero embedding is an error then).
    * ``labels``: ``batch[label_key]`` as long, or ``None`` when ``label_key`` is None.
    * ``indices``: ``batch[index_key]`` (the dataset index every project batch carries), or the running
      position ``0..N-1`` when ``index_key`` is None or the batch lacks that key.

    Embeddings come back as float32 ``[N, D]``; a tqdm bar shows progress unless ``progress=False``.
    Bad batches (missing key, wrong shape, non-finite embeddings) raise ValueError naming the batch.
    """
    name = "extract_embeddings"
    if device is None:
        device = _module_device(recognizer)
    device = torch.device(device)
    was_training = recognizer.training if isinstance(recognizer, nn.Module) else None
    embeddings: list[Tensor] = []
    labels: list[Tensor] = []
    indices: list[Tensor] = []
    seen = 0
    try:
        if isinstance(recognizer, nn.Module):
            recognizer.eval()
        with torch.no_grad():
            for batch_idx, batch in enumerate(tqdm(dataloader, desc="embeddings", disable=not progress)):
                images = _field(batch, image_key, "image", batch_idx)
                if images.ndim != 4:
                    raise ValueError(
                        f"{name}: batch {batch_idx}[{image_key!r}] must be [B, C, H, W], "
                        f"got {tuple(images.shape)}"
                    )
                n = images.shape[0]
                emb = recognizer(images.to(device))
                if not isinstance(emb, Tensor) or emb.ndim != 2 or emb.shape[0] != n:
                    shape = tuple(emb.shape) if isinstance(emb, Tensor) else type(emb).__name__
                    raise ValueError(f"{name}: the recognizer must return [B={n}, D] embeddings, got {shape}")
                if not bool(torch.isfinite(emb).all()):
                    raise ValueError(
                        f"{name}: the recognizer returned non-finite embeddings for batch {batch_idx}"
                    )
                if normalize:
                    norms = torch.linalg.vector_norm(emb, dim=1, keepdim=True)
                    if bool((norms == 0).any()):
                        raise ValueError(f"{name}: zero embedding in batch {batch_idx}; cannot L2-normalise")
                    emb = emb / norms
                embeddings.append(emb.detach().to("cpu", torch.float32))
                if label_key is not None:
                    lab = _field(batch, label_key, "label", batch_idx)
                    if lab.shape != (n,):
                        raise ValueError(
                            f"{name}: batch {batch_idx}[{label_key!r}] must have shape [{n}], "
                            f"got {tuple(lab.shape)}"
                        )
                    labels.append(lab.detach().to("cpu", torch.long))
                has_index = index_key is not None and (
                    (isinstance(batch, Mapping) and index_key in batch)
                    or (isinstance(batch, list | tuple) and isinstance(index_key, int))
                )
                if has_index:
                    idx = _field(batch, index_key, "index", batch_idx).detach().to("cpu", torch.long)
                    if idx.shape != (n,):
                        raise ValueError(
                            f"{name}: batch {batch_idx}[{index_key!r}] must have shape [{n}], "
                            f"got {tuple(idx.shape)}"
                        )
                else:
                    idx = torch.arange(seen, seen + n)
                indices.append(idx)
                seen += n
    finally:
        if was_training is not None:
            recognizer.train(was_training)
    if not embeddings:
        raise ValueError(f"{name}: the dataloader yielded no batch")
    return (
        torch.cat(embeddings),
        torch.cat(labels) if label_key is not None else None,
        torch.cat(indices),
    )
