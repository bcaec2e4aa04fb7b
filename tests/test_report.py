"""Paper reports: which runs they use (eligibility, pins, missing rows) and how they render (markdown, CSV,
LaTeX and the console), each export parsed back."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.papers.registry import PAPERS, REPORT_LAYOUTS, discover
from src.report import main as report_main
from src.reporting import (
    ReportError,
    build_combined_report,
    build_report,
    csv_text,
    latex_text,
    markdown_text,
)
from src.reporting.exporters import LATEX_PSNR_CAP, LATEX_SPECIALS, escape_latex
from src.reporting.selection import harmful_overrides, is_harmless, sweep_label
from src.utils.tables import PSNR_CAP_TEXT, format_cell, natural_key, to_console, to_markdown
from tests.conftest import PROJECT_ROOT
from tests.fake_runs import checkpoint, write_run

EXPERIMENTS = PROJECT_ROOT / "experiments"
discover()  # registers every paper's report layout


def target(paper: str) -> str:
    return PAPERS[paper].target


# --- realistic run records, one example per paper with a report layout --------------------------------------

IDENTITY = {"verif_acc": 0.97, "verif_acc_std": 0.01, "rank1": 0.95, "rank5": 1.0}
COSINES = {"genuine_cos": 0.75, "impostor_cos": 0.01}


def recognizer_metrics(rank1: float = 0.95) -> dict[str, float]:
    return {f"test/{k}": v for k, v in {**IDENTITY, **COSINES, "rank1": rank1}.items()} | {"val/rank1": 0.9}


BASELINE_OBFUSCATORS = {
    "none": {"_target_": "src.obfuscators.Identity"},
    "blur": {
        "_target_": "src.obfuscators.GaussianBlur",
        "kernel_size": 31,
        "sigma_range": [2.0, 8.0],
        "eval_sigma": 5.0,
    },
    "pixelate": {"_target_": "src.obfuscators.Pixelate", "block_range": [4, 10], "eval_block": 7},
    "noise": {"_target_": "src.obfuscators.GaussianNoise", "std_range": [0.05, 0.2], "eval_std": 0.1},
}


def baseline_metrics() -> dict[str, float]:
    metrics = {}
    for i, name in enumerate(BASELINE_OBFUSCATORS):
        quality = {"psnr": 100.0, "ssim": 1.0} if name == "none" else {"psnr": 20.0 + i, "ssim": 0.5}
        for key, value in {**IDENTITY, **COSINES, **quality, "rank1": 0.9 - 0.2 * i}.items():
            metrics[f"test/{name}/{key}"] = value
    return metrics


def faceshield_metrics() -> dict[str, float]:
    metrics = {}
    for variant, eps in (("faceshield_repo_eps1", 1.0), ("purkayastha_eps1", 1.0), ("blur", None)):
        values = {"ssim": 0.8, "psnr": 28.0, "lpips": 0.1, "dlib/id_cos": 0.5, "dlib/rank1": 0.3}
        values["dlib/tar@far=0.001"] = 0.2
        if eps is not None:
            certified = variant.startswith("purkayastha")
            values |= {"released_cos": 0.2, "epsilon_nominal": eps, "certified": float(certified)}
            values |= {"epsilon_certified": eps if certified else float("nan")}
            values |= {"delta_audited": 0.0 if certified else 0.94}
        metrics |= {f"test/{variant}/{k}": v for k, v in values.items()}
    return metrics


def proface_s_metrics() -> dict[str, float]:
    metrics = {}
    for setting in ("blur", "median"):
        for group in ("p", "p_abs", "r", "wr"):
            for metric, value in {"ssim": 0.9, "psnr": 30.0, "lpips_vgg": 0.05}.items():
                metrics[f"test/{setting}/{group}_{metric}"] = value
        metrics[f"test/{setting}/r_psnr"] = 100.0  # exact recovery: the PSNR cap
        metrics[f"test/{setting}/r_q8_psnr"] = 48.0
        metrics[f"test/{setting}/rec_maxerr_q8"] = 0.004
        metrics[f"test/{setting}/r_close_key_psnr"] = 12.0
        for noise, value in (("1e-2", 25.0), ("1e-3", 40.0), ("5e-3", 31.0)):
            metrics[f"test/{setting}/r_noise{noise}_psnr"] = value
    return metrics


def proface_metrics() -> dict[str, float]:
    metrics: dict[str, float] = {"test/ssim_prot_obf": 0.8, "test/psnr_prot_obf": 27.0}
    for setting in ("orig", "obf", "prot_prot", "prot_orig"):
        metrics[f"test/{setting}/accuracy"] = 0.9
        for far in ("0.001", "0.01", "0.1"):
            metrics[f"test/{setting}/tar_at_far/{far}"] = 0.5
    metrics["test/lpips_vgg_prot_obf"] = 0.1
    return metrics


def inspector_metrics() -> dict[str, float]:
    clean = {"undefended_acc": 0.97, "natural_acc": 0.95, "acc_accepted": 0.96, "rejection_rate": 0.02}
    attacked = {"undefended_acc": 0.1, "robust_acc": 0.8, "acc_accepted": 0.6, "rejection_rate": 0.5}
    metrics = {f"test/clean/{k}": v for k, v in clean.items()}
    for key in ("pgd10@2", "pgd10@8", "eot@8", "cw"):
        metrics |= {f"test/{key}/{k}": v for k, v in attacked.items()} | {f"test/{key}/correction_acc": 0.7}
    return metrics


def proface_c_metrics() -> dict[str, float]:
    metrics = {"test/clear/lfw": 0.99, "test/clear/cfp_fp": 0.95, "test/clear/mean": 0.97}
    for obfuscation, drop in (("gaussian", 0.2), ("hybrid", 0.3)):
        for name, value in (("lfw", 0.98), ("cfp_fp", 0.9), ("mean", 0.94)):
            metrics[f"test/obfuscated/{obfuscation}/{name}"] = value - drop
            metrics[f"test/compensated/{obfuscation}/{name}"] = value - drop / 10
    transmission = {"bits": 8.0, "prune_amount": 0.0, "bytes_per_image": 376352.0}
    return metrics | {f"test/transmission/{k}": v for k, v in transmission.items()}


def ifadit_metrics() -> dict[str, float]:
    metrics = {}
    for version, (quality, cos) in {
        "anonymised": (24.0, 0.1),
        "recovered": (30.0, 0.8),
        "wrong": (22.0, 0.05),
    }.items():
        metrics |= {f"test/{version}/psnr": quality, f"test/{version}/ssim": 0.9, f"test/{version}/mae": 0.02}
        metrics |= {f"test/identity/{judge}/{version}": cos for judge in ("encoder", "dlib")}
    metrics |= {f"test/identity/{judge}/diversity": 0.2 for judge in ("encoder", "dlib")}
    return metrics | {
        "test/detection/detected": 1.0,
        "test/detection/box_iou": 0.9,
        "test/detection/landmark_nme": 0.05,
    }


def makeup_privacy_metrics() -> dict[str, float]:
    metrics: dict[str, float] = {"test/psnr": 28.0, "test/ssim": 0.85, "test/fid": 12.5}
    for model, computed in (("ir152", 0.0), ("dlib_resnet", 1.0)):
        metrics[f"test/threshold/{model}/computed"] = computed
        for far, threshold in (("0.1", 0.09), ("0.01", 0.17), ("0.001", 0.23)):
            metrics[f"test/threshold/{model}/far{far}"] = threshold
            for variant, rate in (("source", 0.01), ("protected", 0.6), ("jpeg", 0.4)):
                metrics[f"test/asr/{variant}/{model}/far{far}"] = rate
        for variant, cos in (("source", 0.05), ("protected", 0.3), ("jpeg", 0.25)):
            metrics[f"test/cos/{variant}/{model}"] = cos
    return metrics


def detection_metrics() -> dict[str, float]:
    metrics = {
        "test/frame_auc": 0.91,
        "test/frame_ap": 0.93,
        "test/frame_eer": 0.16,
        "test/video_auc": 0.95,
        "test/video_ap": 0.96,
        "test/n_videos": 700.0,
        "test/failed_frames": 12.0,
        "test/failed_videos": 1.0,
    }
    for method in ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"):
        metrics[f"test/{method}/frame_auc"] = 0.9
        metrics[f"test/{method}/video_auc"] = 0.95
    return metrics


def examples(ckpt: str) -> dict[str, tuple[str, dict[str, Any], dict[str, float], list[str]]]:
    """paper -> (experiment, model config, summary metrics, overrides the experiment needs)."""
    return {
        "face_recognizer": (
            "demo/recognizer",
            {"_target_": target("face_recognizer")},
            recognizer_metrics(),
            [],
        ),
        "obfuscation_baselines": (
            "demo/obfuscation_baselines",
            {"_target_": target("obfuscation_baselines"), "obfuscators": BASELINE_OBFUSCATORS},
            baseline_metrics(),
            [f"model.recognizer_ckpt={ckpt}"],
        ),
        "proface": (
            "proface/demo_synthetic",
            {
                "_target_": target("proface"),
                "obfuscator_name": "blur_31_2_8",
                "recognizer_name": "IResNet50",
                "fars": [0.01, 0.001, 0.1],
                "perceptual": {"kind": "lpips", "net": "vgg"},
            },
            proface_metrics(),
            [f"model.recognizer.path={ckpt}"],
        ),
        "faceshield": (
            "faceshield/demo_synthetic",
            {
                "_target_": target("faceshield"),
                "perturbators": {
                    "faceshield_repo_eps1": {"sampler": "faceshield_repo", "epsilon": 1.0},
                    "purkayastha_eps1": {"sampler": "purkayastha", "epsilon": 1.0},
                },
                "baselines": {"blur": {"_target_": "src.obfuscators.GaussianBlur", "eval_sigma": 2.5}},
            },
            faceshield_metrics(),
            [],
        ),
        "detection_baselines": (
            "detection_baselines/xception/ffpp_c23",
            {"_target_": target("detection_baselines"), "net": {"name": "xception"}, "video_reduce": "mean"},
            detection_metrics(),
            [],
        ),
        "eg": (
            "eg/ffpp_c23",
            {
                "_target_": target("eg"),
                "net": {"detector": {"name": "efficientnet_b4"}},
                "video_reduce": "mean",
            },
            detection_metrics(),
            [],
        ),
        "fpg": (
            "fpg/ffpp_c23",
            {
                "_target_": target("fpg"),
                "net": {"backbone": {"name": "efficientnet_b4"}},
                "video_reduce": "mean",
            },
            detection_metrics(),
            [],
        ),
        "inspector": (
            "inspector/stage4_corrector",
            {
                "_target_": target("inspector"),
                "net": {"name": "xception"},
                "evaluation": {"attacks": {"pgd10": {"attack": "pgd"}, "eot": {"target": "eot"}}},
            },
            inspector_metrics(),
            [f"model.autothresh_ckpt={ckpt}"],
        ),
        "ifadit": (
            "ifadit/phase2_ffhq",
            {"_target_": target("ifadit"), "flow_weights": None},
            ifadit_metrics(),
            [f"model.disentangle_ckpt={ckpt}"],
        ),
        "makeup_privacy": (
            "makeup_privacy/celebahq_1to1",
            {
                "_target_": target("makeup_privacy"),
                "target_path": "/data/MT-Dataset/test_target_image/target/085807.jpg",
                "generator_weights": None,
                "faithful_bugs": False,
                "robustness": ["jpeg"],
            },
            makeup_privacy_metrics(),
            ["ckpt_path=/w/makeup_privacy.ckpt"],
        ),
        "proface_c": (
            "proface_c/transmission_8bit",
            {"_target_": target("proface_c"), "transmission": {"bits": 8, "prune_amount": 0.0}},
            proface_c_metrics(),
            ["ckpt_path=/w/proface_c.ckpt"],
        ),
        "proface_s": (
            "proface_s/demo_synthetic",
            {"_target_": target("proface_s"), "wrong_recover_type": "Obfs", "eval_password": "***"},
            proface_s_metrics(),
            ["model.eval_password=***"],
        ),
    }


# --- parsers of the exports ---------------------------------------------------------------------------------


def split_markdown_row(line: str) -> list[str]:
    """Cells of one markdown table line: split on unescaped ``|``, ``\\x`` read as ``x``."""
    assert line.startswith("|") and line.endswith("|"), line
    cells, current, chars = [], "", iter(line[1:-1])
    for char in chars:
        if char == "\\":
            current += next(chars)
        elif char == "|":
            cells.append(current.strip())
            current = ""
        else:
            current += char
    return [*cells, current.strip()]


def parse_markdown_table(text: str) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the first markdown table in ``text``; every line has the header's cell count."""
    lines = text.split("\n\n")[0].splitlines()
    headers = split_markdown_row(lines[0])
    rule = split_markdown_row(lines[1])
    assert len(rule) == len(headers) and all(re.fullmatch(r"-+:?", cell) for cell in rule), lines[1]
    rows = [split_markdown_row(line) for line in lines[2:]]
    assert all(len(row) == len(headers) for row in rows)
    return headers, rows


