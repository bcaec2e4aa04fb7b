"""Classification heads sized from the data (src/lightning_modules/heads.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from src.config.errors import ConfigError
from src.lightning_modules.heads import size_head_from_data
from src.networks.arcface_head import ArcMarginHead


def test_an_unsized_head_takes_the_class_count_and_a_sized_one_is_checked() -> None:
    head = ArcMarginHead(8)
    size_head_from_data(head, SimpleNamespace(num_classes=5))
    assert head.num_classes == 5 and head.weight.shape == (5, 8)
    size_head_from_data(head, SimpleNamespace(num_classes=5))  # matches: nothing to do
    size_head_from_data(head, SimpleNamespace())  # the data states nothing: a sized head stands
    with pytest.raises(ConfigError, match="num_classes=5 but the training split has 6 identities"):
        size_head_from_data(head, SimpleNamespace(num_classes=6))
    with pytest.raises(ConfigError, match="model.head.num_classes is null"):
        size_head_from_data(ArcMarginHead(8), SimpleNamespace())
    with pytest.raises(ConfigError, match="at least 2 identities"):
        size_head_from_data(ArcMarginHead(8), SimpleNamespace(num_classes=1))
    plain = SimpleNamespace()  # a head without set_num_classes is left alone
    size_head_from_data(plain, SimpleNamespace(num_classes=3))  # type: ignore[arg-type]
