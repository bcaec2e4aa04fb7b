"""Shared test helpers: shrink any experiment to a few seconds of CPU work.

What a paper needs to be tiny is declared by the paper itself (``src/papers/<paper>/settings.py``).
"""

from __future__ import annotations

import atexit
import fnmatch
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.config.compose import compose
from src.papers.registry import discover, tiny_settings
from src.tasks import RunResult, run
from tests.fixtures_datasets import tiny_data_overrides

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"

# Per DataModule: overrides that make its data tiny. An experiment whose DataModule is missing here fails the
# parametrised experiment tests, so every new dataset must come with a miniature setting.
TINY_DATA: dict[str, list[str]] = {
    "src.datamodules.synthetic_faces.SyntheticFacesDataModule": [
        "datamodule.num_identities=12",
        "datamodule.train_identities=6",
        "datamodule.val_identities=3",
        "datamodule.test_identities=3",
        "datamodule.images_per_identity=4",
        "datamodule.eval_images_per_identity=3",
        "datamodule.image_size=32",
        "datamodule.batch_size=8",
        "datamodule.num_workers=0",
    ],
}

# Miniature copies of the real layouts (FFHQ, VGGFace2, CelebA, CelebA-HQ, LFW), built once per session and
# removed when the process ends (each test process builds its own: hundreds of MB a run left behind else).
TINY_DATA_ROOT = Path(tempfile.mkdtemp(prefix="lab_tiny_data_"))
atexit.register(shutil.rmtree, TINY_DATA_ROOT, ignore_errors=True)
TINY_DATA.update(tiny_data_overrides(TINY_DATA_ROOT))

PAPERS = discover()
PAPER_BY_TARGET = {target: name for name, info in PAPERS.items() for target in info.targets}

# The files papers' tiny experiments read besides the datasets (TinySettings.files), built once.
for _paper in PAPERS:
    for _relative, _build in tiny_settings(_paper).files.items():
        _build(TINY_DATA_ROOT / _relative)


def fill_placeholders(overrides: tuple[str, ...] | list[str]) -> list[str]:
    """A paper's tiny overrides with ``{tiny_data}`` and ``{fixtures}`` filled in."""
    return [
        o.replace("{tiny_data}", str(TINY_DATA_ROOT)).replace("{fixtures}", str(SHARED_FIXTURES))
        for o in overrides
    ]


def paper_tiny_overrides(paper: str, experiment: str) -> list[str]:
    """Paper ``paper``'s tiny overrides for ``experiment``: its model ones, then every matching glob's."""
    settings = tiny_settings(paper)
    found = list(settings.model)
    for pattern, overrides in settings.experiments.items():
        if fnmatch.fnmatchcase(experiment, pattern):
            found += overrides
    return fill_placeholders(found)


def _matches_any(experiment: str, field: str) -> bool:
    return any(
        fnmatch.fnmatchcase(experiment, pattern)
        for name in PAPERS
        for pattern in getattr(tiny_settings(name), field)
    )


def is_slow_experiment(experiment: str) -> bool:
    """Whether ``experiment`` runs paper-scale networks even with tiny data (its paper says so)."""
    return _matches_any(experiment, "slow")


def covering_subset(experiments: Sequence[str]) -> list[str]:
    """A few experiments that together show every path segment of ``experiments`` at every depth.

    Paper-scale experiment files come in grids (``<paper>/released/<data>/<obfuscator>/<recognizer>``: 60
    files that differ only in which value each segment picks). Building a covering subset (here 5 files: every
    dataset, obfuscator and recognizer at least once) in the default tests checks every value each axis takes;
    the slow tests build all of them. Greedy and deterministic: the file covering the most unseen
    (depth, segment) pairs first, ties by name.
    """
    remaining = sorted(experiments)
    uncovered = {(depth, part) for name in remaining for depth, part in enumerate(name.split("/"))}
    chosen: list[str] = []
    while uncovered:
        best = max(remaining, key=lambda n: len(uncovered & set(enumerate(n.split("/")))))  # first: by name
        chosen.append(best)
        remaining.remove(best)
        uncovered -= set(enumerate(best.split("/")))
    return sorted(chosen)


def needs_fixtures(experiment: str) -> bool:
    """Whether the tiny version of ``experiment`` reads the reference fixtures (``../shared/fixtures``)."""
    return _matches_any(experiment, "needs_fixtures")


TINY_TRAINER = [
    "logger=none",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
]


@functools.cache
def open_config(experiment: str) -> DictConfig:
    """An experiment composed with its ``???`` keys left open; read-only and cached, because the parametrised
    tests over every experiment file (compose, build, untrusted rebuild) all start from it."""
    config = compose(experiment, allow_missing=True).config
    OmegaConf.set_readonly(config, True)
    return config


