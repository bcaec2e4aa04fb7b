"""Train (and test) an experiment: ``python -m src.train experiment=<name> [key=value ...]``."""

import sys

from src.cli import main

if __name__ == "__main__":
    sys.exit(main("train"))