def strip_escaped(text: str) -> str:
    """LaTeX text with every escape of :data:`LATEX_SPECIALS` (and the PSNR cap) removed."""
    for escaped in sorted({LATEX_PSNR_CAP, *LATEX_SPECIALS.values()}, key=len, reverse=True):
        text = text.replace(escaped, "")
    return text


def parse_latex_tabular(text: str) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of a ``tabular``; checks balanced braces, the ``&`` count of every row and that no cell
    has an unescaped special character."""
    depth = 0
    for char in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, "unbalanced braces"
    assert depth == 0, "unbalanced braces"
    lines = text.strip().splitlines()
    spec = re.fullmatch(r"\\begin\{tabular\}\{([lr]*)\}", lines[0])
    assert spec and lines[-1] == r"\end{tabular}"
    body = [line for line in lines[1:-1] if line != r"\hline"]
    parsed = []
    for line in body:
        assert line.endswith(r" \\"), line
        content = line.removesuffix(r" \\")
        bare = strip_escaped(content)
        assert bare.count("&") == len(spec.group(1)) - 1, line
        assert not re.search(r"[_|%#$^~\\{}]", bare.replace("&", "")), line
        parsed.append([cell.strip() for cell in re.split(r"(?<!\\)&", content)])
    return parsed[0], parsed[1:]


def unescape_latex(cell: str) -> str:
    for char, escaped in LATEX_SPECIALS.items():
        cell = cell.replace(escaped, char)
    return cell


def text_or_none(value: object) -> str | None:
    """A CSV text cell as read back: empty and missing are the same."""
    return (
        None
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value))
        else str(value)
    )


def check_round_trips(table: pd.DataFrame, tmp_path: Path) -> None:
    """Markdown, LaTeX and CSV of ``table`` parse back to its columns and values."""
    columns = [str(c) for c in table.columns]
    headers, rows = parse_markdown_table(markdown_text(table, ["a note | with a pipe"]))
    assert headers == columns and len(rows) == len(table)
    for row, values in zip(rows, table.itertuples(index=False), strict=True):
        assert row == [format_cell(v, c) for v, c in zip(values, columns, strict=True)]

    latex = latex_text(table)
    headers, rows = parse_latex_tabular(latex)
    assert [unescape_latex(h) for h in headers] == columns and len(rows) == len(table)
    for row, values in zip(rows, table.itertuples(index=False), strict=True):
        expected = [
            LATEX_PSNR_CAP if format_cell(v, c) == PSNR_CAP_TEXT else format_cell(v, c)
            for v, c in zip(values, columns, strict=True)
        ]
        assert [c if c == LATEX_PSNR_CAP else unescape_latex(c) for c in row] == expected
    if shutil.which("pdflatex"):
        document = "\\documentclass{article}\n\\begin{document}\n" + latex + "\\end{document}\n"
        (tmp_path / "table.tex").write_text(document)
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "table.tex"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout[-2000:]

    text_columns = {c: str for c in columns if not pd.api.types.is_numeric_dtype(table[c])}
    back = pd.read_csv(io.StringIO(csv_text(table)), dtype=text_columns)  # a short sha may be all digits
    assert list(back.columns) == columns
    for column in columns:
        if pd.api.types.is_numeric_dtype(table[column]):
            pd.testing.assert_series_equal(
                back[column], table[column].astype(float), check_dtype=False, check_names=False
            )
        else:
            assert [text_or_none(v) for v in back[column]] == [text_or_none(v) for v in table[column]]


# --- run selection -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "harmless"),
    [
        ("model.recognizer_ckpt=/runs/demo/recognizer/x/checkpoints/best-005.ckpt", True),
        ("ckpt_path=/x/last.ckpt", True),
        ("resume=/runs/demo/recognizer/x", True),
        ("paths.data_dir=/data", True),
        ("logger=none", True),
        ("logger.wandb.mode=offline", True),
        ("run.id=abc", True),
        ("trainer=ddp_cpu", True),
        ("trainer.devices=2", True),
        ("trainer.enable_progress_bar=false", True),
        ("datamodule.root=/data/lfw", True),
        ("datamodule.celeba_root=/data/celeba", True),
        ("datamodule.num_workers=8", True),
        ("model.eval_password=***", True),
        ("trainer.limit_test_batches=5", False),
        ("+trainer.limit_train_batches=2", False),
        ("trainer.fast_dev_run=true", False),
        ("trainer.max_epochs=1", False),
        ("trainer.precision=16-mixed", False),
        ("seed=1", False),
        ("model.optimizer.lr=0.1", False),
        ("datamodule.image_dir=lfw_funneled", False),
        ("datamodule.batch_size=8", False),
        ("sweep.point=3", False),
        ("model.eval_password=hunter2", False),
    ],
)
def test_harmless_overrides(override: str, harmless: bool) -> None:
    assert is_harmless(override) is harmless


def test_keys_the_experiment_leaves_open_are_harmless() -> None:
    assert harmful_overrides(["model.recognizer.path=/w.pt", "seed=2"]) == [
        "model.recognizer.path=/w.pt",
        "seed=2",
    ]
    assert harmful_overrides(["model.recognizer.path=/w.pt", "seed=2"], {"model.recognizer.path"}) == [
        "seed=2"
    ]


def test_sweep_label() -> None:
    assert sweep_label({"sweep": {"name": None, "point": None}}) is None  # what ordinary runs record
    assert sweep_label({}) is None
    assert sweep_label({"sweep": {"name": "lr", "point": 3}}) == "sweep point lr#3"


@pytest.fixture
def recognizer_runs(tmp_path: Path) -> dict[str, Path]:
    """demo/recognizer: a full run, then newer runs that must not replace it by default."""
    root, model = tmp_path / "runs", {"_target_": target("face_recognizer")}
    runs = {
        "full": write_run(root, "demo/recognizer", model, recognizer_metrics(0.95), overrides=["logger=none"])
    }
    checkpoint(runs["full"])
    runs["smoke"] = write_run(
        root, "demo/recognizer", model, recognizer_metrics(0.30), overrides=["trainer.limit_train_batches=5"]
    )
    checkpoint(runs["smoke"])
    runs["sweep"] = write_run(
        root,
        "demo/recognizer",
        model,
        recognizer_metrics(0.17),
        overrides=[
            "model.optimizer.lr=0.003",
            "sweep.name=lr",
            "sweep.point=1",
            "trainer.limit_test_batches=5",
        ],
        sweep=("lr", 1),
    )
    runs["fast_dev_run"] = write_run(
        root, "demo/recognizer", model, recognizer_metrics(0.0), overrides=["trainer.fast_dev_run=true"]
    )
    runs["failed"] = write_run(root, "demo/recognizer", model, {}, status="failed")
    runs["running"] = write_run(root, "demo/recognizer", model, {}, status="running")
    runs["eval_of_smoke"] = write_run(
        root,
        "demo/recognizer",
        model,
        recognizer_metrics(0.31),
        task="eval",
        overrides=[f"ckpt_path={runs['smoke'] / 'checkpoints' / 'last.ckpt'}"],
    )
    return runs


def test_report_takes_the_newest_eligible_run(recognizer_runs: dict[str, Path]) -> None:
    """The bug: a 5-batch sweep point (rank-1 0.17), newer than the full run, gave the row."""
    root = recognizer_runs["full"].parents[2]
    report = build_report("face_recognizer", root, EXPERIMENTS)
    assert report.table["rank-1"].tolist() == [0.95]
    assert report.runs["run_id"].tolist() == [recognizer_runs["full"].name]
    assert bool(report.runs.loc[0, "eligible"]) and json.loads(report.runs.loc[0, "overrides"]) == [
        "logger=none"
    ]
    notes = "\n".join(report.notes)
    assert "sweep point lr#1" in notes and "trainer.limit_test_batches=5" in notes
    assert "overrides trainer.limit_train_batches=5" in notes and "trainer.fast_dev_run=true" in notes
    assert "status failed" in notes and "status running" in notes
    assert f"is a file of run {recognizer_runs['smoke'].name}" in notes  # evaluates the smoke run's weights


def test_a_newer_eligible_eval_run_replaces_an_older_one(recognizer_runs: dict[str, Path]) -> None:
    full = recognizer_runs["full"]
    evaluated = write_run(
        full.parents[2],
        "demo/recognizer",
        {"_target_": target("face_recognizer")},
        recognizer_metrics(0.96),
        task="eval",
        overrides=[f"ckpt_path={full / 'checkpoints' / 'last.ckpt'}", "datamodule.num_workers=4"],
    )
    report = build_report("face_recognizer", full.parents[2], EXPERIMENTS)
    assert report.runs["run_id"].tolist() == [evaluated.name] and report.table["rank-1"].tolist() == [0.96]
    assert "Not used: 1 older eligible run(s)." in report.notes


def test_include_overrides_allows_the_excluded_runs(recognizer_runs: dict[str, Path]) -> None:
    root = recognizer_runs["full"].parents[2]
    report = build_report("face_recognizer", root, EXPERIMENTS, include_overrides=True)
    assert report.runs["run_id"].tolist() == [recognizer_runs["eval_of_smoke"].name]  # newest completed
    assert not report.runs.loc[0, "eligible"]
    assert "used although not eligible" in "\n".join(report.notes)


def test_pins(recognizer_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = recognizer_runs["full"].parents[2]
    pinned = build_report(
        "face_recognizer", root, EXPERIMENTS, pins={"demo/recognizer": recognizer_runs["sweep"]}
    )
    assert pinned.table["rank-1"].tolist() == [0.17] and bool(pinned.runs.loc[0, "pinned"])
    assert "pinned with --run" in "\n".join(pinned.notes) and "used although not eligible" in "\n".join(
        pinned.notes
    )

    with pytest.raises(
        ReportError, match="'proface/demo_synthetic' is not an experiment of 'face_recognizer'"
    ):
        build_report(
            "face_recognizer", root, EXPERIMENTS, pins={"proface/demo_synthetic": recognizer_runs["full"]}
        )
    with pytest.raises(ReportError, match=f"{re.escape(str(tmp_path))} is not a run directory"):
        build_report("face_recognizer", root, EXPERIMENTS, pins={"demo/recognizer": tmp_path})
    other = write_run(
        tmp_path / "other", "proface/demo_synthetic", {"_target_": target("proface")}, proface_metrics()
    )
    with pytest.raises(ReportError, match="ProFaceModule, not of 'face_recognizer'"):
        build_report("face_recognizer", root, EXPERIMENTS, pins={"demo/recognizer": other})
    with pytest.raises(ReportError, match="has no test metrics"):
        build_report(
            "face_recognizer", root, EXPERIMENTS, pins={"demo/recognizer": recognizer_runs["running"]}
        )

    out = tmp_path / "reports"
    assert report_main(["face_recognizer", "--runs", str(root), "--out", str(out), "--run", "no/such=x"]) == 2
    assert "'no/such' is not an experiment" in capsys.readouterr().err
    assert (
        report_main(["face_recognizer", "--runs", str(root), "--out", str(out), "--run", "demo/recognizer"])
        == 2
    )
    assert "expected EXPERIMENT=RUN_DIR" in capsys.readouterr().err


def test_the_demo_baselines_run_stays_eligible(tmp_path: Path) -> None:
    """demo.py evaluates with model.recognizer_ckpt=<the recognizer run's checkpoint>: a harmless override."""
    root = tmp_path / "runs"
    recognizer = write_run(
        root, "demo/recognizer", {"_target_": target("face_recognizer")}, recognizer_metrics()
    )
    experiment, model, metrics, overrides = examples(str(checkpoint(recognizer, "best-005.ckpt")))[
        "obfuscation_baselines"
    ]
    baseline = write_run(root, experiment, model, metrics, overrides=overrides, task="eval", dirty=True)
    report = build_report("obfuscation_baselines", root, EXPERIMENTS)
    assert report.runs["run_id"].tolist() == [baseline.name] and bool(report.runs.loc[0, "eligible"])
    assert report.runs.loc[0, "commit"] == "0123456+dirty"
    assert list(report.table["obfuscator"]) == list(BASELINE_OBFUSCATORS)  # one row per obfuscator
    row = report.table.set_index("obfuscator").loc["blur"]
    assert row["eval setting"] == "kernel_size=31, eval_sigma=5.0"  # what the run itself printed
    assert row["rank1"] == metrics["test/blur/rank1"] and row["psnr"] == metrics["test/blur/psnr"]
    assert report.table.loc[2, "eval setting"] == "eval_block=7, method=block_mean, antialias=True"
    assert "- no run at all (1): obfuscation_baselines/lfw_dlib" in report.notes