@functools.cache
def _open_config(experiment: str) -> tuple[tuple[str, ...], tuple[str, str, bool]]:
    """(the ``???`` keys, :func:`_probe`'s answer) of an experiment composed with those keys left open."""
    config = open_config(experiment)
    probe = str(config.datamodule._target_), str(config.model._target_), "num_pairs" in config.model
    return tuple(sorted(OmegaConf.missing_keys(config))), probe


def required_keys(experiment: str) -> list[str]:
    """The ``???`` keys an experiment leaves for the command line (e.g. a checkpoint path)."""
    return list(_open_config(experiment)[0])


def model_target(experiment: str) -> str:
    """The ``_target_`` of an experiment's model (cached)."""
    return _open_config(experiment)[1][1]


@functools.cache
def _probe(experiment: str, overrides: tuple[str, ...]) -> tuple[str, str, bool]:
    """(DataModule target, model target, whether the model has ``num_pairs``) of a composed experiment
    (cached: the parametrised tests compose each experiment several times)."""
    probe = compose(experiment, list(overrides)).config
    return str(probe.datamodule._target_), str(probe.model._target_), "num_pairs" in probe.model


def tiny_overrides(
    experiment: str, runs_dir: Path, required: dict[str, str] | None = None, extra: list[str] | None = None
) -> list[str]:
    """Overrides that make ``experiment`` tiny: small data, one epoch, no W&B, records under ``runs_dir``.

    ``required`` gives values for the experiment's ``???`` keys (only those it has are used), over the
    paper's own ``TinySettings.required``. A config-group
    switch in ``extra`` (e.g. ``datamodule=lfw``) picks the miniature settings of the switched-to group.
    """
    needed = required_keys(experiment)
    paper = PAPER_BY_TARGET.get(model_target(experiment))
    defaults = dict(tiny_settings(paper).required) if paper is not None else {}
    values = {**defaults, **(required or {})}
    given = {key: fill_placeholders([value])[0] for key, value in values.items() if key in needed}
    if set(needed) - set(given):
        raise AssertionError(f"{experiment} requires {sorted(set(needed) - set(given))}: give test values")
    groups = [o for o in extra or [] if "=" in o and not o.startswith("+") and "." not in o.split("=")[0]]
    switches = (*groups, *(f"{k}={v}" for k, v in given.items()))
    # without group switches or ??? values the open composition already answers (one compose fewer)
    target, probed_model, has_num_pairs = (
        _probe(experiment, switches) if switches else _open_config(experiment)[1]
    )
    if target not in TINY_DATA:
        raise AssertionError(
            f"no miniature data settings for {target}: add them to tests/helpers.py TINY_DATA"
        )
    # any model that derives verification pairs from an image set: 60 pairs are enough for a tiny run
    model_extra = ["model.num_pairs=60"] if has_num_pairs else []
    paper = PAPER_BY_TARGET.get(probed_model)
    if paper is not None:
        model_extra += paper_tiny_overrides(paper, experiment)
    return [
        *groups,
        *TINY_DATA[target],
        *TINY_TRAINER,
        *model_extra,
        *(f"{k}={v}" for k, v in given.items()),
        f"paths.runs_dir={runs_dir}",
        *(o for o in extra or [] if o not in groups),
    ]


def run_experiment(experiment: str, overrides: list[str], task: str = "train") -> RunResult:
    """Compose and run in this process."""
    result = compose(experiment, overrides)
    return run(result.config, result.overrides, task=task)


def composed(experiment: str, overrides: list[str]) -> DictConfig:
    """The composed config (struct mode)."""
    return compose(experiment, overrides).config


def run_process(
    module: str, args: list[str], timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> args`` in a fresh process from the project root, whatever its exit code."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    for key in ("PROFACE_RUN_DIR", "PROFACE_RUN_ID", "LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE"):
        full_env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def run_cli(module: str, args: list[str], timeout: int = 300, env: dict[str, str] | None = None) -> str:
    """Run ``python -m <module> args`` in a fresh process from the project root; return its output."""
    proc = run_process(module, args, timeout, env)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(
            f"python -m {module} {' '.join(args)} failed ({proc.returncode}):\n{output[-6000:]}"
        )
    return output


def run_dir_from_output(output: str) -> Path:
    """The run directory a CLI run printed (``RUN_DIR=...``)."""
    lines = [line for line in output.splitlines() if line.startswith("RUN_DIR=")]
    if len(lines) != 1:
        raise AssertionError(f"expected one RUN_DIR line, got {len(lines)}:\n{output[-3000:]}")
    return Path(lines[0].split("=", 1)[1])


def to_plain(cfg: DictConfig) -> dict:
    """Resolved plain dict of a config."""
    return OmegaConf.to_container(cfg, resolve=True)
