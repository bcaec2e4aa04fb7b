"""Evaluate a checkpoint: ``python -m src.eval experiment=<name> ckpt_path=<file> [key=value ...]``."""

import sys

from src.cli import main

if __name__ == "__main__":
    sys.exit(main("eval"))
