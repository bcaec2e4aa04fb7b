"""Shared test helpers: shrink any experiment to a few seconds of CPU work."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.config.compose import compose
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

# Miniature copies of the real layouts (FFHQ, VGGFace2, CelebA, CelebA-HQ, LFW), built once per session.
TINY_DATA_ROOT = Path(tempfile.mkdtemp(prefix="proface_tiny_data_"))
TINY_DATA.update(tiny_data_overrides(TINY_DATA_ROOT))
# Face-swap targets for tiny runs: the miniature CelebA images (the real ones are CelebA's frontal subsets).
TINY_SWAP_TARGETS = TINY_DATA_ROOT / "celeba" / "img_align_celeba"
# Cartoon-mask stickers for tiny runs: a miniature Google CartoonSet (RGBA PNGs + attribute CSVs).
TINY_CARTOONS = TINY_DATA_ROOT / "cartoonset"
# PRO-Face S hybridAll children 3, 4, 5: FaceShifter and SimSwap with random, narrow networks (published ones
# are not on a test machine; the swap still runs at its real 256 / 224 px), miniature targets and stickers.
TINY_HYBRID_ALL = [
    *(
        override
        for child in (3, 4)
        for override in (
            f"model.obfuscator.obfuscators.{child}.weights=null",
            f"model.obfuscator.obfuscators.{child}.targets.source={TINY_SWAP_TARGETS}",
            f"model.obfuscator.obfuscators.{child}.eval_targets.source={TINY_SWAP_TARGETS}",
        )
    ),
    "+model.obfuscator.obfuscators.3.generator_options.base_channels=2",
    "+model.obfuscator.obfuscators.4.generator_options.ngf=4",
    "+model.obfuscator.obfuscators.4.generator_options.n_blocks=1",
    f"model.obfuscator.obfuscators.5.targets.source={TINY_CARTOONS}",
    f"model.obfuscator.obfuscators.5.eval_targets.source={TINY_CARTOONS}",
]

# Per LightningModule: overrides that keep its networks CPU-cheap in tests (a random-trunk LPIPS instead of
# the offline ST-LPIPS for a training loss, random instead of published weights). A module without an entry
# runs as its experiment files configure it.
TINY_MODEL: dict[str, list[str]] = {
    "src.lightning_modules.proface.ProFaceModule": [
        "model.perceptual.kind=lpips_random",
        "model.perceptual.net=alex",
    ],
    "src.lightning_modules.proface_s.ProFaceSModule": [
        "model.perceptual.kind=lpips_random",
        "model.perceptual.net=alex",
    ],
}

# Per experiment-name pattern: overrides for paper-scale experiments. Published recognizer weights are not on
# a test machine, so those recognizers start from random weights (same architecture, same code path); the
# released PRO-Face embedders are all one architecture, so the fixture's released file stands in for each.
RELEASED_PROFACE_EMBEDDER = SHARED_FIXTURES / "proface_release" / "blur_31_2_8_IResNet50_ep13_BEST.pth"
# PRO-Face verifies 10-fold on pairs; the tiny pair lists hold one fold, so tiny runs derive pairs from the
# identities of one 8-image batch.
TINY_EXPERIMENTS: dict[str, list[str]] = {
    "proface/celeba/*": [
        "model.recognizer.weights=null",
        "datamodule.eval_protocol=images",
        "datamodule.batch_size=8",
    ],
    "proface/released/*": [
        "model.recognizer.weights=null",
        f"model.embedder_weights={RELEASED_PROFACE_EMBEDDER}",
        "datamodule.eval_protocol=images",
        "datamodule.batch_size=8",
    ],
    "proface/released/vggface2/*": ["datamodule.val_identities=0"],  # test split only (TINY_DATA holds out 2)
    # face swaps: random swap networks (published ones are not on a test machine), miniature CelebA targets
    **{
        f"proface/*/{swap}/*": [
            "model.obfuscator.weights=null",
            f"model.obfuscator.targets={TINY_SWAP_TARGETS}",
            f"model.obfuscator.eval_targets={TINY_SWAP_TARGETS}",
        ]
        for swap in ("simswap", "faceshifter")
    },
    "proface_s/hybrid_all_*": TINY_HYBRID_ALL,
    # dlib chips are 150 px; one batch holds every pair image (the official pairs need all of them)
    "obfuscation_baselines/lfw_dlib": [
        "datamodule.image_dir=lfw",
        "datamodule.image_size=150",
        "datamodule.batch_size=16",
    ],
}
# Experiments whose networks stay full-size (paper-scale recognizers): their fast_dev_run is a slow test.
SLOW_EXPERIMENTS = ("proface/celeba/*", "proface/released/*")


def is_slow_experiment(experiment: str) -> bool:
    """Whether ``experiment`` runs paper-scale networks even with tiny data."""
    return any(fnmatch.fnmatchcase(experiment, pattern) for pattern in SLOW_EXPERIMENTS)


def needs_shared(experiment: str) -> bool:
    """Whether the tiny version of ``experiment`` reads ``../shared`` fixtures."""
    return fnmatch.fnmatchcase(experiment, "proface/released/*")


TINY_TRAINER = [
    "logger=none",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
]


def required_keys(experiment: str) -> list[str]:
    """The ``???`` keys an experiment leaves for the command line (e.g. a checkpoint path)."""
    return sorted(OmegaConf.missing_keys(compose(experiment, allow_missing=True).config))


def tiny_overrides(
    experiment: str, runs_dir: Path, required: dict[str, str] | None = None, extra: list[str] | None = None
) -> list[str]:
    """Overrides that make ``experiment`` tiny: small data, one epoch, no W&B, records under ``runs_dir``.

    ``required`` gives values for the experiment's ``???`` keys (only those it has are used). A config-group
    switch in ``extra`` (e.g. ``datamodule=lfw``) picks the miniature settings of the switched-to group.
    """
    needed = required_keys(experiment)
    given = {key: value for key, value in (required or {}).items() if key in needed}
    if set(needed) - set(given):
        raise AssertionError(f"{experiment} requires {sorted(set(needed) - set(given))}: give test values")
    groups = [o for o in extra or [] if "=" in o and not o.startswith("+") and "." not in o.split("=")[0]]
    probe = compose(experiment, [*groups, *(f"{k}={v}" for k, v in given.items())]).config
    target = probe.datamodule._target_
    if target not in TINY_DATA:
        raise AssertionError(
            f"no miniature data settings for {target}: add them to tests/helpers.py TINY_DATA"
        )
    model_extra = ["model.num_pairs=60"] if "num_pairs" in probe.model else []
    model_extra += TINY_MODEL.get(probe.model._target_, [])
    for pattern, extra_overrides in TINY_EXPERIMENTS.items():
        if fnmatch.fnmatchcase(experiment, pattern):
            model_extra += extra_overrides
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
