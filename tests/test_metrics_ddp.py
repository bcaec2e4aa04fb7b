"""DDP sync of the metrics: 2 gloo processes with uneven shards (13 and 20 samples) must reproduce the
single-process values over all 33 samples, on every rank (``docs/metrics.md``, "Distributed evaluation").

Every ``torchmetrics.Metric`` class defined in ``src/metrics`` is covered, plus the evaluation collector
(:class:`src.evaluation.collector.TensorCollector`); :func:`test_every_metric_class_is_covered` fails when a
new one is added without a case here. Variants named ``*_rank1_only`` see no data on rank 0 (the empty-rank
placeholder path of :class:`src.metrics.gather.GatherMetric`): their gathered tensors must keep the dtype and
trailing shape of the data (long labels, bool flags, ``[N, D]`` embeddings).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchmetrics import Metric

import src.metrics
from src.evaluation.collector import TensorCollector
from src.metrics import MAE, MSE, PSNR, SSIM, EmbeddingCollector
from src.metrics.detection import DetectionMetrics
from src.metrics.fid import FID
from src.metrics.image_quality import MSSSIM
from src.metrics.impersonation import ImpersonationSuccessRate
from src.metrics.perceptual import LPIPS, STLPIPS
from src.metrics.robustness import RejectionAwareAccuracy
from src.metrics.verification import ProtectionSuccessRate, VerificationMetrics

pytestmark = [pytest.mark.ddp, pytest.mark.timeout(120)]

WORLD_SIZE = 2
SHARDS = {0: (0, 13), 1: (13, 33)}  # uneven on purpose
BATCH = {0: 5, 1: 7}  # uneven batch sizes too: rank 0 updates 5+5+3, rank 1 updates 7+7+6
N = 33
PSR_THRESHOLD = 0.1

#: Every Metric class of src/metrics with a DDP case below (the coverage test compares with the package).
COVERED = {
    "PSNR",
    "SSIM",
    "MSSSIM",
    "MSE",
    "MAE",
    "LPIPS",
    "STLPIPS",
    "EmbeddingCollector",
    "VerificationMetrics",
    "ProtectionSuccessRate",
    "DetectionMetrics",
    "RejectionAwareAccuracy",
    "ImpersonationSuccessRate",
    "FID",
}


class _Features(torch.nn.Module):
    """A fixed random conv net → 6-d features: FID's statistics without the Inception weights."""

    num_features = 6

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.conv = torch.nn.Conv2d(3, 6, kernel_size=3, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x)).mean(dim=(2, 3))


def _data() -> dict[str, torch.Tensor]:
    """All 33 samples, identical in every process (fixed generator)."""
    g = torch.Generator().manual_seed(1234)
    target = torch.rand(N, 3, 24, 28, generator=g)
    preds = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    preds[20] = target[20]  # an identical pair: PSNR inf, capped to 100 dB by the class
    pair_index = torch.randperm(N, generator=g)  # global pair numbers, not in shard order
    video = torch.arange(N) // 3  # video 4 = rows 12..14 straddles the two ranks
    big_target = torch.rand(N, 3, 64, 64, generator=g)  # LPIPS / ST-LPIPS trunks need more than 24 px
    big_preds = (big_target + 0.1 * torch.randn(big_target.shape, generator=g)).clamp(0, 1)
    return {
        "preds": preds,
        "target": target,
        "big_preds": big_preds,
        "big_target": big_target,
        "emb": torch.randn(N, 16, generator=g),
        "labels": torch.randint(0, 5, (N,), generator=g),
        "scores": torch.randn(N, generator=g, dtype=torch.float64),
        "pair_index": pair_index,
        "is_same": pair_index % 2 == 0,  # every fold (cut in index order) has genuine pairs
        "det_scores": torch.rand(N, generator=g),
        "det_labels": video % 2,
        "video": video,
    }


def _metrics() -> dict[str, Metric]:
    """One fresh instance per DDP case (the ``*_rank1_only`` ones are fed only on rank 1)."""
    return {
        "psnr": PSNR(),
        "ssim": SSIM(),
        "msssim": MSSSIM(weights=(0.4, 0.6)),  # 2 scales: 24 x 28 images are large enough
        "lpips": LPIPS(net="alex", random_backbone=True),  # no trunk weights offline: the flagged random one
        "stlpips": STLPIPS(net="alex"),
        "mse": MSE(),
        "mae": MAE(),
        "collected": EmbeddingCollector(),
        "verification": VerificationMetrics(fars=(0.1, 0.5), num_folds=3),
        "psr": ProtectionSuccessRate(threshold=PSR_THRESHOLD),
        "detection": DetectionMetrics(video_level=True),
        "psnr_pooled": PSNR(reduction="pooled"),
        "tensors": TensorCollector(["emb", "labels", "is_same"]),
        "rejection": RejectionAwareAccuracy(),
        "impersonation": ImpersonationSuccessRate(threshold=0.2),
        "fid": FID(feature=_Features()),
        "psnr_rank1_only": PSNR(),
        "collected_rank1_only": EmbeddingCollector(),
        "verification_rank1_only": VerificationMetrics(fars=(0.1,), num_folds=None),
        "psr_rank1_only": ProtectionSuccessRate(threshold=PSR_THRESHOLD),
        "detection_rank1_only": DetectionMetrics(video_level=True),
        "tensors_rank1_only": TensorCollector(["emb", "labels", "is_same"]),
        "rejection_rank1_only": RejectionAwareAccuracy(),
    }