def test_baselines_layout_describes_an_obfuscator_it_cannot_rebuild() -> None:
    run = {
        "experiment": "demo/obfuscation_baselines",
        "config.model.obfuscators.swap._target_": "src.obfuscators.NoSuchSwap",
        "config.model.obfuscators.swap.strength": 0.5,
        "config.model.obfuscators.swap.jitter": 0.1,  # training-only: left out like the module does
        "test/swap/rank1": 0.2,
    }
    table = REPORT_LAYOUTS["obfuscation_baselines"](pd.DataFrame([run]))
    assert table.loc[0, "eval setting"] == "strength=0.5" and table.loc[0, "rank1"] == 0.2


def test_missing_rows_are_listed(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    experiment, model, metrics, overrides = examples("/w/recognizer.pt")["proface"]
    write_run(root, experiment, model, metrics, overrides=overrides)
    write_run(root, "proface/celeba/pixelate_7/IResNet50", model, metrics, overrides=["trainer.max_epochs=1"])
    report = build_report("proface", root, EXPERIMENTS)
    notes = "\n".join(report.notes)
    assert report.runs["experiment"].tolist() == ["proface/demo_synthetic"]
    assert re.search(r"No row for \d+ experiment\(s\) of this paper", notes)
    assert "- proface/celeba/pixelate_7/IResNet50: 1 run(s) excluded\n  - " in notes  # one line per run
    assert "overrides trainer.max_epochs=1" in notes
    assert re.search(r"- no run at all \(\d+\): .*proface/celeba/blur_31_2_8/IResNet100", notes)


def test_nothing_eligible_is_an_error_that_says_why(recognizer_runs: dict[str, Path]) -> None:
    shutil.rmtree(recognizer_runs["full"])
    root = recognizer_runs["fast_dev_run"].parents[2]
    with pytest.raises(ReportError, match=r"nothing to report(.|\n)*trainer.fast_dev_run=true"):
        build_report("face_recognizer", root, EXPERIMENTS)


# --- rendering ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("paper", sorted(REPORT_LAYOUTS))
def test_every_layout_renders_and_parses_back(paper: str, tmp_path: Path) -> None:
    known = examples("/w/recognizer.pt")
    assert paper in known, f"add an example run of '{paper}' to examples() in tests/test_report.py"
    experiment, model, metrics, overrides = known[paper]
    root = tmp_path / "runs"
    write_run(root, experiment, model, metrics, overrides=overrides)
    report = build_report(paper, root, EXPERIMENTS)
    assert not report.table.empty and report.runs["eligible"].all()
    check_round_trips(report.table, tmp_path)
    check_round_trips(report.runs, tmp_path)

    out = tmp_path / "reports"
    assert report_main([paper, "--runs", str(root), "--out", str(out), "--latex"]) == 0
    assert {p.name for p in out.iterdir()} == {
        f"{paper}{ext}" for ext in (".md", ".csv", ".runs.csv", ".tex")
    }
    assert parse_markdown_table((out / f"{paper}.md").read_text())[0] == [
        str(c) for c in report.table.columns
    ]
    assert pd.read_csv(out / f"{paper}.runs.csv")["run_id"].tolist() == report.runs["run_id"].tolist()
    assert report_main([paper, "--runs", str(root), "--out", str(out)]) == 0  # without --latex
    assert not (out / f"{paper}.tex").exists()  # the earlier table is not left to look current


def test_detection_table_shows_deepfakebench_beside_reproduced_rows(tmp_path: Path) -> None:
    experiment, model, metrics, _ = examples("/w/recognizer.pt")["detection_baselines"]
    root = tmp_path / "runs"
    run_dir = write_run(
        root, experiment, model, metrics, datamodule="src.datamodules.ffpp.FFPPFramesDataModule"
    )
    config = OmegaConf.load(run_dir / "config.yaml")  # what the experiment file sets
    OmegaConf.update(config, "datamodule.compression", "c23", force_add=True)
    OmegaConf.update(config, "callbacks.model_checkpoint.monitor", "val/frame_auc", force_add=True)
    OmegaConf.save(config, run_dir / "config.yaml")
    table = build_report("detection_baselines", root, EXPERIMENTS).table
    row = table.set_index("experiment").loc["detection_baselines/xception/ffpp_c23"]
    assert row["detector"] == "Xception" and row["test set"] == "FF++ c23"
    assert row["frame AUC"] == 0.91 and row["frame AUC (paper)"] == 0.9637  # DeepfakeBench README
    assert row["Face2Face frame AUC"] == 0.9 and row["selected on"] == "val/frame_auc"


def test_several_papers_make_one_table_with_a_paper_column(tmp_path: Path) -> None:
    root, out = tmp_path / "runs", tmp_path / "reports"
    known = examples("/w/recognizer.pt")
    for paper in ("detection_baselines", "eg"):
        experiment, model, metrics, _ = known[paper]
        write_run(root, experiment, model, metrics, datamodule="src.datamodules.ffpp.FFPPFramesDataModule")
    report = build_combined_report(["detection_baselines", "eg", "proface"], root, EXPERIMENTS)
    table = report.table.set_index("paper")
    assert list(report.table.columns[:3]) == ["paper", "experiment", "detector"]
    assert table.loc["detection_baselines", "detector"] == "Xception"
    assert table.loc["eg", "detector"] == "EG (reconstructed training)"
    assert table.loc["eg", "video AUC"] == table.loc["detection_baselines", "video AUC"] == 0.95
    assert "[eg]" in report.notes and any(
        line.startswith("- proface: nothing to report") for line in report.notes
    )
    assert sorted(report.runs["paper"]) == ["detection_baselines", "eg"]
    assert report_main(["detection_baselines", "eg", "--runs", str(root), "--out", str(out)]) == 0
    assert (out / "detection_baselines+eg.md").is_file()
    with pytest.raises(ReportError, match="nothing to report for any of proface, proface_s"):
        build_combined_report(["proface", "proface_s"], root, EXPERIMENTS)
    with pytest.raises(ReportError, match="named twice"):
        build_combined_report(["eg", "eg"], root, EXPERIMENTS)


def test_markdown_escapes_pipes_and_backslashes() -> None:
    table = pd.DataFrame({"max |x_r - x|": [0.5], "setting": ["a|b \\ c"], "psnr": [100.0]})
    text = to_markdown(table)
    header, rule = text.splitlines()[:2]
    assert header.count("|") - header.count("\\|") == rule.count("|") == 4  # the bug: 6 pipes vs 4
    assert parse_markdown_table(text) == (list(table.columns), [["0.5000", "a|b \\ c", PSNR_CAP_TEXT]])


def test_proface_s_header_with_pipes_keeps_the_column_count(tmp_path: Path) -> None:
    run = {"experiment": "proface_s/demo_synthetic", **proface_s_metrics()}
    table = REPORT_LAYOUTS["proface_s"](pd.DataFrame([run]))
    assert "max |x_r - x| (8-bit x_p)" in table.columns
    headers, _ = parse_markdown_table(to_markdown(table))
    assert len(headers) == table.shape[1]


def test_latex_escapes_every_special_character() -> None:
    assert escape_latex("a_b|c & 50% #1 $x$ {y} ~z^2 \\") == (
        r"a\_b\textbar{}c \& 50\% \#1 \$x\$ \{y\} \textasciitilde{}z\textasciicircum{}2 \textbackslash{}"
    )
    table = pd.DataFrame({"r_psnr | 8-bit": [100.0, math.nan], "note & more": ["50% of #1_x", None]})
    text = latex_text(table)
    assert r"r\_psnr \textbar{} 8-bit & note \& more \\" in text
    assert rf"{LATEX_PSNR_CAP} & 50\% of \#1\_x \\" in text and r"-- & -- \\" in text
    parse_latex_tabular(text)


def test_numeric_settings_are_ordered_by_value() -> None:
    labels = ["noise 0.01", "noise 0.001", "noise 0.005", "block 10", "block 2"]
    assert sorted(labels, key=natural_key) == [
        "block 2",
        "block 10",
        "noise 0.001",
        "noise 0.005",
        "noise 0.01",
    ]
    run = {"experiment": "proface_s/demo_synthetic", **proface_s_metrics()}
    table = REPORT_LAYOUTS["proface_s"](pd.DataFrame([run]))
    noise = [c for c in table.columns if "noise" in c]
    assert noise == [f"r psnr (x_p + noise {std})" for std in ("0.001", "0.005", "0.01")]
    runs = pd.DataFrame([{"experiment": "e", "test/tar_at_far/0.01": 0.5, "test/tar_at_far/0.001": 0.2}])
    tars = [c for c in REPORT_LAYOUTS["face_recognizer"](runs).columns if c.startswith("TAR")]
    assert tars == ["TAR@FAR=0.001", "TAR@FAR=0.01"]
    proface = REPORT_LAYOUTS["proface"](pd.DataFrame([{"config.model.fars": (0.1, 0.001, 0.01)}]))
    assert [c for c in proface.columns if c.startswith("XDR TAR")] == [
        "XDR TAR@0.001",
        "XDR TAR@0.01",
        "XDR TAR@0.1",
    ]


def test_psnr_cap_is_shown_as_infinity_but_kept_in_csv() -> None:
    table = pd.DataFrame({"psnr": [100.0, 99.5], "ssim": [100.0, 1.0], "p PSNR": [100.0, math.nan]})
    _, rows = parse_markdown_table(to_markdown(table))
    assert rows == [[PSNR_CAP_TEXT, "100.0000", PSNR_CAP_TEXT], ["99.5000", "1.0000", "--"]]
    assert pd.read_csv(io.StringIO(csv_text(table)))["psnr"].tolist() == [100.0, 99.5]


def test_console_splits_wide_tables_into_blocks_with_the_key_columns() -> None:
    table = pd.DataFrame(
        {
            "experiment": ["demo/x", "demo/x"],
            "obfuscator": ["blur", "pixelate | 7"],
            **{f"metric number {i}": [i / 10, math.nan] for i in range(12)},
        }
    )
    assert to_console(table.iloc[:, :4], width=200) == to_markdown(table.iloc[:, :4])
    text = to_console(table, width=80)
    assert text.startswith("experiment: demo/x\n")  # the same in every row: printed once
    blocks = [part for part in text.split("\n\n") if part.startswith("(columns")]
    assert len(blocks) > 1
    seen = []
    for block in blocks:
        table_text = block.split("\n", 1)[1]
        assert all(len(line) <= 80 for line in table_text.splitlines())
        headers, rows = parse_markdown_table(table_text)
        assert headers[0] == "obfuscator" and [r[0] for r in rows] == ["blur", "pixelate | 7"]
        seen += headers[1:]
    assert seen == [f"metric number {i}" for i in range(12)]


def test_resumed_runs_compete_and_runs_of_deleted_experiment_files_do_not(tmp_path: Path) -> None:
    root, model = tmp_path / "runs", {"_target_": target("face_recognizer")}
    write_run(root, "demo/recognizer", model, recognizer_metrics(0.95))
    resumed = write_run(root, "demo/recognizer", model, recognizer_metrics(0.97))
    (resumed / "overrides.txt").write_text(f"resume={resumed}\nlogger=none\n")  # as a resumed run records it
    gone = write_run(root, "demo/recognizer_v0", model, recognizer_metrics(0.5))
    report = build_report("face_recognizer", root, EXPERIMENTS)
    assert report.runs["run_id"].tolist() == [resumed.name]
    assert f"{gone.name}: experiment file demo/recognizer_v0.yaml not found" in "\n".join(report.notes)


def test_a_paper_without_venue_is_named_by_its_title_alone() -> None:
    """The baselines have no venue: the report heading must not read "Classical obfuscation baselines (-)"."""
    papers = discover()
    assert "(-)" not in papers["obfuscation_baselines"].headline
    assert papers["proface"].headline.endswith(f"({papers['proface'].venue})")
