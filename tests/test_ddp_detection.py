"""Two-process CPU DDP (gloo) of a frame detector: SBI's manual SAM steps on self-blended pairs train under
DDP, and the DDP test counts every face, frame and failure once (equal to one process on the same
checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli, run_dir_from_output, run_experiment, tiny_overrides

pytestmark = pytest.mark.ddp
EXPERIMENT = "detection_baselines/sbi/ffpp_c23"


def test_sbi_trains_and_tests_under_ddp_like_one_process(runs_dir: Path) -> None:
    overrides = tiny_overrides(EXPERIMENT, runs_dir, extra=["trainer=ddp_cpu", "trainer.max_epochs=1"])
    run_dir = run_dir_from_output(run_cli("src.train", [f"experiment={EXPERIMENT}", *overrides]))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    ddp = {
        k: v for k, v in json.loads((run_dir / "summary.json").read_text()).items() if k.startswith("test/")
    }
    assert ddp["test/failed_videos"] == 1 and ddp["test/failed_frames"] == 2

    checkpoint = json.loads((run_dir / "summary.json").read_text()).get("best_checkpoint") or str(
        run_dir / "checkpoints" / "last.ckpt"
    )
    single = run_experiment(
        EXPERIMENT,
        tiny_overrides(EXPERIMENT, runs_dir / "single", extra=[f"ckpt_path={checkpoint}"]),
        task="eval",
    )
    one = {
        k: v
        for k, v in json.loads((single.run_dir / "summary.json").read_text()).items()
        if k.startswith("test/")
    }
    assert ddp == pytest.approx(one, abs=1e-6)
