"""One leaderboard across papers: ``python -m src.leaderboard [--panel demo] [--methods ...] [key=value]``.

Every registered protection method (in each configuration its paper registers, e.g. several DP ε) and the
baselines are judged by one panel on the same faces: utility (SSIM, PSNR, LPIPS, face detection, landmarks),
privacy against recognizers not used in the method's training, an adaptive "parrot" attacker, recovery with
the right and a wrong key (reversible methods), and the forgery detectors' flags. Writes
``reports/leaderboard.{md,csv,html}`` and the Pareto plots; every number is kept in a run record under
``<runs>/leaderboard/<panel>/``, so running again computes only what is missing (``--force``: everything).

``--panel demo`` (with ``--train-demo``, the default of that panel) trains CPU-sized demo checkpoints on
synthetic data first. Exit codes: 0 written (contenders without a checkpoint are listed as such), 2 bad
arguments or panel. See docs/leaderboard.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from src.config.errors import ConfigError
from src.config.resolvers import PROJECT_ROOT
from src.leaderboarding.board import run_leaderboard
from src.leaderboarding.contenders import all_contenders, all_judges
from src.leaderboarding.panel import load_panel, panel_names
from src.utils.tables import to_console


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.leaderboard", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument(
        "--panel", default="demo", help=f"a panel ({', '.join(panel_names())}) or a .yaml path"
    )
    parser.add_argument(
        "--methods", help="comma-separated contender ids or method names (default: the panel's)"
    )
    parser.add_argument("--judges", help="comma-separated forgery judges (default: the panel's)")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="ID=FILE",
        help="a contender's or judge's checkpoint",
    )
    parser.add_argument(
        "--runs", type=Path, help="take contenders' checkpoints from the runs under this folder"
    )
    train = parser.add_mutually_exclusive_group()
    train.add_argument("--train-demo", dest="train_demo", action="store_true", default=None)
    train.add_argument("--no-train-demo", dest="train_demo", action="store_false")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports", help="where leaderboard.* go")
    parser.add_argument("--force", action="store_true", help="recompute every part (and rerun demo rows)")
    parser.add_argument("--list", action="store_true", help="list contenders, judges and panels, run nothing")
    parser.add_argument("overrides", nargs="*", help="panel key=value overrides (e.g. data.images=64)")
    return parser


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [item.strip() for item in value.split(",") if item.strip()]


def _checkpoints(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, path = item.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise ConfigError(f"--checkpoint {item!r}: expected ID=FILE (e.g. <method>=runs/.../best.ckpt)")
        out[key.strip()] = path.strip()
    return out


def list_entrants() -> None:
    """Print every contender, forgery judge and panel."""
    print("contenders:")
    for entrant in all_contenders():
        print(f"  {entrant.id:<28} {entrant.paper}")
    print("forgery judges:")
    for paper, judge in all_judges():
        print(f"  {judge.name:<28} {judge.label} ({paper})")
    print(f"panels: {', '.join(panel_names())}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; see the module docstring for the exit codes."""
    args = _parser().parse_intermixed_args(argv)
    os.environ.setdefault("WANDB_SILENT", "true")
    if args.list:
        list_entrants()
        return 0
    try:
        panel = load_panel(args.panel, args.overrides)
        result = run_leaderboard(
            panel,
            runs_root=Path(os.environ.get("PROFACE_RUNS", PROJECT_ROOT / "runs")).expanduser().resolve(),
            out=args.out,
            methods=_names(args.methods),
            judges=_names(args.judges),
            checkpoints=_checkpoints(args.checkpoint),
            runs=args.runs,
            train_demo=args.train_demo,
            force=args.force,
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shown = [c for c in ("method id", "status", "SSIM", "privacy", "parrot gain") if c in result.table]
    print(to_console(result.table[shown]))
    for kind, path in result.files.items():
        print(f"  {kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
