"""The Inspector's robust-accuracy protocol (reconstructed: the paper's exact protocol is not published).

For every test batch the undefended detector D and the defence (D wrapped by G, A, C) are scored on the
clean images and on the adversarial images of every configured attack at every ε:

* **clean**: D's accuracy and AUC; the defence's *natural accuracy* (a rejection counts as an error), its
  accuracy on accepted images and its rejection rate (the coarse stage's false-positive rate);
* **each attack × ε**: D's accuracy; the defence's *robust accuracy* counted both ways (a rejected image
  counts as correct, the defence caught it; or rejection excluded: accuracy on accepted images only); the
  rejection rate (the coarse stage's true-positive rate); the attack's success rate on the images D gets
  right when clean; and the fine stage's *correction accuracy*: on those images, when accepted, whether
  π > threshold agrees with "the attack succeeded" (with its AUC when both outcomes occur).

Attacks come from :mod:`src.attacks` and run in ``[0, 1]`` pixel space, ε in /255. ``target`` says what an
attack differentiates: ``detector`` (D alone: the grey-box setting of the original test scripts), ``eot``
(the defended logits with the random rescaling on, so ``eot_pgd`` averages over it) or ``bpda`` (the
defended logits forward, D's gradient backward: straight through the flip and rescaling). Adaptive attackers
see the defended logits only; none is told about the coarse rejection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from src.attacks import ATTACKS, BPDA, build_attack
from src.metrics.detection import accuracy_at_threshold, frame_auc
from src.metrics.robustness import rejection_aware_accuracy
from src.papers.inspector.defense import InspectorDefense

TARGETS = ("detector", "eot", "bpda")
#: per-image columns collected for every setting (see :func:`score_setting`)
COLUMNS = (
    "setting",
    "clean_correct",
    "undefended_correct",
    "defended_correct",
    "rejected",
    "flipped",
    "attack_probability",
    "fake_probability",
    "label",
)
CLEAN = "clean"


@dataclass(frozen=True)
class AttackSetting:
    """One row of the protocol: an attack (``None`` for the clean images) at one ε (``None``: unbounded)."""

    label: str
    attack: str | None = None
    eps: float | None = None
    target: str = "detector"
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Metric-key stem: ``clean``, ``pgd10@4``, ``cw`` (unbounded)."""
        return self.label if self.eps is None else f"{self.label}@{self.eps:g}"


def protocol_settings(
    attacks: Mapping[str, Mapping[str, Any] | None] | None,
    eps: Sequence[float],
    only: Sequence[str] | None = None,
) -> list[AttackSetting]:
    """The clean row, then every attack at every ε (its own ``eps`` list if it has one; once if unbounded).

    ``attacks``: label → ``{attack: <src.attacks name>, target: detector|eot|bpda, eps: [...]?, **options}``
    (``None`` drops the label: config merges cannot delete an inherited key); ``only``: the labels to run
    (``None``: all), e.g. one attack per sweep point.
    """
    attacks = dict(attacks or {})
    if only is not None:
        unknown = sorted(set(only) - {label for label, spec in attacks.items() if spec is not None})
        if unknown:
            raise ValueError(
                f"model.evaluation.only names unknown attack(s) {unknown}; known: {sorted(attacks)}"
            )
    settings = [AttackSetting(CLEAN)]
    for label, spec in attacks.items():
        if spec is None or (only is not None and label not in only):  # dropped, or not chosen
            continue
        spec = dict(spec)
        name = spec.pop("attack", None)
        if name not in ATTACKS:
            raise ValueError(
                f"model.evaluation.attacks.{label}.attack must be one of {sorted(ATTACKS)}, got {name!r}"
            )
        target = spec.pop("target", "detector")
        if target not in TARGETS:
            raise ValueError(
                f"model.evaluation.attacks.{label}.target must be one of {TARGETS}, got {target!r}"
            )
        grid = spec.pop("eps", eps)
        if "@" in label or "/" in label or label == CLEAN:
            raise ValueError(f"model.evaluation.attacks: {label!r} is not a usable label")
        if ATTACKS[name].norm is None:  # unbounded (C&W): one row
            settings.append(AttackSetting(label, name, None, target, spec))
            continue
        if not grid:
            raise ValueError(f"model.evaluation.attacks.{label}: no ε given (model.evaluation.eps is empty)")
        settings.extend(AttackSetting(label, name, float(e), target, spec) for e in grid)
    return settings


class DefendedLogits(nn.Module):
    """The defence's final logits as a plain ``[B, 2]`` model (the victim of adaptive attacks)."""

    def __init__(self, defense: InspectorDefense) -> None:
        super().__init__()
        self.defense = defense

    def forward(self, images: Tensor) -> Tensor:
        return self.defense(images).logits


def victim(setting: AttackSetting, defense: InspectorDefense) -> nn.Module:
    """What the attack of ``setting`` differentiates (module docstring)."""
    if setting.target == "detector":
        return defense.detector
    defended = DefendedLogits(defense)
    if setting.target == "eot":
        return defended
    return BPDA(defended, backward=defense.detector)


def stream_seed(*words: int) -> int:
    """A 31-bit seed from integers (run seed, batch, rank, setting): independent streams, no sums that
    collide."""
    return int(np.random.SeedSequence([int(w) & 0xFFFFFFFF for w in words]).generate_state(1)[0] >> 1)


