"""The demo: (a) train a small recognizer on SyntheticFaces, (b) evaluate obfuscation baselines with it.

``python -m src.demo [key=value ...]`` — overrides apply to both steps (e.g. ``logger=none``). Prints the
results table as markdown and where both run records are.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from src.config.compose import compose
from src.config.errors import ConfigError
from src.tasks import run
from src.utils.run_record import read_json
from src.utils.tables import to_console

RECOGNIZER = "demo/recognizer"
BASELINES = "demo/obfuscation_baselines"


def main(argv: Sequence[str] | None = None) -> int:
    """Run both demo steps and print the table."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("WANDB_SILENT", "true")  # the table, not W&B's run summary, is the demo's output
    start = time.perf_counter()
    print(
        f"[demo 1/2] training a face recognizer on SyntheticFaces (synthetic data): {RECOGNIZER}", flush=True
    )
    trained = run(compose(RECOGNIZER, overrides).config, overrides, task="train")
    checkpoint = read_json(trained.run_dir / "summary.json").get("best_checkpoint")
    if not checkpoint:
        raise ConfigError(f"the recognizer run {trained.run_dir} saved no checkpoint")
    print(f"[demo 2/2] obfuscation baselines judged by {checkpoint}", flush=True)
    eval_overrides = [*overrides, f"model.recognizer_ckpt={checkpoint}"]
    evaluated = run(compose(BASELINES, eval_overrides).config, eval_overrides, task="eval")
    minutes = (time.perf_counter() - start) / 60
    print(
        "\n## Obfuscation baselines on SyntheticFaces (synthetic data; test identities unseen in training)\n"
    )
    rank1 = trained.metrics.get("test/rank1", float("nan"))
    accuracy = trained.metrics.get("test/verif_acc", float("nan"))
    print(f"Recognizer on clean test images: rank-1 {rank1:.4f}, verification accuracy {accuracy:.4f}\n")
    if evaluated.table is not None:
        print(to_console(evaluated.table))
    print(f"\nRun records:\n  (a) {trained.run_dir}\n  (b) {evaluated.run_dir}")
    print(f"Demo wall time: {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
