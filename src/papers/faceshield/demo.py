"""FaceShield's CPU demo: the ε sweep on SyntheticFaces, then what the ε of each sampler is worth.

``python -m src.papers.faceshield.demo [key=value ...]`` evaluates ``faceshield/demo_synthetic`` (3 samplers ×
5 ε and three baselines, untrained networks at half size: about a minute) and prints

1. the sweep table: nominal / certified ε, audited δ, the released identity's cosine to the true one
   (``released_cos``: utility of the DP step, which falls as ε falls), image metrics and dlib's identity
   cosine (both from untrained networks here: plumbing, not FaceShield's quality);
2. the closed form of the authors' sampler's E[cos θ] against the mean of 10⁴ draws at d = 512;
3. the privacy audit written to the run record (``privacy_audit.md``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from src.papers.faceshield.audit_report import closed_form_check
from src.utils.tables import to_console

EXPERIMENT = "faceshield/demo_synthetic"
EPSILONS = (0.1, 1.0, 5.0, 10.0, 30.0)
#: the sweep table's columns, in order (the full table is in the run record's results.md)
COLUMNS = (
    "variant",
    "semantics",
    "ε nominal",
    "ε certified",
    "δ audited",
    "released_cos",
    "ssim",
    "psnr",
    "dlib id_cos",
    "dlib rank1",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo sweep and print its tables."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("WANDB_SILENT", "true")
    start = time.perf_counter()
    print(f"[faceshield demo] evaluating {EXPERIMENT} (synthetic faces, untrained networks)", flush=True)
    # the evaluation CLI runs it (a paper package sits below the run driver, so it does not import it)
    command = [sys.executable, "-m", "src.eval", f"experiment={EXPERIMENT}", *overrides]
    finished = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    found = re.findall(r"^Run record: (.+)$", finished.stdout, flags=re.MULTILINE)
    if finished.returncode != 0 or not found:
        print(finished.stdout[-4000:], file=sys.stderr)
        print(f"[faceshield demo] the evaluation failed (exit {finished.returncode})", file=sys.stderr)
        return finished.returncode or 1
    run_dir = Path(found[-1].strip())
    table = pd.read_csv(run_dir / "results.csv")
    print("\n## FaceShield ε sweep on SyntheticFaces (synthetic data, UNTRAINED networks)\n")
    print(to_console(table[[c for c in COLUMNS if c in table.columns]]))
    print("\n## The authors' sampler: E[cos θ] in closed form vs 10⁴ draws at d = 512\n")
    print(to_console(pd.DataFrame([closed_form_check(eps) for eps in EPSILONS])))
    audit = run_dir / "privacy_audit.md"
    if audit.is_file():
        print("\n" + audit.read_text(encoding="utf-8").split("\n", 2)[2])
    print(f"Run record: {run_dir}")
    print(f"Demo wall time: {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
