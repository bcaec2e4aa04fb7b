"""The detection demo on a CPU: synthetic deepfake videos → preprocessing → training → three tests.

``python -m src.papers.detection_baselines.demo [--fresh] [--all] [key=value ...]`` (``make demo-detection``;
``--all``, ``make demo-detection-papers``: then every registered detection paper's own demo on the same data
and one ``python -m src.report`` table of those whose demos report the detection columns):

1. generates a synthetic FaceForensics++ copy (SyntheticFaces identities; the Deepfakes, FaceSwap, Face2Face
   and NeuralTextures stand-ins) and a synthetic Celeb-DF v2 copy as real H.264 videos
   (:mod:`src.preprocess.synthetic_deepfakes`), once, under ``$PROFACE_DATA/demo_detection/raw``;
2. preprocesses both with the video CLI (MTCNN, 68 dlib landmarks, aligned crops) into ``.../processed``;
3. trains ``detection_baselines/demo_synthetic`` (a small CNN on Deepfakes + Face2Face, selected on the
   validation split) and tests it within those methods;
4. tests the selected checkpoint on the held-out FaceSwap + NeuralTextures (cross-manipulation) and on the
   synthetic Celeb-DF copy (cross-dataset);
5. trains ``detection_baselines/demo_synthetic_sbi``: the SBI recipe on the real frames only, with fakes
   self-blended online, tested on all four manipulations (none seen in training); then prints frame and video
   AUC / AP of all four rows.

Numbers on synthetic data say nothing about real deepfakes; they show that every stage runs and that
held-out manipulations are harder than seen ones. ``key=value`` overrides go to the training run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections.abc import Sequence

import pandas as pd

from src.papers.registry import discover
from src.preprocess.detection_demo import DEMO_DATA, data_dir, prepare_data, run_record, run_step
from src.utils.tables import to_console

TRAIN = "detection_baselines/demo_synthetic"
SBI = "detection_baselines/demo_synthetic_sbi"
TESTS = {
    "cross-manipulation (FaceSwap + NeuralTextures)": f"{TRAIN}_cross_manipulation",
    "cross-dataset (synthetic Celeb-DF v2)": f"{TRAIN}_cross_dataset",
}
COLUMNS = (
    "frame_auc",
    "frame_ap",
    "video_auc",
    "video_ap",
    "n_videos",
    "n_frames",
    "failed_frames",
    "failed_videos",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Prepare the data, train, test three ways and print the table."""
    args = list(sys.argv[1:] if argv is None else argv)
    fresh, every_paper = "--fresh" in args, "--all" in args
    overrides = [a for a in args if a not in ("--fresh", "--all")]
    os.environ.setdefault("WANDB_SILENT", "true")
    start = time.perf_counter()
    prepare_data(data_dir() / DEMO_DATA, fresh)
    python = sys.executable
    # the run driver runs the experiments (a paper package sits below it and does not import it)
    trained = run_record(
        run_step(
            [python, "-m", "src.train", f"experiment={TRAIN}", "logger=none", *overrides],
            f"training {TRAIN} (small CNN on Deepfakes + Face2Face stand-ins)",
        )
    )
    summary = json.loads((trained / "summary.json").read_text())
    checkpoint = summary.get("best_checkpoint") or str(trained / "checkpoints" / "last.ckpt")
    rows = [{"test": "within (Deepfakes + Face2Face)", **{c: summary.get(f"test/{c}") for c in COLUMNS}}]
    for label, experiment in TESTS.items():
        tested = run_record(
            run_step(
                [
                    python,
                    "-m",
                    "src.eval",
                    f"experiment={experiment}",
                    f"ckpt_path={checkpoint}",
                    "logger=none",
                ],
                f"testing on {label}",
            )
        )
        result = json.loads((tested / "summary.json").read_text())
        rows.append({"test": label, **{c: result.get(f"test/{c}") for c in COLUMNS}})
    sbi_run = run_record(
        run_step(
            [python, "-m", "src.train", f"experiment={SBI}", "logger=none", *overrides],
            f"training {SBI} (SBI recipe on real frames only, small CNN)",
        )
    )
    sbi_summary = json.loads((sbi_run / "summary.json").read_text())
    rows.append(
        {
            "test": "SBI: trained on reals + self-blends, tested on all 4",
            **{c: sbi_summary.get(f"test/{c}") for c in COLUMNS},
        }
    )
    print("\n## Detection demo on synthetic deepfakes (small CNN; synthetic data, not real deepfakes)\n")
    print(to_console(pd.DataFrame(rows)))
    print(f"\nTraining run: {trained}\nSelected checkpoint: {checkpoint}")
    if every_paper:
        papers = detection_papers_with_demos()
        for paper in papers:
            output = run_step([python, "-m", f"src.papers.{paper}.demo", *overrides], f"the {paper} demo")
            if not joins_detection_table(paper):  # its own kind of table: shown as its demo printed it
                print(output[output.find("\n## ") :].strip() + "\n", flush=True)
        joint = [paper for paper in papers if joins_detection_table(paper)]
        report = run_step([python, "-m", "src.report", "detection_baselines", *joint], "the joint report")
        print("\n## Every detector on the synthetic deepfakes (python -m src.report)\n")
        print(report.split("\n\n[", 1)[0])  # the table; the notes are in reports/<papers>.md
    print(f"Demo wall time: {(time.perf_counter() - start) / 60:.1f} min")
    return 0


def detection_papers_with_demos() -> list[str]:
    """The registered forgery-detection papers (kind ``security``) whose package has a ``demo`` module."""
    papers = discover()
    return sorted(
        name
        for name, info in papers.items()
        if info.kind == "security" and importlib.util.find_spec(f"{info.package}.demo") is not None
    )


def joins_detection_table(paper: str) -> bool:
    """Whether a paper's demo rows share the detection columns (its demo module may say
    ``JOINS_DETECTION_TABLE = False``, e.g. a robustness table of attacks and ε)."""
    demo = importlib.import_module(f"src.papers.{paper}.demo")
    return bool(getattr(demo, "JOINS_DETECTION_TABLE", True))


if __name__ == "__main__":
    raise SystemExit(main())
