"""Makeup-privacy's tables (docs/papers/makeup_privacy.md, "Evaluation"): rebuilt from the logged ``test/*``
metrics of each run, so the module's own results table and ``python -m src.report makeup_privacy`` agree.

Logged names (:func:`metric_name`):

- ``test/asr/<variant>/<model>/far<FAR>``: impersonation success rate (share of images the recognizer
  ``<model>`` verifies as the target identity at that FAR's threshold); ``test/cos/<variant>/<model>``:
  the mean cosine similarity to the target; ``test/threshold/<model>/far<FAR>`` and
  ``test/threshold/<model>/computed`` (1: computed on the clean sources, 0: the published AMT-GAN value);
- ``test/psr/<variant>/<model>/top<k>``: 1:N protection success rate at top-k;
- ``test/psnr``, ``test/ssim``, ``test/fid``, ``test/lpips_<net>``: image quality of the protected images
  against their sources.

Variants: ``source`` (the unprotected images: the baseline), ``protected`` (the made-up images) and the
robustness variants ``blur``, ``noise``, ``jpeg`` (the protected images degraded before recognition).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from src.analysis.runs import dataset_label
from src.metrics.perceptual import LPIPS_NETS
from src.papers.registry import register_report
from src.utils.tables import is_missing

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = (
    "the paper's tables (Computer Science 2025, doi 10.11896/jsjkx.241200001) are not recorded in this "
    "project yet"
)

#: the order of the variants in a table
VARIANT_ORDER = ("source", "protected", "blur", "noise", "jpeg")
QUALITY = {"psnr": "PSNR", "ssim": "SSIM", "fid": "FID"}
#: LPIPS columns: ``lpips_<net>``, and ``lpips_<net>_RANDOM`` for a random trunk (tests and the CPU demo)
QUALITY |= {f"lpips_{net}": f"LPIPS-{net}" for net in LPIPS_NETS}
QUALITY |= {f"lpips_{net}_RANDOM": f"LPIPS-{net} (RANDOM trunk)" for net in LPIPS_NETS}
_ASR = re.compile(r"^test/asr/([^/]+)/([^/]+)/far(.+)$")
_COS = re.compile(r"^test/cos/([^/]+)/([^/]+)$")
_PSR = re.compile(r"^test/psr/([^/]+)/([^/]+)/top(\d+)$")
_COMPUTED = re.compile(r"^test/threshold/([^/]+)/computed$")


def far_text(far: float) -> str:
    """``0.01`` → ``"0.01"`` (the FAR as it appears in metric names and column headers)."""
    return f"{float(far):g}"


def metric_name(kind: str, variant: str | None = None, model: str | None = None, **part: Any) -> str:
    """``test/asr/protected/ir152/far0.01`` (``far=``), ``test/psr/protected/ir_se50/top1`` (``top=``),
    ``test/cos/source/ir152``, ``test/threshold/ir152/far0.01``, ``test/psnr``."""
    parts = ["test", kind, *(p for p in (variant, model) if p is not None)]
    if "far" in part:
        parts.append(f"far{far_text(part['far'])}")
    if "top" in part:
        parts.append(f"top{int(part['top'])}")
    if "leaf" in part:
        parts.append(str(part["leaf"]))
    return "/".join(parts)


def _order(variant: str) -> tuple[int, str]:
    return (VARIANT_ORDER.index(variant) if variant in VARIANT_ORDER else len(VARIANT_ORDER), variant)


def _value(value: Any) -> float | None:
    if is_missing(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def table_from_metrics(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (protocol, variant, model): ASR at each FAR, mean cosine to the target and the threshold
    source (1:1), PSR top-k (1:N); PSNR / SSIM / FID on the ``protected`` rows. Empty without test metrics."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    computed: dict[str, str] = {}
    fars: list[str] = []
    tops: list[int] = []

    def row(protocol: str, variant: str, model: str) -> dict[str, Any]:
        return rows.setdefault(
            (protocol, variant, model), {"protocol": protocol, "variant": variant, "model": model}
        )

    for name, raw in metrics.items():
        value = _value(raw)
        if value is None:
            continue
        name = str(name)
        if match := _ASR.match(name):
            variant, model, far = match.groups()
            row("1:1", variant, model)[f"ASR@FAR={far}"] = value
            fars += [far] if far not in fars else []
        elif match := _COS.match(name):
            row("1:1", *match.groups())["cos to target"] = value
        elif match := _PSR.match(name):
            variant, model, top = match.groups()
            row("1:N", variant, model)[f"PSR top-{top}"] = value
            tops += [int(top)] if int(top) not in tops else []
        elif match := _COMPUTED.match(name):
            computed[match.group(1)] = "computed" if value else "published"
    if not rows:
        return pd.DataFrame()
    quality = {label: _value(metrics.get(f"test/{key}")) for key, label in QUALITY.items()}
    for (_, variant, model), entry in rows.items():
        if entry["protocol"] == "1:1":
            entry["thresholds"] = computed.get(model)
        if variant == "protected":
            entry.update({label: value for label, value in quality.items() if value is not None})
    ordered = sorted(rows.values(), key=lambda r: (r["protocol"], _order(r["variant"])))
    columns = ["protocol", "variant", "model"]
    columns += [f"ASR@FAR={far}" for far in sorted(fars, key=float, reverse=True)]
    columns += ["cos to target", "thresholds", *(f"PSR top-{k}" for k in sorted(tops))]
    columns += list(QUALITY.values())
    table = pd.DataFrame(ordered).reindex(columns=columns)
    return table.dropna(axis=1, how="all").reset_index(drop=True)


def test_data(run: Mapping[str, Any]) -> str:
    """The test set of a run: the DataModule's name and its folder (``MakeupPairs CelebA-HQ``)."""
    folder = next(
        (
            str(run[key])
            for key in ("config.datamodule.source_dir", "config.datamodule.image_dir")
            if not is_missing(run.get(key))
        ),
        "",
    )
    return f"{dataset_label(run)} {folder}".strip()


def generator_label(run: Mapping[str, Any]) -> str:
    """Which generator a run evaluated: the authors' released file or the run's own / a trained checkpoint."""
    weights = run.get("config.model.generator_weights")
    if is_missing(weights) or not str(weights):
        return "trained (this project)"
    return f"released ({PurePosixPath(str(weights)).name})"


@register_report("makeup_privacy")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every evaluated run's rows with its experiment, test data, generator, target image and whether the
    authors' defects were reproduced (``faithful_bugs``)."""
    out = []
    for run in runs.to_dict("records"):
        table = table_from_metrics(run)
        if table.empty:
            continue
        target = run.get("config.model.target_path")
        context = {
            "experiment": run.get("experiment"),
            "test data": test_data(run),
            "generator": generator_label(run),
            "target": "" if is_missing(target) else PurePosixPath(str(target)).name,
            "faithful_bugs": bool(run.get("config.model.faithful_bugs") or False),
        }
        out += [{**context, **entry} for entry in table.to_dict("records")]
    return pd.DataFrame(out)