@torch.no_grad()
def score_setting(
    defense: InspectorDefense, index: int, clean_logits: Tensor, images: Tensor, labels: Tensor, seed: int
) -> dict[str, Tensor]:
    """The per-image columns of one setting (``images``: clean or adversarial; ``clean_logits``: D on the
    clean images), the defence's random rescaling drawn from ``seed``."""
    logits = defense.detector(images)
    defense.reseed(seed)
    out = defense(images)
    n = labels.shape[0]
    return {
        "setting": torch.full((n,), index, dtype=torch.long, device=labels.device),
        "clean_correct": clean_logits.argmax(1) == labels,
        "undefended_correct": logits.argmax(1) == labels,
        "defended_correct": out.logits.argmax(1) == labels,
        "rejected": out.rejected,
        "flipped": out.flipped,
        "attack_probability": out.attack_probability.double(),
        "fake_probability": logits.double().softmax(1)[:, 1],
        "label": labels,
    }


def evaluate_batch(
    defense: InspectorDefense,
    images: Tensor,
    labels: Tensor,
    settings: Sequence[AttackSetting],
    seed: int,
) -> dict[str, Tensor]:
    """Attack and score one batch under every setting; columns of :data:`COLUMNS`, settings stacked.

    Works inside Lightning's ``inference_mode`` evaluation loops (attacks re-enable gradients on copies)."""
    clean, labels = images.detach().float(), labels.detach().long()
    with torch.no_grad():
        clean_logits = defense.detector(clean)
    rows = []
    for index, setting in enumerate(settings):
        adversarial = clean
        if setting.attack is not None:
            attack = build_attack(
                setting.attack,
                victim(setting, defense),
                eps=setting.eps,
                seed=stream_seed(seed, index, 1),
                **setting.options,
            )
            defense.reseed(stream_seed(seed, index, 2))  # EOT's draws, reproducible
            adversarial = attack(clean, labels)
        rows.append(
            score_setting(defense, index, clean_logits, adversarial, labels, stream_seed(seed, index, 3))
        )
    return {name: torch.cat([row[name] for row in rows]) for name in COLUMNS}


def summarise(
    columns: Mapping[str, Tensor], settings: Sequence[AttackSetting], threshold: float
) -> pd.DataFrame:
    """One row per setting (module docstring) from the collected columns of every rank."""
    rows = []
    for index, setting in enumerate(settings):
        keep = columns["setting"] == index
        if not bool(keep.any()):
            continue
        c = {name: columns[name][keep].cpu() for name in COLUMNS}
        counted = rejection_aware_accuracy(c["defended_correct"], c["rejected"])
        row: dict[str, Any] = {
            "attack": setting.label,
            "target": setting.target if setting.attack else "",
            "eps": setting.eps if setting.eps is not None else (0.0 if setting.attack is None else math.nan),
            "n": int(keep.sum()),
            "undefended_acc": float(c["undefended_correct"].double().mean()),
            "rejection_rate": counted["rejection_rate"],
            "acc_accepted": counted["acc_accepted"],
        }
        if setting.attack is None:
            row["natural_acc"] = counted["acc_reject_as_error"]
            row["undefended_auc"] = _auc(c["fake_probability"], c["label"])
        else:
            row["robust_acc"] = counted["acc_reject_as_correct"]
            row.update(_correction(c, threshold))
        rows.append(row)
    return pd.DataFrame(rows)


def _auc(scores: Tensor, labels: Tensor) -> float:
    return frame_auc(scores, labels) if 0 < int(labels.sum()) < labels.numel() else math.nan


def _correction(c: Mapping[str, Tensor], threshold: float) -> dict[str, float]:
    """Attack success and the fine stage's correction accuracy on the images D gets right when clean."""
    right = c["clean_correct"]
    success = right & ~c["undefended_correct"]
    out = {"attack_success": float(success.sum()) / max(int(right.sum()), 1) if right.any() else math.nan}
    judged = right & ~c["rejected"]
    if not judged.any():
        return {**out, "correction_acc": math.nan, "correction_auc": math.nan}
    pi, s = c["attack_probability"][judged], success[judged].long()
    out["correction_acc"] = accuracy_at_threshold(pi, s, threshold)
    out["correction_auc"] = _auc(pi, s)
    return out


#: (table column, metric-key suffix) logged for each setting
LOGGED = (
    "undefended_acc",
    "natural_acc",
    "undefended_auc",
    "robust_acc",
    "acc_accepted",
    "rejection_rate",
    "attack_success",
    "correction_acc",
    "correction_auc",
)


def table_metrics(table: pd.DataFrame, settings: Sequence[AttackSetting]) -> dict[str, float]:
    """``{test/<setting key>/<column>: value}`` for every finite value of the table."""
    by_key = {s.key: s for s in settings}
    metrics: dict[str, float] = {}
    for row in table.to_dict("records"):
        eps = row["eps"]
        key = row["attack"] if row["attack"] == CLEAN or math.isnan(eps) else f"{row['attack']}@{eps:g}"
        assert key in by_key, key
        for column in LOGGED:
            value = row.get(column)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                metrics[f"test/{key}/{column}"] = float(value)
    return metrics


def table_from_metrics(metrics: Mapping[str, float]) -> pd.DataFrame:
    """The protocol table back from logged ``test/<key>/<column>`` metrics (run records, the report)."""
    rows: dict[str, dict[str, Any]] = {}
    for name, value in metrics.items():
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != "test" or parts[2] not in LOGGED:
            continue
        label, _, eps = parts[1].partition("@")
        row = rows.setdefault(parts[1], {"attack": label, "eps": float(eps) if eps else math.nan})
        if label == CLEAN:
            row["eps"] = 0.0
        row[parts[2]] = value
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(list(rows.values()))
    table["clean_first"] = table["attack"] != CLEAN
    table = table.sort_values(["clean_first", "attack", "eps"], kind="stable").drop(columns="clean_first")
    return table.reset_index(drop=True)
