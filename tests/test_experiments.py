"""Every experiment file, kept honest: each one builds (DataModule and LightningModule) with its paper's tiny
settings, and each one runs end to end under ``fast_dev_run`` (paper-scale ones in the slow suite)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch

from src.config.compose import list_experiments
from src.config.instantiate import instantiate
from tests.helpers import (
    SHARED_FIXTURES,
    composed,
    covering_subset,
    is_slow_experiment,
    needs_fixtures,
    run_experiment,
    tiny_overrides,
)

EXPERIMENTS = list_experiments()
# Paper-scale experiments run fast_dev_run in the slow suite; every experiment is built in the default one.
FAST_DEV_RUN = [pytest.param(e, marks=pytest.mark.slow) if is_slow_experiment(e) else e for e in EXPERIMENTS]
# Paper-scale grids are built in full by the slow tests; the default ones build a covering subset of them.
BUILT_BY_DEFAULT = set(covering_subset([e for e in EXPERIMENTS if is_slow_experiment(e)]))
BUILD = [
    pytest.param(e, marks=pytest.mark.slow) if is_slow_experiment(e) and e not in BUILT_BY_DEFAULT else e
    for e in EXPERIMENTS
]


def _skip_without_shared(experiment: str) -> None:
    if needs_fixtures(experiment) and not SHARED_FIXTURES.is_dir():
        pytest.skip(f"{experiment} needs the reference fixtures in {SHARED_FIXTURES}")


@pytest.mark.parametrize("experiment", BUILD)
@pytest.mark.filterwarnings("ignore:.*RANDOM weights.*")
@pytest.mark.filterwarnings("ignore:.*non-meta parameter in the checkpoint to a meta parameter.*")
def test_every_experiment_builds(experiment: str, runs_dir: Path, required_values: dict[str, str]) -> None:
    """Compose with tiny data and build the DataModule and the LightningModule (networks included).

    Paper-scale experiments (their paper's ``slow`` globs) build on the ``meta`` device: the same code path
    and parameter shapes, without allocating and initialising full-size recognizers (their runs are slow
    tests)."""
    _skip_without_shared(experiment)
    cfg = composed(experiment, tiny_overrides(experiment, runs_dir, required_values))
    datamodule = instantiate(cfg.datamodule)
    datamodule.setup("fit" if cfg.train else "test")
    with torch.device("meta") if is_slow_experiment(experiment) else contextlib.nullcontext():
        model = instantiate(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0 or not cfg.train


@pytest.mark.parametrize("experiment", FAST_DEV_RUN)
@pytest.mark.filterwarnings("ignore:.*RANDOM weights.*")
def test_fast_dev_run_every_experiment(
    experiment: str, runs_dir: Path, required_values: dict[str, str]
) -> None:
    _skip_without_shared(experiment)
    overrides = tiny_overrides(experiment, runs_dir, required_values, ["trainer.fast_dev_run=true"])
    task = "train" if composed(experiment, overrides).train else "eval"  # evaluation-only experiments
    result = run_experiment(experiment, overrides, task=task)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert any(key.startswith("test/") for key in summary)
