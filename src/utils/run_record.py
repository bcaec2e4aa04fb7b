"""The plain local record every run leaves behind, whatever W&B does.

``runs/<experiment>/<run_id>/`` holds ``config.yaml`` (resolved), ``overrides.txt``, ``meta.json`` (git
commit and dirty flag, package versions, seed, determinism, devices, start/end time, status, and
``command``: the command that runs the same configuration again, ``python -m src.train experiment=...
<overrides>``, whatever started it — the command line, the demo or a sweep — with ``argv`` the process's own
command line), ``metrics.csv`` (Lightning's CSVLogger), ``summary.json`` (final metrics), ``data.json``
(what the DataModule loaded and skipped), ``results.md``/``results.csv`` (the printed table) and
``checkpoints/``. ``summary.json`` and ``meta.json`` count training progress as ``epochs_completed``: full
epochs done, as the console counts them (3 after ``epoch 3/6``).

The run id and directory are chosen once, by the launching process, and exported through environment
variables so that processes re-launched by DDP (which re-execute the command line) write to the same run.
Under SLURM (and torchrun) every rank is started separately and nothing is exported between them: each rank
derives the same id from the job (``slurm-<SLURM_JOB_ID>``) unless the command names ``run.id`` / ``run.dir``;
``meta.json``'s ``slurm`` entry records the job (id, nodes, tasks per node, node list, restarts).
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import shlex
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.config.errors import ConfigError
from src.config.secrets import RunSecrets

ENV_RUN_DIR = "PROFACE_RUN_DIR"
ENV_RUN_ID = "PROFACE_RUN_ID"
PACKAGES = (
    "torch",
    "torchvision",
    "pytorch-lightning",
    "torchmetrics",
    "wandb",
    "omegaconf",
    "albumentations",
    "timm",
    "kornia",
    "lpips",
    "pytorch-msssim",
    "numpy",
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def now_iso() -> str:
    """The current UTC time as an ISO-8601 string."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A sortable, collision-resistant run id: ``YYYYmmdd-HHMMSS-xxxxxx``."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def is_launcher_process() -> bool:
    """True in the process that starts a run (global rank 0 before any process group exists)."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return int(os.environ.get("NODE_RANK", 0)) == 0 and int(os.environ.get("LOCAL_RANK", 0)) == 0


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Commit, branch and dirty flag of the code that ran (``None`` outside a git checkout)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "branch": git("rev-parse", "--abbrev-ref", "HEAD"), "dirty": bool(status)}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide a run's numbers."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (a crash never leaves a half-written record)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically: under SLURM the other ranks may read it (a resume check) meanwhile."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON record, naming the file on failure."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"run record file missing: {path}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"run record file is not valid JSON: {path}: {exc}") from exc


def rerun_command(task: str, experiment: str, overrides: Sequence[str]) -> str:
    """The shell command, run from the project root, that runs this configuration again (overrides as given;
    hide secrets in them first). ``run.dir=`` / ``run.id=`` (a sweep point's folder, say) name this run's own
    directory and are left out: running the command again makes a new run, never one into a used folder."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in _OWN_RUN_KEYS]
    return shlex.join([interpreter(), "-m", f"src.{task}", f"experiment={experiment}", *kept])


def interpreter() -> str:
    """The Python that ran this, as a user pastes it from the project root: ``.venv/bin/python`` for the
    project's environment (a bare ``python`` may be another one, without the pinned stack)."""
    executable = Path(sys.executable)
    try:
        return executable.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(executable)


_OWN_RUN_KEYS = ("run.dir", "run.id")


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # also a W&B run id and a folder name


class RunDirectoryError(ConfigError, FileNotFoundError):
    """``resume=`` names something that is not a run directory (a configuration error, exit 2)."""


def resolve_resume(target: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(run_dir, checkpoint)`` for ``resume=<run dir | checkpoint file>``."""
    path = Path(target).expanduser().resolve()
    if path.is_file():
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        checkpoint = path
    else:
        run_dir, checkpoint = path, path / "checkpoints" / "last.ckpt"
    if not (run_dir / "meta.json").is_file():
        raise RunDirectoryError(f"resume={target}: {run_dir} is not a run directory (no meta.json)")
    if not checkpoint.is_file():
        raise RunDirectoryError(f"resume={target}: checkpoint not found: {checkpoint}")
    return run_dir, checkpoint


@dataclass
class RunRecord:
    """One run's identity and directory, and the writers of its record files."""

    run_id: str
    run_dir: Path
    experiment: str
    task: str
    resumed: bool = False

    @property
    def checkpoint_dir(self) -> Path:
        """Where ModelCheckpoint writes ``last.ckpt`` and the best checkpoint."""
        return self.run_dir / "checkpoints"

    @classmethod
    def open(cls, cfg: DictConfig, task: str) -> RunRecord:
        """Choose (launcher) or adopt (DDP child) the run id and directory, and export them."""
        experiment = str(cfg.experiment)
        resumed = cfg.get("resume") is not None
        if not is_launcher_process() and os.environ.get(ENV_RUN_DIR) and os.environ.get(ENV_RUN_ID):
            run_dir, run_id = Path(os.environ[ENV_RUN_DIR]), os.environ[ENV_RUN_ID]
        elif resumed:
            run_dir, _ = resolve_resume(cfg.resume)
            run_id = read_json(run_dir / "meta.json").get("run_id")
            if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
                raise RunDirectoryError(f"{run_dir / 'meta.json'}: run_id {run_id!r} is not a valid run id")
        else:
            run_id = cfg.run.id or _cluster_run_id() or new_run_id()
            base = Path(cfg.paths.runs_dir) / experiment
            run_dir = Path(cfg.run.dir) if cfg.run.dir else base / run_id
            if is_launcher_process() and (run_dir / "meta.json").is_file():
                raise RunDirectoryError(
                    f"{run_dir} already holds a run (run id '{run_id}' again, e.g. a second run in the same "
                    f"SLURM job): give this run its own run.id=..., or resume={run_dir} to continue that one"
                )
        run_dir = run_dir.resolve()
        os.environ[ENV_RUN_DIR], os.environ[ENV_RUN_ID] = str(run_dir), run_id
        record = cls(run_id, run_dir, experiment, task, resumed)
        if is_launcher_process():
            record.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        return record

    def write_start(self, cfg: DictConfig, overrides: list[str], secrets: RunSecrets | None = None) -> None:
        """``config.yaml``, ``overrides.txt`` and the opening ``meta.json`` (launcher only), secrets hidden.

        Secret values appear as ``***``; ``meta.json`` keeps a salted fingerprint of each (``secrets``) so
        a resume can check that the secret given again is the same.
        """
        if not is_launcher_process():
            return
        secrets = secrets or RunSecrets()
        write_text(self.run_dir / "config.yaml", OmegaConf.to_yaml(secrets.config(cfg), resolve=True))
        write_text(self.run_dir / "overrides.txt", "".join(f"{o}\n" for o in secrets.items(overrides)))
        meta_path = self.run_dir / "meta.json"
        meta = read_json(meta_path) if self.resumed and meta_path.is_file() else {}
        trainer = cfg.trainer
        meta.update(
            {
                "run_id": self.run_id,
                "experiment": self.experiment,
                "task": meta.get("task", self.task),
                "status": "running",
                "seed": int(cfg.seed),
                "deterministic": trainer.get("deterministic"),
                "accelerator": trainer.get("accelerator"),
                "devices": OmegaConf.to_container(trainer, resolve=True).get("devices"),
                "num_nodes": trainer.get("num_nodes"),
                "strategy": trainer.get("strategy"),
                "precision": str(trainer.get("precision")),
                "command": rerun_command(self.task, self.experiment, secrets.items(overrides)),
                "argv": secrets.items([sys.executable, *sys.argv]),
                "cwd": os.getcwd(),
                "git": git_state(),
                "packages": package_versions(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "hostname": socket.gethostname(),
                "sweep": OmegaConf.to_container(cfg.sweep, resolve=True) if "sweep" in cfg else None,
                "slurm": slurm_job(),
            }
        )
        if secrets.stored:
            meta["secrets"] = {**meta.get("secrets", {}), **secrets.stored}
        meta.setdefault("start_time", now_iso())
        if self.resumed:
            meta.setdefault("resumed_at", []).append(now_iso())
        for stale in ("end_time", "error", "stop"):
            meta.pop(stale, None)
        write_json(meta_path, meta)

    def update_meta(self, **fields: Any) -> None:
        """Add fields to ``meta.json`` (launcher only)."""
        if not is_launcher_process():
            return
        path = self.run_dir / "meta.json"
        meta = read_json(path) if path.is_file() else {}
        meta.update(fields)
        write_json(path, meta)

    def write_data(self, description: dict[str, Any]) -> None:
        """``data.json``: counts and skipped files reported by the DataModule."""
        if is_launcher_process():
            write_json(self.run_dir / "data.json", description)

    def write_summary(self, metrics: dict[str, Any], status: str, **extra: Any) -> None:
        """``summary.json``: final metrics (flat ``stage/name`` keys) plus status fields."""
        if not is_launcher_process():
            return
        summary = {"run_id": self.run_id, "experiment": self.experiment, "status": status, **extra, **metrics}
        write_json(self.run_dir / "summary.json", summary)

    def finish(self, status: str, error: str | None = None, **extra: Any) -> None:
        """Close ``meta.json`` with the end time and final status; stop exporting the run to children."""
        fields: dict[str, Any] = {"status": status, "end_time": now_iso(), **extra}
        if error:
            fields["error"] = error
        self.update_meta(**fields)
        if os.environ.get(ENV_RUN_DIR) == str(self.run_dir):
            os.environ.pop(ENV_RUN_DIR, None)
            os.environ.pop(ENV_RUN_ID, None)


def _cluster_run_id() -> str | None:
    """On SLURM/torchrun every node derives the same id from the job, so multi-node runs share one record."""
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        return f"slurm-{job}"
    elastic = os.environ.get("TORCHELASTIC_RUN_ID")
    return f"torchrun-{elastic}" if elastic and elastic != "none" else None


_SLURM_FIELDS = {
    "job_id": "SLURM_JOB_ID",
    "job_name": "SLURM_JOB_NAME",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "partition": "SLURM_JOB_PARTITION",
    "nodes": "SLURM_NNODES",
    "tasks": "SLURM_NTASKS",
    "tasks_per_node": "SLURM_NTASKS_PER_NODE",
    "node_list": "SLURM_JOB_NODELIST",
    "restart_count": "SLURM_RESTART_COUNT",
}
_SLURM_NUMBERS = ("nodes", "tasks", "tasks_per_node", "restart_count")


def slurm_job() -> dict[str, Any] | None:
    """The SLURM job this run is part of (None outside SLURM), for ``meta.json``: id, name, array task,
    partition, nodes, tasks (per node), node list, restarts, who requeues it (``PROFACE_REQUEUE_OWNER``)."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    job: dict[str, Any] = {}
    for field, variable in _SLURM_FIELDS.items():
        value = os.environ.get(variable)
        if value is None and field == "node_list":
            value = os.environ.get("SLURM_NODELIST")
        if value is None:
            continue
        job[field] = int(value) if field in _SLURM_NUMBERS and value.isdigit() else value
    job["requeue_owner"] = os.environ.get("PROFACE_REQUEUE_OWNER") or "run"
    return job
