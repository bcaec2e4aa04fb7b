"""One test over every registered paper module (timm-style): it has experiments, builds and steps."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from src.config.compose import compose, list_experiments
from src.config.instantiate import instantiate
from src.lightning_modules.registry import KINDS, discover
from tests.helpers import composed, tiny_overrides

PAPERS = discover()


@functools.cache
def experiments_using(target: str) -> list[str]:
    """Experiment files whose model is built from ``target``, demo-sized ones first."""
    found = [e for e in list_experiments() if compose(e, allow_missing=True).config.model._target_ == target]
    return sorted(found, key=lambda e: ("demo" not in e, e))


def test_registry_is_populated() -> None:
    assert {"face_recognizer", "obfuscation_baselines"} <= set(PAPERS)


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_paper_is_described_and_has_experiments(name: str) -> None:
    info = PAPERS[name]
    assert info.kind in KINDS and info.title
    assert issubclass(info.cls, pl.LightningModule)
    assert experiments_using(info.target), f"{name}: no experiment file builds {info.target}"


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_paper_builds_and_takes_a_step(name: str, tmp_path: Path, required_values: dict[str, str]) -> None:
    experiment = experiments_using(PAPERS[name].target)[0]
    cfg = composed(experiment, tiny_overrides(experiment, tmp_path, required_values))
    model = instantiate(cfg.model)
    assert isinstance(model, PAPERS[name].cls)
    datamodule = instantiate(cfg.datamodule)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=1,
        limit_val_batches=0,
        limit_test_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainable = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
    if trainable:
        trainer.fit(model, datamodule=datamodule)
        changed = [
            k for k, p in model.named_parameters() if k in trainable and not torch.equal(p, trainable[k])
        ]
        assert changed, f"{name}: one optimisation step changed no parameter"
        assert all(torch.isfinite(p).all() for p in model.parameters())
    else:
        results = trainer.test(model, datamodule=datamodule, verbose=False)
        assert results and all(torch.isfinite(torch.tensor(v)) for v in results[0].values())
