"""Two-process CPU DDP (gloo) of training built on frozen parts, while DDP synchronises only the trained part
(the frozen ones are left out of DDP): the Inspector's auto-thresholder attacks its frozen detector (PGD) in
every training and validation step and reconstructs through its frozen reconstructor; PRO-Face C's client
injects features into its frozen server, and its verification table gathered from both ranks equals the one
a single process computes from the same checkpoint; iFADIT's flow trains on its frozen phase-1 networks, and
its per-image evaluation keys make the table gathered from both ranks the single process's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli, run_dir_from_output, run_experiment, tiny_overrides

pytestmark = pytest.mark.ddp
EXPERIMENT = "inspector/demo_synthetic/stage3_autothresh"
COMPENSATION = "proface_c/celeba_ir101"
FLOW = "ifadit/phase2_ffhq"


def test_a_frozen_parts_stage_trains_under_two_process_ddp(runs_dir: Path) -> None:
    limits = ["trainer.limit_train_batches=2", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]
    overrides = tiny_overrides(
        EXPERIMENT, runs_dir, extra=["trainer=ddp_cpu", "trainer.max_epochs=1", *limits]
    )
    run_dir = run_dir_from_output(run_cli("src.train", [f"experiment={EXPERIMENT}", *overrides]))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0.0 <= summary["test/acc_mean"] <= 1.0 and 0.0 <= summary["val/acc_mean"] <= 1.0, summary


def test_a_client_against_a_frozen_server_trains_under_ddp_and_scores_every_pair_once(runs_dir: Path) -> None:
    limits = ["trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=0"]
    overrides = tiny_overrides(COMPENSATION, runs_dir, extra=["trainer=ddp_cpu", *limits])
    run_dir = run_dir_from_output(run_cli("src.train", [f"experiment={COMPENSATION}", *overrides]))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    ddp = json.loads((run_dir / "summary.json").read_text())
    checkpoint = next((run_dir / "checkpoints").glob("*.ckpt"))
    single = tiny_overrides(COMPENSATION, runs_dir, extra=[f"ckpt_path={checkpoint}"])
    evaluated = run_experiment(COMPENSATION, single, task="eval")  # one process: this one
    one = json.loads((evaluated.run_dir / "summary.json").read_text())
    table = {k: v for k, v in ddp.items() if k.startswith("test/") and "/transmission/" not in k}
    assert len(table) == 27  # clear + 4 obfuscations x 2 methods, each on 2 sets and their mean
    assert table == pytest.approx({k: one[k] for k in table}), "DDP gathered other pairs than one process"


def test_a_flow_on_frozen_networks_trains_under_ddp_and_evaluates_as_one_process(runs_dir: Path) -> None:
    limits = ["trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=0"]
    overrides = tiny_overrides(FLOW, runs_dir, extra=["trainer=ddp_cpu", *limits])
    run_dir = run_dir_from_output(run_cli("src.train", [f"experiment={FLOW}", *overrides]))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    ddp = json.loads((run_dir / "summary.json").read_text())
    checkpoint = next((run_dir / "checkpoints").glob("*.ckpt"))
    single = tiny_overrides(FLOW, runs_dir, extra=[f"ckpt_path={checkpoint}"])
    one = json.loads((run_experiment(FLOW, single, task="eval").run_dir / "summary.json").read_text())
    table = {k: v for k, v in ddp.items() if k.startswith("test/") and isinstance(v, float)}
    assert {"test/recovered/psnr", "test/identity/encoder/wrong", "test/detection/detected"} <= set(table)
    assert table == pytest.approx({k: one[k] for k in table}, rel=1e-4, abs=1e-5, nan_ok=True)
