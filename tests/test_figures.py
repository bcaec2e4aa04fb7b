"""Figures of a run: saved under <run dir>/plots only inside a run, on rank 0, and logged to W&B loggers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest
from pytorch_lightning.loggers import CSVLogger, WandbLogger

from src.lightning_modules.figures import figure_path, log_figure
from src.metrics.plots import similarity_histogram


def module_with(loggers: list[object], rank_zero: bool = True) -> SimpleNamespace:
    trainer = SimpleNamespace(is_global_zero=rank_zero, loggers=loggers, global_step=7)
    return SimpleNamespace(_trainer=trainer)


def figure() -> object:
    return similarity_histogram([0.8, 0.9, 0.7], [0.1, 0.2, 0.3])


def test_saved_in_the_run_record_and_logged_to_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFACE_RUN_DIR", str(tmp_path))
    wandb = MagicMock(spec=WandbLogger)
    csv = MagicMock(spec=CSVLogger)
    path = log_figure(module_with([csv, wandb]), "test/roc settings", figure())
    assert path == tmp_path / "plots" / "test" / "roc_settings.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    wandb.log_image.assert_called_once_with(key="test/roc settings", images=[str(path)], step=7)


def test_nothing_written_outside_a_run_or_off_rank_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROFACE_RUN_DIR", raising=False)
    assert log_figure(module_with([]), "test/x", figure()) is None
    monkeypatch.setenv("PROFACE_RUN_DIR", str(tmp_path))
    assert log_figure(module_with([], rank_zero=False), "test/x", figure()) is None
    assert log_figure(SimpleNamespace(_trainer=None), "test/x", figure()) is None
    assert not (tmp_path / "plots").exists()


def test_figure_names() -> None:
    assert figure_path("/r", "a/b/c") == Path("/r/plots/a/b/c.png")
    with pytest.raises(ValueError, match="empty"):
        figure_path("/r", "//")
