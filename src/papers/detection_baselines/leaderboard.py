"""How the detection baselines enter the cross-paper leaderboard (``python -m src.leaderboard``): Xception,
EfficientNet-B4 and SBI judge protected faces (the fraction they flag as fake), each served by the
``detection_baselines`` detector from the checkpoint of a row of the ``leaderboard`` table.

The table's rows train those checkpoints for the demo panel: the real backbones (random init) at 32 px, a few
steps on the synthetic detection data (prepared as the demo table prepares it); their numbers say nothing
about the paper.
"""

from __future__ import annotations

from src.papers.detection_baselines.tables import DATA
from src.papers.registry import (
    LEADERBOARD_TABLE,
    ForgeryJudge,
    TableRow,
    register_forgery_judges,
    register_table,
)

PAPER = "detection_baselines"
METHOD = "detection_baselines"
#: judge name → its label in tables (each also names its row and its experiment file)
JUDGES = {"xception": "Xception", "efficientnet_b4": "EfficientNet-B4", "sbi": "SBI"}

register_table(
    PAPER,
    LEADERBOARD_TABLE,
    [TableRow(name, f"{PAPER}/leaderboard_demo_{name}", prepare=(DATA,)) for name in JUDGES],
    description="leaderboard judges: Xception, EfficientNet-B4 and SBI, a few steps each on synthetic "
    "deepfakes at 32 px (demo checkpoints, not the paper's numbers)",
)
register_forgery_judges(
    PAPER, *(ForgeryJudge(name, METHOD, label, demo_row=name) for name, label in JUDGES.items())
)