def _update(name: str, metric: Metric, d: dict[str, torch.Tensor], idx: torch.Tensor) -> None:
    """Feed rows ``idx`` of the data to the metric named ``name``."""
    kind = name.removesuffix("_rank1_only")
    if kind in ("psnr", "psnr_pooled", "ssim", "msssim", "mse", "mae"):
        metric.update(d["preds"][idx], d["target"][idx])
    elif kind in ("lpips", "stlpips"):
        metric.update(d["big_preds"][idx], d["big_target"][idx])
    elif kind == "collected":
        metric.update(d["emb"][idx], d["labels"][idx])
    elif kind == "verification":
        metric.update(d["scores"][idx], d["is_same"][idx], index=d["pair_index"][idx])
    elif kind == "psr":
        metric.update(d["scores"][idx])
    elif kind == "detection":
        metric.update(d["det_scores"][idx], d["det_labels"][idx], video_idx=d["video"][idx])
    elif kind == "tensors":
        metric.update(emb=d["emb"][idx], labels=d["labels"][idx], is_same=d["is_same"][idx])
    elif kind == "rejection":
        metric.update(d["is_same"][idx], d["labels"][idx] == 0)
    elif kind == "impersonation":
        metric.update(d["scores"][idx])
    elif kind == "fid":
        metric.update(d["target"][idx], real=True)
        metric.update(d["preds"][idx], real=False)
    else:
        raise AssertionError(f"no update rule for {name}")


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    # rank 0 computes the *_rank1_only metrics without an update: torchmetrics warns, as intended here
    warnings.filterwarnings("ignore", message=".*called before the ``update``.*")
    warnings.filterwarnings("ignore", message=".*RANDOM alex trunk.*")  # LPIPS(random_backbone=True)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        d = _data()
        metrics = _metrics()
        lo, hi = SHARDS[rank]
        for idx in torch.arange(lo, hi).split(BATCH[rank]):
            for name, metric in metrics.items():
                if rank == 1 or not name.endswith("_rank1_only"):
                    _update(name, metric, d, idx)
        results = {name: metric.compute() for name, metric in metrics.items()}
        results["local_count_after_compute"] = int(
            metrics["psnr"].count
        )  # states are un-synced after compute()
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _assert_same(got: object, expected: object, where: str, rtol: float = 1e-6) -> None:
    """Recursive equality for the metric outputs (tensors to ``rtol``, floats to 1e-12, NaN == NaN)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), where
        for key in expected:
            _assert_same(got[key], expected[key], f"{where}[{key!r}]", rtol)
    elif isinstance(expected, tuple | list):
        assert len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _assert_same(g, e, f"{where}[{i}]", rtol)
    elif isinstance(expected, torch.Tensor):
        torch.testing.assert_close(got, expected, rtol=rtol, atol=0, equal_nan=True, msg=where)
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-12, nan_ok=True), where
    else:
        assert got == expected, where


@pytest.mark.filterwarnings("ignore:.*called before the ``update``.*")
@pytest.mark.filterwarnings("ignore:.*RANDOM alex trunk.*")
def test_metrics_sync_over_uneven_shards(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "pg_init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True)

    d = _data()
    expected = {}
    for name, metric in _metrics().items():  # one process, the same rows in one go
        _update(name, metric, d, torch.arange(13 if name.endswith("_rank1_only") else 0, N))
        expected[name] = metric.compute()

    for rank in range(WORLD_SIZE):
        res = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for name in expected:
            # conv networks may pick other kernels for other batch sizes / thread counts: 1e-5 there
            rtol = 1e-5 if name in ("lpips", "stlpips", "fid") else 1e-6
            _assert_same(res[name], expected[name], f"rank {rank}: {name}", rtol)
        lo, hi = SHARDS[rank]
        assert res["local_count_after_compute"] == hi - lo
    # a few properties the equality does not show
    emb, labels = expected["collected"]
    torch.testing.assert_close(emb, d["emb"], rtol=0, atol=0)  # rank 0's samples, then rank 1's
    assert torch.equal(labels, d["labels"]) and labels.dtype == torch.long
    assert torch.isfinite(expected["psnr"])  # the identical pair (inf dB) is capped, not averaged as inf
    assert 0 < float(expected["psr"]) < 1 and 0 < expected["verification"]["auc"] < 1
    assert 0 < float(expected["impersonation"]) < 1 and float(expected["fid"]) > 0
    assert "video_auc" in expected["detection"]
    # the evaluation collector keeps dtypes and shapes when rank 0 contributed nothing
    for rank in range(WORLD_SIZE):
        res = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)["tensors_rank1_only"]
        assert res["emb"].shape == (N - 13, 16) and res["emb"].dtype == torch.float32
        assert res["labels"].dtype == torch.long and res["is_same"].dtype == torch.bool
        assert torch.equal(res["labels"], d["labels"][13:]) and torch.equal(res["is_same"], d["is_same"][13:])


def test_every_metric_class_is_covered() -> None:
    """Each public, concrete Metric subclass defined in a module of src/metrics has a DDP case above."""
    found = set()
    for info in pkgutil.iter_modules(src.metrics.__path__, prefix="src.metrics."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Metric)
                and obj.__module__ == module.__name__
                and not name.startswith("_")
                and not inspect.isabstract(obj)
            ):
                found.add(name)
    missing = found - COVERED
    assert not missing, f"add a DDP case to tests/test_metrics_ddp.py for {sorted(missing)}"
    assert {"PSNR", "VerificationMetrics"} <= found  # the scan itself works
