"""Preparation steps several papers' tables share: the synthetic deepfake data of the detection demos, and a
network exported from an earlier row's checkpoint.

The detection papers' demo (and leaderboard) rows read the same preprocessed synthetic videos
(:data:`DETECTION_DEMO_DATA`); papers whose demo trains a stand-in network first (a recognizer, an identity
encoder, a server) export its weights to a file their next experiment reads (:func:`network_export`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from src.papers.registry import Preparation
from src.preprocess.detection_demo import (
    DEMO_DATA,
    data_dir,
    demo_data_ready,
    export_network,
    prepare_demo_data,
)

__all__ = ["DETECTION_DEMO_DATA", "network_export"]

DETECTION_DEMO_DATA = Preparation(
    "synthetic deepfake videos (FF++ and Celeb-DF layouts), preprocessed",
    f"<data dir>/{DEMO_DATA}",
    prepare_demo_data,
    demo_data_ready,
)


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
