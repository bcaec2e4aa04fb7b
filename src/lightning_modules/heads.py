"""Classification heads sized from the data: what a module training a recognizer head does before fitting."""

from __future__ import annotations

from typing import Any

from torch import nn

from src.config.errors import ConfigError


def size_head_from_data(head: nn.Module, datamodule: Any) -> None:
    """Size an unsized head (``num_classes=None``, e.g. an ArcFace margin head) from the DataModule's
    training identities (``num_classes``), or check that a sized one fits them.

    Heads without ``set_num_classes`` are left alone. Raises :class:`ConfigError` naming the key to set when
    neither says how many classes there are, when the data has fewer than 2, or when the two disagree.
    """
    set_num_classes = getattr(head, "set_num_classes", None)
    if not callable(set_num_classes):
        return
    current = getattr(head, "num_classes", None)
    classes = getattr(datamodule, "num_classes", None)
    if classes is None:
        if current is None:
            raise ConfigError(
                f"model.head.num_classes is null and {type(datamodule).__name__} does not say how many "
                "training identities it has: set model.head.num_classes"
            )
        return
    if classes < 2:
        raise ConfigError(
            f"{type(datamodule).__name__} has {classes} training identities; the ArcFace head needs "
            "identity-labelled training data with at least 2 identities"
        )
    if current is None:
        set_num_classes(int(classes))
    elif current != classes:
        raise ConfigError(
            f"model.head.num_classes={current} but the training split has {classes} identities: set "
            "model.head.num_classes=null to size the head from the data (or the matching number)"
        )
