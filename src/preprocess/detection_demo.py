"""The data of the CPU detection demos, and the steps they share: synthetic deepfake videos in the FF++ and
Celeb-DF v2 layouts (:mod:`src.preprocess.synthetic_deepfakes`), generated once under
``$PROFACE_DATA/demo_detection/raw``, preprocessed (resumable) into ``processed`` (aligned crops) and
``processed_sbi`` (face regions with landmarks, for self-blended training); running a project command,
finding the run record it printed and exporting the network a run trained (for demos that train a stand-in
network first). Every detection paper's demo starts from here; the privacy demos share its steps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

METHODS = ("Deepfakes", "FaceSwap", "Face2Face", "NeuralTextures")


def data_dir() -> Path:
    """``$PROFACE_DATA`` or the project's ``data/`` folder (as ``paths.data_dir``)."""
    root = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("PROFACE_DATA", root / "data")).expanduser()


def run_step(command: list[str], what: str) -> str:
    """Run a step, echoing its last lines on failure; returns its standard output."""
    print(f"[demo] {what}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout[-4000:], file=sys.stderr)
        raise SystemExit(f"[demo] {what} failed (exit {done.returncode})")
    print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)
    return done.stdout


def prepare_data(base: Path, fresh: bool) -> None:
    """Generate (once) and preprocess (resumable) the two synthetic datasets, FF++ also for SBI."""
    raw, processed = base / "raw", base / "processed"
    python = sys.executable
    for layout in ("ffpp", "celeb_df"):
        if fresh or not (raw / layout / "synthetic_deepfakes.json").is_file():
            args = ["--layout", layout, "--frames", "10", "--no-progress", "--force"]
            if layout == "ffpp":
                args += ["--pairs", "10,3,3", "--methods", *METHODS]
            run_step(
                [python, "-m", "src.preprocess.synthetic_deepfakes", str(raw / layout), *args],
                f"generating synthetic {layout} videos in {raw / layout}",
            )
    for layout in ("ffpp", "celeb_df"):
        args = ["--frames", "10", "--size", "128", "--workers", "2", "--no-progress"]
        if layout == "ffpp":
            args += ["--methods", *METHODS]
        output = run_step(
            [python, "-m", "src.preprocess.videos", layout, str(raw / layout), str(processed), *args],
            f"preprocessing {layout} (detect, landmarks, align) into {processed / layout}",
        )
        print("  " + output.strip().splitlines()[-1], flush=True)
    sbi = base / "processed_sbi"
    args = ["--frames", "10", "--profile", "sbi", "--faces", "all", "--max-side", "192", "--workers", "2"]
    output = run_step(
        [
            python,
            "-m",
            "src.preprocess.videos",
            "ffpp",
            str(raw / "ffpp"),
            str(sbi),
            *args,
            "--methods",
            *METHODS,
            "--no-progress",
        ],
        f"preprocessing ffpp for SBI (face regions with landmarks, every face) into {sbi / 'ffpp'}",
    )
    print("  " + output.strip().splitlines()[-1], flush=True)


#: the folder under the data dir that holds the synthetic detection data every detection demo reads
DEMO_DATA = "demo_detection"
_DEMO_DATA_DONE = ("processed/ffpp", "processed/celeb_df", "processed_sbi/ffpp")


def demo_data_ready() -> bool:
    """Whether the synthetic detection data is generated and preprocessed (each index's ``summary.json``)."""
    base = data_dir() / DEMO_DATA
    return all((base / folder / "summary.json").is_file() for folder in _DEMO_DATA_DONE)


def prepare_demo_data(_: Mapping[str, Path] | None = None) -> None:
    """Generate and preprocess the synthetic detection data under the data dir (a reproduction's preparation
    step: the argument, the earlier rows' run directories, is not needed)."""
    prepare_data(data_dir() / DEMO_DATA, False)


