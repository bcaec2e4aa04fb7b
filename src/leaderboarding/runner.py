"""Judge every contender by the panel: build it, protect the panel's faces, compute each part (or read it back
from the record), and return one row per contender.

Faces are handed to each method at its own ``face_size`` (resized from the panel's crops) and its output is
resized back, so every method is judged on the same crops at the same size. Recovery is measured at the
method's own size (its output as it is, never resized, since reversible methods need it pixel-exact).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.face.detection import build_detector
from src.inference.checkpoints import open_method_checkpoint
from src.inference.methods import DetectionMethod, ProtectionMethod
from src.leaderboarding.attacker import fine_tune_parrot
from src.leaderboarding.contenders import Entrant
from src.leaderboarding.data import FaceSet
from src.leaderboarding.panel import Panel
from src.leaderboarding.recognizers import PanelRecognizer, used_in_training
from src.leaderboarding.records import EntrantRecord, folder_name, part_key
from src.leaderboarding.scores import (
    dp_epsilons,
    face_scores,
    flag_rate,
    identity_scores,
    pair_identity_scores,
    recovery_scores,
    utility_scores,
)
from src.networks.recognizers.checkpoints import sha256_file
from src.papers.registry import METHODS, ForgeryJudge
from src.weights import WeightsError

__all__ = ["REFERENCE_ID", "Judge", "Judging", "resize"]

Echo = Callable[[str], None]
#: the reference row: the original faces, unprotected (what every recognizer achieves without protection)
REFERENCE_ID = "(unprotected)"
WRONG_KEY_SUFFIX = "-not-the-key"


def resize(images: Tensor, size: int) -> Tensor:
    """``images`` at ``size`` x ``size`` (antialiased bilinear; unchanged when already that size)."""
    if tuple(images.shape[-2:]) == (size, size):
        return images
    out = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp(0, 1)


def _batched(fn: Callable[[Tensor], Tensor], images: Tensor, batch_size: int) -> Tensor:
    return torch.cat([fn(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


@dataclass
class Judge:
    """A forgery judge ready to score faces (or why it is not)."""

    paper: str
    judge: ForgeryJudge
    method: DetectionMethod | None
    checkpoint: Path | None
    status: str
    sha256: str | None = None

    def scores(self, faces: Tensor, batch_size: int) -> Tensor:
        assert self.method is not None
        size = self.method.face_size
        with torch.no_grad():
            return _batched(
                lambda x: self.method.detect_faces(resize(x, size)).float().cpu(), faces, batch_size
            )


@dataclass
class Built:
    """A contender built from its checkpoint (or why it could not be)."""

    entrant: Entrant
    status: str
    checkpoint: Path | None = None
    sha256: str | None = None
    method: ProtectionMethod | None = None
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class Judging:
    """Everything the panel judges with, built once, applied to each contender in turn."""

    panel: Panel
    test: FaceSet
    train: FaceSet | None
    recognizers: dict[str, PanelRecognizer]
    judges: list[Judge]
    records_root: Path
    force: bool = False
    echo: Echo = print
    _original_embeddings: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.detector = build_detector(self.panel.face_detector)
        self.exclusions: dict[str, dict[str, str]] = {}
        #: things the table's readers must know (e.g. a metric that could not be measured, and why)
        self.notes: list[str] = []
        self.lpips_net = self._lpips_net()

    def _lpips_net(self) -> str | None:
        """The LPIPS trunk when its weights are installed; else None (LPIPS left empty, with a note)."""
        probe = self.test.images[:1]
        try:
            utility_scores(probe, probe, lpips_net=self.panel.lpips_net)
        except (WeightsError, FileNotFoundError) as exc:
            self.notes.append(f"LPIPS not measured: {' '.join(str(exc).split())}")
            self.echo(f"[leaderboard] {self.notes[-1]}")
            return None
        return self.panel.lpips_net

    # ------------------------------------------------------------------------------------------ helpers

    def original_embeddings(self, name: str) -> Tensor:
        if name not in self._original_embeddings:
            self._original_embeddings[name] = self.recognizers[name].embed(self.test.images)
        return self._original_embeddings[name]

    def _verification(self) -> dict[str, Any]:
        return {"far": self.panel.far, **self.panel.verification}

    def _identity(self, original: Tensor, protected: Tensor) -> dict[str, float]:
        """Privacy from embeddings of the test faces: rank-1, TAR and accuracy (images), TAR and accuracy of
        the given pairs, protected side ``a`` against original side ``b`` (pairs)."""
        if self.test.is_same is None:
            return identity_scores(
                original, protected, self.test.identity, far=self.panel.far, **self.panel.verification
            )
        assert self.test.fold is not None
        half = self.test.is_same.numel()
        return pair_identity_scores(
            original[:half],
            original[half:],
            protected[:half],
            protected[half:],
            self.test.is_same,
            self.test.fold,
            far=self.panel.far,
            distance=self.panel.verification["distance"],
        )

    def _protect(self, method: ProtectionMethod, faces: Tensor) -> Tensor:
        """Protected faces at the method's size (what recovery needs), in batches."""
        password = self.panel.password if method.needs_password else None
        size = method.face_size
        with torch.no_grad():
            return _batched(
                lambda x: method.protect_faces(resize(x, size), password).float().clamp(0, 1).cpu(),
                faces,
                self.panel.batch_size,
            )

    # ------------------------------------------------------------------------------------------ a contender

    def judge(self, built: Built, about: Mapping[str, Any]) -> dict[str, Any]:
        """One row of the leaderboard for ``built`` (its parts read back or computed)."""
        entrant = built.entrant
        record = EntrantRecord(self.records_root / folder_name(entrant.id), about, force=self.force)
        row: dict[str, Any] = {"record": str(record.path)}
        method = built.method
        reference = entrant.id == REFERENCE_ID
        identity = part_key(entrant.id, dict(entrant.contender.options), built.sha256)
        data = self.test.key
        state: dict[str, Tensor] = {}

        def at_method_size() -> Tensor:
            if "small" not in state:
                if reference:
                    state["small"] = self.test.images
                else:
                    assert method is not None
                    self.echo(f"[leaderboard] {entrant.id}: protecting {len(self.test)} test faces")
                    state["small"] = self._protect(method, self.test.images)
            return state["small"]

        def protected() -> Tensor:
            if "protected" not in state:
                state["protected"] = resize(at_method_size(), self.test.images.shape[-1])
            return state["protected"]

        settings = {"lpips": self.lpips_net, "detector": self.panel.face_detector}
        row.update(
            record.get(
                "utility",
                part_key("utility", data, identity, settings),
                lambda: {
                    **utility_scores(self.test.images, protected(), lpips_net=self.lpips_net),
                    **face_scores(self.test.images, protected(), self.detector),
                },
            )
        )
        ranks: dict[str, float] = {}
        for name, recognizer in self.recognizers.items():
            reason = None if reference else used_in_training(recognizer, built.config)
            if reason is not None:
                self.exclusions.setdefault(name, {})[entrant.id] = reason
                row[f"{name} rank-1"] = math.nan
                continue
            values = record.get(
                f"privacy:{name}",
                part_key("privacy", data, identity, recognizer.source, self._verification()),
                lambda recognizer=recognizer, name=name: self._identity(
                    self.original_embeddings(name), recognizer.embed(protected())
                ),
            )
            for key, value in values.items():
                row[f"{name} {key}"] = value
            ranks[name] = _number(values.get("rank-1"))
        if not reference and self.train is not None and self.panel.attacker is not None:
            row.update(self._parrot(record, built, identity, ranks, protected))
        if method is not None and method.reversible:
            row.update(
                record.get(
                    "recovery",
                    part_key("recovery", data, identity),
                    lambda: self._recovery(method, at_method_size()),
                )
            )
        for judge in self.judges:
            if judge.method is None:
                continue
            values = record.get(
                f"forgery:{judge.judge.name}",
                part_key("forgery", data, identity, judge.sha256, self.panel.forgery_threshold),
                lambda judge=judge: {
                    "flagged": flag_rate(
                        judge.scores(protected(), self.panel.batch_size), self.panel.forgery_threshold
                    )
                },
            )
            row[f"{judge.judge.label} flagged"] = values["flagged"]
        record.data["summary"] = {k: v for k, v in row.items() if k != "record"}
        record.save()
        done = ", ".join(record.computed) or "nothing"
        self.echo(f"[leaderboard] {entrant.id}: computed {done}; read back {len(record.reused)} part(s)")
        return row

    def _parrot(
        self,
        record: EntrantRecord,
        built: Built,
        identity: str,
        ranks: Mapping[str, float],
        protected: Callable[[], Tensor],
    ) -> dict[str, Any]:
        attacker = self.panel.attacker
        assert attacker is not None and self.train is not None
        base = attacker["recognizer"]
        if base not in self.recognizers:
            return {"parrot rank-1": math.nan, "parrot note": f"recognizer {base} unavailable"}
        recognizer = self.recognizers[base]
        key = part_key("parrot", self.test.key, self.train.key, identity, recognizer.source, attacker)

        def compute() -> dict[str, Any]:
            assert built.method is not None and self.train is not None
            self.echo(
                f"[leaderboard] {built.entrant.id}: parrot attacker — protecting {len(self.train)} "
                "training faces, "
                f"fine-tuning {base} for {attacker['steps']} steps"
            )
            trained_on = resize(self._protect(built.method, self.train.images), self.train.images.shape[-1])
            parrot = fine_tune_parrot(
                recognizer,
                trained_on,
                self.train.identity,
                steps=attacker["steps"],
                batch_size=attacker["batch_size"],
                lr=attacker["lr"],
                seed=attacker["seed"],
            )
            scores = self._identity(parrot.embed(self.test.images), parrot.embed(protected()))
            return {f"parrot {k}": v for k, v in scores.items()}

        values = record.get("parrot", key, compute)
        out = dict(values)
        before = ranks.get(base, math.nan)
        out["parrot gain"] = _number(values.get("parrot rank-1")) - before
        return out

    def _recovery(self, method: ProtectionMethod, protected_small: Tensor) -> dict[str, float]:
        size = method.face_size
        original = resize(self.test.images, size)
        with torch.no_grad():
            right = _batched(
                lambda x: method.recover_faces(x, self.panel.password).float().clamp(0, 1).cpu(),
                protected_small,
                self.panel.batch_size,
            )
            wrong = _batched(
                lambda x: (
                    method.recover_faces(x, self.panel.password + WRONG_KEY_SUFFIX).float().clamp(0, 1).cpu()
                ),
                protected_small,
                self.panel.batch_size,
            )
        return recovery_scores(original, right, wrong)


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def build_contender(entrant: Entrant, checkpoint: Path | None, device: str) -> Built:
    """The contender's served method from ``checkpoint`` (None for methods that need none)."""
    entry = METHODS[entrant.contender.method]
    if entry.needs_checkpoint and checkpoint is None:
        raise ValueError("no checkpoint")
    opened = open_method_checkpoint(checkpoint) if checkpoint is not None else None
    method = entry.build(opened, torch.device(device), **dict(entrant.contender.options))
    if not isinstance(method, ProtectionMethod):
        raise TypeError(f"method '{entry.name}' built a {type(method).__name__}, not a protection method")
    return Built(
        entrant,
        "ok",
        checkpoint,
        sha256_file(checkpoint) if checkpoint is not None else None,
        method,
        dict(opened.config) if opened is not None else {},
        dict(method.privacy_record()),
    )


def epsilons(built: Built) -> tuple[float, float]:
    """(nominal, certified) ε of a built contender, NaN where it has none."""
    nominal, certified = dp_epsilons(built.provenance)
    return (math.nan if nominal is None else nominal, math.nan if certified is None else certified)


def timed(echo: Echo, what: str) -> Callable[[], None]:
    """Start a timer; the returned function prints how long ``what`` took."""
    start = time.perf_counter()
    return lambda: echo(f"[leaderboard] {what}: {time.perf_counter() - start:.1f} s")


def score_originals(judges: Sequence[Judge], faces: Tensor, threshold: float, batch_size: int) -> list[dict]:
    """Each judge's flag rate on the original (unprotected) faces: its false-positive rate on this panel."""
    rows = []
    for judge in judges:
        row = {"judge": judge.judge.label, "paper": judge.paper, "status": judge.status}
        if judge.method is not None:
            row["flagged (original faces)"] = flag_rate(judge.scores(faces, batch_size), threshold)
            row["checkpoint"] = str(judge.checkpoint) if judge.checkpoint else ""
        rows.append(row)
    return rows
