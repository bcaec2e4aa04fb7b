"""Test environment: offline, W&B disabled, run records and torch caches in temporary folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ["WANDB_SILENT"] = "true"
os.environ.setdefault("TORCH_HOME", tempfile.mkdtemp(prefix="torch_home_"))
os.environ.setdefault("PROFACE_RUNS", tempfile.mkdtemp(prefix="lab_runs_"))
# Under pytest-xdist each worker gets its share of the cores (torch here, and the processes tests start
# through OMP_NUM_THREADS): more threads than free cores make torch's OpenMP workers spin against each
# other, which made a 25-step CPU training 12x slower on a busy 2-core machine.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_THREADS = max(1, (os.cpu_count() or 1) // _WORKERS)
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))

import pytest  # noqa: E402  (after the environment above)
import torch  # noqa: E402

if _WORKERS > 1:
    torch.set_num_threads(_THREADS)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_run_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test inherits another's run directory or DDP rank variables."""
    for key in ("PROFACE_RUN_DIR", "PROFACE_RUN_ID", "LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """A fresh folder for run records."""
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def tiny_recognizer_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A checkpoint of the demo recognizer trained for one tiny epoch (shared by the whole session)."""
    from tests.helpers import run_experiment, tiny_overrides

    runs = tmp_path_factory.mktemp("recognizer_runs")
    result = run_experiment("demo/recognizer", tiny_overrides("demo/recognizer", runs))
    checkpoint = result.run_dir / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    return str(checkpoint)


@pytest.fixture
def required_values(tiny_recognizer_ckpt: str) -> dict[str, str]:
    """Test values for every ``???`` key any experiment may leave open."""
    return {"model.recognizer_ckpt": tiny_recognizer_ckpt, "model.recognizer.path": tiny_recognizer_ckpt}
