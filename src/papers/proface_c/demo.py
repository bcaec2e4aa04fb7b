"""PRO-Face C's CPU demo on SyntheticFaces (about 2.5 minutes): stand-in verification sets, a server, the
client trained against it, and the obfuscation x verification-set table.

``python -m src.papers.proface_c.demo [--fresh] [key=value ...]``

1. writes five synthetic verification sets in the real ``.bin`` format (held-out identities) under
   ``$PROFACE_DATA/demo_verification`` (:mod:`src.preprocess.verification_bins`);
2. trains the stand-in server S (``proface_c/demo_server``: a narrow AdaFace IR-18 on the synthetic training
   identities) and exports its network as ``demo_server.pth`` beside the sets (the paper's S is a published
   AdaFace IR-101, which a CPU demo cannot use);
3. trains and tests the client (``proface_c/demo_synthetic``; the overrides go to this run) and prints the
   table: the server on clear images, on obfuscated images alone, and compensated by the client.

Steps 1 and 2 are skipped when their files exist (``--fresh`` redoes them).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import pandas as pd

from src.preprocess.detection_demo import data_dir, demo_args, run_record, run_step, train_standin
from src.preprocess.verification_bins import STANDARD_SETS, synthetic_verification_sets
from src.utils.tables import to_console

SERVER_EXPERIMENT = "proface_c/demo_server"
EXPERIMENT = "proface_c/demo_synthetic"
IMAGE_SIZE = 32
SERVER_FILE = "demo_server.pth"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three steps and print the table."""
    overrides, fresh, start = demo_args(argv)
    root = data_dir() / "demo_verification"
    if fresh or not all((root / f"{name}.bin").is_file() for name in STANDARD_SETS):
        print(f"[demo] writing synthetic verification sets (.bin) to {root}", flush=True)
        synthetic_verification_sets(root, image_size=IMAGE_SIZE, pairs_per_fold=3)
    train_standin(
        SERVER_EXPERIMENT,
        root / SERVER_FILE,
        "training the stand-in server S (narrow AdaFace IR-18, synthetic identities)",
        fresh,
    )
    output = run_step(
        [sys.executable, "-m", "src.train", f"experiment={EXPERIMENT}", *overrides],
        "training the client A against the frozen server, then the verification table",
    )
    run_dir = run_record(output)
    table = pd.read_csv(run_dir / "results.csv")
    print(
        "\n## PRO-Face C on SyntheticFaces (synthetic data, stand-in server; 10-fold verification accuracy)\n"
    )
    print(to_console(table))
    print(f"\nRun record: {run_dir}")
    print(f"Demo wall time: {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
