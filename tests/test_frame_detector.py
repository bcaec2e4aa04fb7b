"""FrameDetectorModule end to end on a miniature preprocessed FF++ index: checkpoint selection reads the
validation split only, the test reports frame/video metrics with failures scored 0.5 and counted, SAM's
manual loop steps and schedules, and the run record gets the prediction tables and curves."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from sklearn.metrics import roc_auc_score

from src.datamodules.ffpp import FFPPFramesDataModule
from src.lightning_modules.frame_detector import FrameDetectorModule
from src.networks.detectors import build_detector_net
from src.optim.sam import SAM
from src.optim.schedules import linear_decay
from tests.fixtures_datasets import make_preprocessed_frames
from tests.helpers import run_experiment, tiny_overrides


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_preprocessed_frames(tmp_path_factory.mktemp("frames"), "ffpp")


class NoTestDuringFit(FFPPFramesDataModule):
    """Fails the run if anything asks for test data while fitting."""

    fitting = False

    def test_dataloader(self):  # type: ignore[no-untyped-def]
        assert not self.fitting, "the test split was read during fit"
        return super().test_dataloader()


def _trainer(tmp_path: Path, **kwargs) -> pl.Trainer:  # type: ignore[no-untyped-def]
    options = dict(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        max_epochs=2,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(**options)


def test_selection_reads_validation_only(frames: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    dm = NoTestDuringFit(root=str(frames), image_size=32, batch_size=4)
    test_reads = []
    module = FrameDetectorModule(
        build_detector_net("small_cnn"), functools.partial(torch.optim.Adam, lr=1e-3)
    )
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val/frame_auc", mode="max")
    trainer = _trainer(tmp_path, callbacks=[checkpoint])
    dm.fitting = True
    original = FFPPFramesDataModule.test_dataloader
    try:
        FFPPFramesDataModule.test_dataloader = lambda self: test_reads.append(1) or original(self)  # type: ignore[method-assign]
        trainer.fit(module, datamodule=dm)
    finally:
        FFPPFramesDataModule.test_dataloader = original  # type: ignore[method-assign]
    dm.fitting = False
    assert not test_reads
    assert checkpoint.best_model_path and "val/frame_auc" in trainer.callback_metrics
    assert {"val/video_auc", "val/frame_ap"} <= set(trainer.callback_metrics)


def test_test_scores_failures_and_counts_them(frames: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    dm = FFPPFramesDataModule(root=str(frames), image_size=32, batch_size=4)
    module = FrameDetectorModule(build_detector_net("small_cnn"), functools.partial(torch.optim.Adam))
    metrics = _trainer(tmp_path).test(module, datamodule=dm, verbose=False)[0]
    failures = pd.read_csv(frames / "failures.csv", dtype=str, keep_default_na=False)
    test_failures = failures[failures["split"] == "test"]
    assert metrics["test/failed_frames"] == (test_failures["frame_index"] != "").sum() == 2
    assert metrics["test/failed_videos"] == 1
    index = pd.read_csv(frames / "index.csv")
    test_rows = index[index["split"] == "test"]
    assert metrics["test/n_faces"] == len(test_rows)
    assert metrics["test/n_frames"] == len(test_rows[test_rows["face_index"] == 0]) + 2
    assert metrics["test/n_videos"] == test_rows["video_uid"].nunique() + 1
    # the video AUC again from the stored per-frame table, independently (pandas + scikit-learn)
    table = module.last_test.frames
    videos = table.groupby("video").agg(score=("score", "mean"), label=("label", "first"))
    assert metrics["test/video_auc"] == pytest.approx(
        roc_auc_score(videos["label"], videos["score"]), abs=1e-6
    )
    assert (table.loc[table["failed"], "score"] == 0.5).all()
    assert {"test/Deepfakes/video_auc", "test/FaceSwap/video_auc"} <= set(metrics)


def test_sam_training_counts_steps_and_decays_per_epoch(frames: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    dm = FFPPFramesDataModule(root=str(frames), image_size=32, batch_size=4)
    sam = functools.partial(SAM, base_optimizer=functools.partial(torch.optim.SGD), lr=0.01, momentum=0.9)
    module = FrameDetectorModule(
        build_detector_net("small_cnn"),
        sam,
        scheduler=functools.partial(linear_decay, total_epochs=2, decay_start=0.5),
    )
    before = {k: p.detach().clone() for k, p in module.named_parameters()}
    trainer = _trainer(tmp_path, max_epochs=2, limit_val_batches=0)
    trainer.fit(module, datamodule=dm)
    steps_per_epoch = len(dm.datasets["train"]) // 4
    assert trainer.global_step == 2 * steps_per_epoch  # one counted step per SAM update (two passes)
    assert any(not torch.equal(before[k], p) for k, p in module.named_parameters())
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.0  # decayed to zero at the last epoch


def test_run_record_has_tables_and_curves(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    experiment = "detection_baselines/xception/ffpp_c23"
    result = run_experiment(experiment, tiny_overrides(experiment, runs, extra=["trainer.max_epochs=1"]))
    run_dir = result.run_dir
    for name in ("test_frames.csv", "test_videos.csv", "test_per_method.csv"):
        assert (run_dir / "predictions" / name).is_file(), name
    assert (run_dir / "plots" / "test" / "roc.png").is_file()
    assert (run_dir / "plots" / "test" / "precision_recall.png").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test/failed_videos"] == 1 and 0.0 <= summary["test/video_auc"] <= 1.0
    data = json.loads((run_dir / "data.json").read_text())
    assert data["test"]["failed_frames"] == 2 and data["test"]["failed_videos"] == 1
