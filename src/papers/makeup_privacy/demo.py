"""Makeup-privacy's CPU demo on synthetic makeup-transfer data (about 3 minutes): a stand-in recognizer, the
makeup generator trained to impersonate a target under it, and the 1:1 and 1:N tables.

``python -m src.papers.makeup_privacy.demo [--fresh] [key=value ...]``

1. writes synthetic data in the real layouts (MT-Dataset with label maps, source × reference test pairs, a 1:N
   set) under ``$PROFACE_DATA/demo_makeup`` (:mod:`src.preprocess.synthetic_makeup`; NOT real data);
2. trains the stand-in recognizer (``makeup_privacy/demo_recognizer``: a narrow AdaFace IR-18 on the
   SyntheticFaces identities) and exports it as ``demo_makeup/recognizer.pth`` (the paper attacks the
   published AMT-GAN recognizers, which have never seen synthetic faces);
3. trains the generator (``makeup_privacy/demo_synthetic``) and tests it on MT's fixed pairs, then evaluates
   its checkpoint on the source × reference pairs (``demo_test_pairs``) and on the 1:N set
   (``demo_test_1toN``); the overrides go to all three runs.

Steps 1 and 2 are skipped when their files exist (``--fresh`` redoes them).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from src.preprocess.detection_demo import (
    best_checkpoint,
    data_dir,
    demo_args,
    run_record,
    run_step,
    train_standin,
)
from src.preprocess.synthetic_makeup import write_synthetic_makeup_data
from src.utils.tables import to_console

RECOGNIZER_EXPERIMENT = "makeup_privacy/demo_recognizer"
EXPERIMENT = "makeup_privacy/demo_synthetic"
PAIRS_EXPERIMENT = "makeup_privacy/demo_test_pairs"
RANK_EXPERIMENT = "makeup_privacy/demo_test_1toN"
IMAGE_SIZE = 64
FOLDER = "demo_makeup"


def show(run_dir: Path, title: str) -> None:
    """Print a run's table under ``title``."""
    print(f"\n## {title}\n")
    print(to_console(pd.read_csv(run_dir / "results.csv")))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the steps and print the tables."""
    overrides, fresh, start = demo_args(argv)
    root = data_dir() / FOLDER
    print(f"[demo] synthetic makeup-transfer data (NOT real data) in {root}", flush=True)
    write_synthetic_makeup_data(root, image_size=IMAGE_SIZE, progress=False, force=fresh)
    train_standin(
        RECOGNIZER_EXPERIMENT,
        root / "recognizer.pth",
        "training the stand-in recognizer (narrow AdaFace IR-18, synthetic identities)",
        fresh,
    )
    output = run_step(
        [sys.executable, "-m", "src.train", f"experiment={EXPERIMENT}", *overrides],
        "training the makeup generator against the stand-in, then the 1:1 test on MT's fixed pairs",
    )
    trained = run_record(output)
    checkpoint = best_checkpoint(trained)
    evaluations = {}
    for experiment, what in (
        (PAIRS_EXPERIMENT, "source x reference pairs (1:1)"),
        (RANK_EXPERIMENT, "the 1:N set"),
    ):
        output = run_step(
            [
                sys.executable,
                "-m",
                "src.eval",
                f"experiment={experiment}",
                f"ckpt_path={checkpoint}",
                *overrides,
            ],
            f"evaluating the trained generator on {what}",
        )
        evaluations[what] = run_record(output)
    note = "synthetic data, stand-in recognizer, random VGG and parser; not the paper's numbers"
    show(trained, f"Makeup-privacy on MT's fixed pairs ({note})")
    for what, run_dir in evaluations.items():
        show(run_dir, f"Makeup-privacy on {what} ({note})")
    print(f"\nRun records: {trained}, {', '.join(str(p) for p in evaluations.values())}")
    print(f"Demo wall time: {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
