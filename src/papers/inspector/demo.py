"""The Inspector on a CPU: ``python -m src.papers.inspector.demo [--fresh] [key=value ...]``.

Prepares the synthetic deepfake data of the detection demos (once; :mod:`src.preprocess.detection_demo`),
then trains the four stages in order, each reading the checkpoint the previous one selected
(``experiments/inspector/demo_synthetic/``: a small CNN detector at 64 px, ResNet-10 A and C), and prints
the robust-accuracy table of the last stage's test: the undefended detector against the Inspector under
FGSM, PGD-10 and the adaptive EOT-PGD-5 and BPDA-PGD-5 attacks, each at ε 2/255 and 8/255 (the protocol is
reconstructed; docs/papers/inspector.md). ``key=value`` overrides go to every stage. Numbers on synthetic
data say nothing about real deepfakes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from src.preprocess.detection_demo import run_record, run_step, start_demo
from src.utils.tables import to_console

#: this demo's table is the robust-accuracy protocol, not the shared detection columns: the joint
#: detection demo (``make demo-detection-papers``) prints it on its own
JOINS_DETECTION_TABLE = False

STAGES = (
    ("stage1_detector", None, "the detector D"),
    ("stage2_reconstructor", "model.detector_ckpt", "the reconstructor G, D frozen"),
    (
        "stage3_autothresh",
        "model.reconstructor_ckpt",
        "the auto-thresholder A on clean vs PGD reconstructions",
    ),
    ("stage4_corrector", "model.autothresh_ckpt", "the corrector C, then the robust-accuracy protocol"),
)
#: (protocol column, console header)
SHOWN = (
    ("attack", "attack"),
    ("eps", "ε/255"),
    ("undefended_acc", "undefended acc"),
    ("natural_acc", "Inspector natural acc"),
    ("robust_acc", "Inspector robust acc"),
    ("acc_accepted", "acc on accepted"),
    ("rejection_rate", "rejected"),
    ("correction_acc", "correction acc"),
)


def selected_checkpoint(run: Path) -> str:
    """The checkpoint a run selected (``best_checkpoint`` in its summary, else its last one)."""
    summary = json.loads((run / "summary.json").read_text())
    return summary.get("best_checkpoint") or str(run / "checkpoints" / "last.ckpt")


def robust_table(run: Path) -> pd.DataFrame:
    """The stage-4 run's protocol table in the console's column names."""
    table = pd.read_csv(run / "predictions" / "robust_accuracy.csv")
    table = table[[c for c, _ in SHOWN if c in table.columns]].copy()
    table["eps"] = [
        "-" if a == "clean" else f"{e:g}" for a, e in zip(table["attack"], table["eps"], strict=True)
    ]
    return table.rename(columns=dict(SHOWN))


def main(argv: Sequence[str] | None = None) -> int:
    overrides, start = start_demo(argv)
    previous: str | None = None
    run = Path()
    for number, (stage, key, what) in enumerate(STAGES, 1):
        experiment = f"inspector/demo_synthetic/{stage}"
        chained = [f"{key}={previous}"] if key else []
        run = run_record(
            run_step(
                [
                    sys.executable,
                    "-m",
                    "src.train",
                    f"experiment={experiment}",
                    "logger=none",
                    *chained,
                    *overrides,
                ],
                f"stage {number}/4: training {experiment} ({what})",
            )
        )
        previous = selected_checkpoint(run)
    print(
        "\n## Inspector on synthetic deepfakes (reconstructed protocol; synthetic data, not real deepfakes)\n"
    )
    print(to_console(robust_table(run)))
    print(
        "\nrobust acc counts a rejected attack as a success of the defence; acc on accepted leaves rejected "
        "images out; correction acc: the fine stage's success/failure calls on accepted images D got right "
        "when clean."
    )
    print(f"\nRun: {run}\nDefence checkpoint: {previous}")
    print(f"Demo wall time: {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
