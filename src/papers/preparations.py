"""Preparation steps several papers' tables share: a network exported from an earlier row's checkpoint.

Papers whose demo trains a stand-in network first (a recognizer, an identity encoder, a server) export its
weights to a file their next experiment reads; :func:`network_export` is that step, written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from src.papers.registry import Preparation
from src.preprocess.detection_demo import data_dir, export_network

__all__ = ["network_export"]


def network_export(row: str, file: str | Path, what: str) -> Preparation:
    """A step writing the network of row ``row``'s selected checkpoint to ``<data dir>/<file>`` (done when
    that file exists); ``what`` names the network in plans and progress lines."""
    relative = Path(file)

    def export(run_dirs: Mapping[str, Path]) -> None:
        export_network(run_dirs[row], data_dir() / relative)

    return Preparation(
        f"export {what}",
        f"<data dir>/{relative.as_posix()}",
        export,
        lambda: (data_dir() / relative).is_file(),
        needs=(row,),
    )
