"""Expected GPU hours of a table row: FLOPs per image × images × epochs ÷ a reference GPU's throughput.

FLOPs per image are measured like ``benchmarks/bench_costs.py`` does: the paper's :class:`CostEntry`
network built with random weights, each named pass run once on a batch of 1 under
``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add of convolutions and matrix products;
element-wise work is not counted). Measurements are cached in a JSON file, keyed by paper, network, size,
pass and parameter count, since building a paper-scale network takes a while on a CPU.

The images come from the composed config and the row's dataset (:data:`DATASET_SIZES`): a training row runs
``epochs × train`` images forward and backward (counted as 3 forward passes), ``epochs × val`` images
forward when it validates, and ``test`` forward when it tests; an evaluation row runs ``test`` forward.
The result is an *estimate* at :data:`REFERENCE_FLOPS` sustained; data loading, element-wise work,
attacks' inner iterations and a network's share of the step are not modelled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from src.papers.registry import COST_ENTRIES, CostEntry, CostUse, RowCost
from src.reproducing.datasets import DATASET_SIZES, DatasetSize

#: the reference GPU: NVIDIA A100 (TF32 tensor-core peak 156 TFLOP/s) at 40 % utilisation
REFERENCE_GPU = "A100 (TF32 peak 156 TFLOP/s) at 40 % utilisation"
REFERENCE_FLOPS = 156e12 * 0.40
#: a training image costs its forward pass plus a backward pass of about twice the forward
TRAIN_FACTOR = 3

FlopCounter = Callable[[str, CostUse], int]


class CostError(ValueError):
    """A row's cost names a network, pass or dataset its paper does not declare."""


@dataclass(frozen=True)
class Estimate:
    """A row's expected GPU hours and the figures behind them (``hours`` None: no estimate, ``why``)."""

    hours: float | None
    why: str
    flops_per_image: int = 0
    images: int = 0

    @property
    def shown(self) -> str:
        """``~1.23 GPU h`` or the reason there is no figure."""
        if self.hours is None:
            return self.why
        return f"~{self.hours:.3g} GPU h (estimate: {self.why})"


def _entry(paper: str, network: str) -> CostEntry:
    for entry in COST_ENTRIES.get(paper, ()):
        if entry.network == network:
            return entry
    known = [entry.network for entry in COST_ENTRIES.get(paper, ())]
    raise CostError(f"paper '{paper}' has no cost entry '{network}' (its entries: {known})")


def count_pass_flops(entry: CostEntry, size: int, passes: tuple[str, ...]) -> dict[str, int]:
    """FLOPs per image of each of ``passes`` of ``entry`` at input side ``size`` (batch 1, CPU)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    net = entry.build()
    closures = entry.passes(net, 1, size, torch.device("cpu"))
    unknown = [name for name in passes if name not in closures]
    if unknown:
        raise CostError(f"cost entry '{entry.network}' has no pass {unknown} (its passes: {list(closures)})")
    counted = {}
    for name in passes:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            closures[name]()
        counted[name] = int(counter.get_total_flops())
    return counted


class FlopCache:
    """Measured FLOPs per image, kept in a JSON file (``path`` None: in memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.values: dict[str, int] = {}
        if path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                loaded = {}  # a damaged cache is measured again
            self.values = {k: int(v) for k, v in loaded.items() if isinstance(v, int)}

    def __call__(self, paper: str, use: CostUse) -> int:
        """FLOPs per image of ``use`` (sum over its passes), measured once."""
        entry = _entry(paper, use.network)
        keys = {name: f"{paper}|{use.network}|{use.size}|{name}|{entry.params}" for name in use.passes}
        missing = tuple(name for name, key in keys.items() if key not in self.values)
        if missing:
            print(f"[reproduce] measuring FLOPs of {use.network} at {use.size} px ({', '.join(missing)})")
            for name, flops in count_pass_flops(entry, use.size, missing).items():
                self.values[keys[name]] = flops
            self._save()
        return sum(self.values[key] for key in keys.values())

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.values, indent=1, sort_keys=True) + "\n")
        tmp.replace(self.path)


def _get(cfg: DictConfig | Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping | DictConfig) or part not in node:
            return default
        node = node[part]
    return node


def images_of(cfg: DictConfig | Mapping[str, Any], task: str, size: DatasetSize) -> tuple[int, int, str]:
    """(training images, forward-only images, how they were counted) for a run of ``cfg``."""
    train = task == "train" and bool(_get(cfg, "train", True))
    test = bool(_get(cfg, "test", True)) or task == "eval"
    epochs = int(_get(cfg, "trainer.max_epochs", 1) or 1) if train else 0
    steps = int(_get(cfg, "trainer.max_steps", -1) or -1)
    batch = int(_get(cfg, "datamodule.batch_size", 1) or 1)
    parts = []
    if train and steps > 0:
        trained = steps * batch
        parts.append(f"{steps} steps x batch {batch}")
        epochs = max(1, round(trained / max(size.train, 1)))
    else:
        trained = epochs * size.train
        if train:
            parts.append(f"{epochs} epochs x {size.train:,} train {size.unit}")
    every = int(_get(cfg, "trainer.check_val_every_n_epoch", 1) or 1)
    validated = (epochs // every) * size.val if train else 0
    if validated:
        parts.append(f"{epochs // every} x {size.val:,} val")
    tested = size.test if test else 0
    if tested:
        parts.append(f"{tested:,} test {size.unit}")
    return trained, validated + tested, ", ".join(parts) or "no images"


def estimate(
    paper: str, cost: RowCost | None, cfg: DictConfig | Mapping[str, Any], task: str, flops: FlopCounter
) -> Estimate:
    """The expected GPU hours of one row (see the module docstring for the model)."""
    if cost is None:
        return Estimate(None, "no cost entry (no network cost or dataset size declared for this row)")
    size = DATASET_SIZES.get(cost.dataset)
    if size is None:
        raise CostError(f"no documented size for dataset '{cost.dataset}' (known: {sorted(DATASET_SIZES)})")
    per_image = sum(flops(paper, use) for use in cost.uses)
    trained, forward, counted = images_of(cfg, task, size)
    total = per_image * (TRAIN_FACTOR * trained + forward)
    hours = total / REFERENCE_FLOPS / 3600
    nets = " + ".join(f"{use.network} {'/'.join(use.passes)} @{use.size}" for use in cost.uses)
    why = (
        f"{per_image / 1e9:.3g} GFLOP/image ({nets}) x ({TRAIN_FACTOR} x {trained:,} trained + {forward:,} "
        f"forward) [{counted}] / {REFERENCE_GPU}"
    )
    return Estimate(hours, why, per_image, trained + forward)
