"""Stable integer ids for videos, shared by the video datasets (which emit them) and the detection metrics.

Strings cannot be synced by ``torch.distributed``, so video ids travel across ranks as integers from one
sorted table that every rank builds from the same full id list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor


class VideoIdEncoder:
    """Stable table ``video id (str) -> int`` so video ids can be gathered across DDP ranks as LongTensors.

    Strings cannot be synced by ``torch.distributed``; :class:`DetectionMetrics` takes integer video indices.
    The table is the **sorted** list of unique ids (no ``hash()``, which is salted per process), so every rank
    that builds it from the same *full* id list (the datamodule's whole split index, not its shard) gets the
    same integers, whatever the listing order. :meth:`fingerprint` (SHA-256 of the table) lets ranks or run
    records check that.
    """

    def __init__(self, ids: Iterable[str]) -> None:
        values = list(ids)
        bad = [v for v in values if not isinstance(v, str)]
        if bad:
            raise ValueError(f"VideoIdEncoder: ids must be strings, got {type(bad[0]).__name__} ({bad[0]!r})")
        self._ids: tuple[str, ...] = tuple(sorted(set(values)))
        if not self._ids:
            raise ValueError("VideoIdEncoder: needs at least one video id")
        self._index = {v: i for i, v in enumerate(self._ids)}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._index

    @property
    def ids(self) -> tuple[str, ...]:
        """The table: ``ids[i]`` is the video encoded as ``i``."""
        return self._ids

    def encode(self, ids: str | Sequence[str]) -> Tensor:
        """LongTensor of the indices of ``ids`` (a single id gives a 1-element tensor)."""
        values = [ids] if isinstance(ids, str) else list(ids)
        try:
            return torch.tensor([self._index[v] for v in values], dtype=torch.long)
        except KeyError as err:
            raise ValueError(f"VideoIdEncoder: unknown video id {err.args[0]!r} (not in the table)") from None

    def decode(self, indices: Tensor | Sequence[int]) -> list[str]:
        """Video ids of integer ``indices``."""
        values = indices.tolist() if isinstance(indices, Tensor) else list(indices)
        out = []
        for i in values:
            if not isinstance(i, int) or not 0 <= i < len(self._ids):
                raise ValueError(f"VideoIdEncoder: index {i!r} is outside the table of {len(self._ids)} ids")
            out.append(self._ids[i])
        return out

    def fingerprint(self) -> str:
        """SHA-256 hex digest of the table (equal on every rank iff the tables are equal)."""
        return hashlib.sha256("\n".join(self._ids).encode("utf-8")).hexdigest()