def run_record(stdout: str) -> Path:
    """The run directory a ``src.train`` / ``src.eval`` run printed."""
    found = re.findall(r"^Run record: (.+)$", stdout, flags=re.MULTILINE)
    if not found:
        raise SystemExit("[demo] the run printed no run record")
    return Path(found[-1].strip())


SUMMARY_COLUMNS = ("frame_auc", "frame_ap", "video_auc", "video_ap", "n_videos", "failed_frames")


def demo_args(argv: Sequence[str] | None = None) -> tuple[list[str], bool, float]:
    """What every demo does first: read ``[--fresh] [key=value ...]`` and silence W&B; returns the
    overrides, whether ``--fresh`` was given and the start time."""
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("WANDB_SILENT", "true")
    return [a for a in args if a != "--fresh"], "--fresh" in args, time.perf_counter()


def start_demo(argv: Sequence[str] | None = None) -> tuple[list[str], float]:
    """What every detection demo does first: :func:`demo_args`, then the shared data (once, or again with
    ``--fresh``); returns the overrides and the start time."""
    overrides, fresh, start = demo_args(argv)
    prepare_data(data_dir() / DEMO_DATA, fresh)
    return overrides, start


def demo_main(experiment: str, what: str, argv: Sequence[str] | None = None) -> int:
    """A paper's demo on the shared data: ``[--fresh] [key=value ...]``; prepares the data (once), trains
    and tests ``experiment`` (``what`` says what it trains) and prints its test row."""
    overrides, start = start_demo(argv)
    run = run_record(
        run_step(
            [sys.executable, "-m", "src.train", f"experiment={experiment}", "logger=none", *overrides],
            f"training {experiment} ({what})",
        )
    )
    summary: dict[str, Any] = json.loads((run / "summary.json").read_text())
    print(f"\n## {experiment} on synthetic deepfakes (synthetic data, not real deepfakes)\n")
    width = max(len(c) for c in SUMMARY_COLUMNS)
    for column in SUMMARY_COLUMNS:
        value = summary.get(f"test/{column}")
        print(
            f"  {column:<{width}}  {value:.4f}"
            if isinstance(value, float)
            else f"  {column:<{width}}  {value}"
        )
    print(f"\nRun: {run}\nDemo wall time: {(time.perf_counter() - start) / 60:.1f} min")
    return 0


def export_network(run_dir: Path, target: Path, prefix: str = "net.") -> Path:
    """The ``prefix`` weights of a run's selected checkpoint (:func:`best_checkpoint`; e.g. a
    ``face_recognizer`` run's ``net.*``) saved as a plain state dict at ``target`` (through a ``.part`` file,
    so an interrupted export leaves none)."""
    import torch

    checkpoint = best_checkpoint(run_dir)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    network = {key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)}
    if not network:
        raise SystemExit(f"[demo] {checkpoint} holds no {prefix}* weights")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    torch.save(network, part)
    part.replace(target)
    return target


def best_checkpoint(run_dir: Path) -> Path:
    """A run's best checkpoint (``best*.ckpt``), else its ``last.ckpt``; an error names the folder."""
    folder = run_dir / "checkpoints"
    best = sorted(folder.glob("best*.ckpt"))
    chosen = best[-1] if best else folder / "last.ckpt"
    if not chosen.is_file():
        raise SystemExit(f"[demo] {run_dir} has no checkpoint (neither best*.ckpt nor last.ckpt in {folder})")
    return chosen


def train_standin(experiment: str, target: Path, what: str, fresh: bool = False) -> Path:
    """Train ``experiment`` (a stand-in network a demo needs, e.g. a recognizer on synthetic faces) and
    export its network to ``target`` (:func:`export_network`), unless ``target`` exists and not ``fresh``."""
    if fresh or not target.is_file():
        output = run_step([sys.executable, "-m", "src.train", f"experiment={experiment}"], what)
        export_network(run_record(output), target)
    return target
