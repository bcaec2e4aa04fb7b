"""DDP sync of the metrics: 2 gloo processes with uneven shards (13 and 20 samples) must reproduce the
single-process values over all 33 samples, on every rank (framework_notes.md §5.2)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from src.metrics import PSNR, SSIM, EmbeddingCollector

pytestmark = [pytest.mark.ddp, pytest.mark.timeout(120)]

WORLD_SIZE = 2
SHARDS = {0: (0, 13), 1: (13, 33)}  # uneven on purpose
BATCH = {0: 5, 1: 7}  # uneven batch sizes too: rank 0 updates 5+5+3, rank 1 updates 7+7+6


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """All 33 samples, identical in every process (fixed generator)."""
    g = torch.Generator().manual_seed(1234)
    target = torch.rand(33, 3, 24, 28, generator=g)
    preds = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    preds[20] = target[20]  # an identical pair: PSNR inf, capped to 100 dB by the class
    emb = torch.randn(33, 16, generator=g)
    labels = torch.randint(0, 5, (33,), generator=g)
    return preds, target, emb, labels


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    # rank 0 computes the *_rank1_only metrics without an update: torchmetrics warns, as intended here
    warnings.filterwarnings("ignore", message=".*called before the ``update``.*")
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        preds, target, emb, labels = _data()
        psnr_m, ssim_m, collector = PSNR(), SSIM(), EmbeddingCollector()
        psnr_rank1_only, collector_rank1_only = PSNR(), EmbeddingCollector()  # rank 0 sees no data
        lo, hi = SHARDS[rank]
        for idx in torch.arange(lo, hi).split(BATCH[rank]):
            psnr_m.update(preds[idx], target[idx])
            ssim_m.update(preds[idx], target[idx])
            collector.update(emb[idx], labels[idx])
            if rank == 1:
                psnr_rank1_only.update(preds[idx], target[idx])
                collector_rank1_only.update(emb[idx], labels[idx])
        results = {
            "psnr": psnr_m.compute(),
            "ssim": ssim_m.compute(),
            "collected": collector.compute(),
            "psnr_rank1_only": psnr_rank1_only.compute(),
            "collected_rank1_only": collector_rank1_only.compute(),
            "local_count_after_compute": int(psnr_m.count),  # states are un-synced after compute()
        }
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.filterwarnings("ignore:.*called before the ``update``.*")
def test_metrics_sync_over_uneven_shards(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "pg_init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True)

    preds, target, emb, labels = _data()
    expected_psnr = PSNR()
    expected_psnr.update(preds, target)
    expected_ssim = SSIM()
    expected_ssim.update(preds, target)
    expected_psnr_tail = PSNR()
    expected_psnr_tail.update(preds[13:], target[13:])

    for rank in range(WORLD_SIZE):
        res = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(res["psnr"], expected_psnr.compute(), rtol=1e-6, atol=0)
        torch.testing.assert_close(res["ssim"], expected_ssim.compute(), rtol=1e-6, atol=0)
        torch.testing.assert_close(res["psnr_rank1_only"], expected_psnr_tail.compute(), rtol=1e-6, atol=0)
        got_emb, got_labels = res["collected"]
        assert got_emb.shape == (33, 16)
        torch.testing.assert_close(got_emb, emb, rtol=0, atol=0)  # rank 0's samples, then rank 1's
        assert torch.equal(got_labels, labels)
        tail_emb, tail_labels = res["collected_rank1_only"]
        torch.testing.assert_close(tail_emb, emb[13:], rtol=0, atol=0)
        assert torch.equal(tail_labels, labels[13:]) and tail_labels.dtype == torch.long
        lo, hi = SHARDS[rank]
        assert res["local_count_after_compute"] == hi - lo
    assert torch.isfinite(
        expected_psnr.compute()
    )  # the identical pair (inf dB) is capped, not averaged as inf
