"""iFADIT's CPU demo on SyntheticFaces (about 3 minutes): a stand-in identity encoder, phase 1, phase 2 and
the anonymisation / recovery table. Both training phases are **reconstructed** (the authors released
inference only).

``python -m src.papers.ifadit.demo [--fresh] [key=value ...]``

1. trains the stand-in identity encoder E_id (``ifadit/demo_identity_encoder``: a narrow AdaFace IR-18 on
   the synthetic training identities) and exports its network as
   ``$PROFACE_DATA/demo_ifadit/identity_encoder.pth`` (the paper's E_id is the published IR-SE-50 ArcFace,
   which has never seen synthetic faces);
2. phase 1 (``ifadit/demo_phase1``): the attribute encoder, the mapper and - in this demo only - the narrow
   generator learn to re-synthesise the faces;
3. phase 2 (``ifadit/demo_phase2``; the overrides go to this run): the key-conditioned flow and the identity
   compensation on top of phase 1, then the table.

Step 1 is skipped when its file exists (``--fresh`` redoes it).
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
from src.utils.tables import to_console

ENCODER_EXPERIMENT = "ifadit/demo_identity_encoder"
PHASE1_EXPERIMENT = "ifadit/demo_phase1"
PHASE2_EXPERIMENT = "ifadit/demo_phase2"
ENCODER_FILE = Path("demo_ifadit") / "identity_encoder.pth"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three steps and print the table."""
    overrides, fresh, start = demo_args(argv)
    train_standin(
        ENCODER_EXPERIMENT,
        data_dir() / ENCODER_FILE,
        "training the stand-in identity encoder E_id (narrow AdaFace IR-18, synthetic identities)",
        fresh,
    )
    output = run_step(
        [sys.executable, "-m", "src.train", f"experiment={PHASE1_EXPERIMENT}"],
        "phase 1 (reconstructed): attribute encoder, mapper and the demo's generator learn to reconstruct",
    )
    phase1 = best_checkpoint(run_record(output))
    output = run_step(
        [
            sys.executable,
            "-m",
            "src.train",
            f"experiment={PHASE2_EXPERIMENT}",
            f"model.disentangle_ckpt={phase1}",
            *overrides,
        ],
        "phase 2 (reconstructed): the key-conditioned flow and the identity compensation, then the table",
    )
    run_dir = run_record(output)
    table = pd.read_csv(run_dir / "results.csv")
    print("\n## iFADIT on SyntheticFaces (synthetic data, stand-in networks, reconstructed training)\n")
    print(to_console(table))
    print(f"\nRun record: {run_dir} (grid of faces: {run_dir / 'plots' / 'test' / 'grid.png'})")
    print(f"Demo wall time: {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
