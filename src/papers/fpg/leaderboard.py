"""How FPG enters the cross-paper leaderboard (``python -m src.leaderboard``): its detector judges protected
faces (the fraction it flags as fake), served by the ``fpg`` method from the checkpoint of the
``leaderboard`` table's row.

That row trains the demo panel's checkpoint: EfficientNet-B4 (random init) at 64 px with FPG's refinements,
a few steps on the synthetic detection data (prepared as the demo table prepares it); its numbers say nothing
about the paper.
"""

from __future__ import annotations

from src.papers.fpg.tables import DATA
from src.papers.registry import (
    LEADERBOARD_TABLE,
    ForgeryJudge,
    TableRow,
    register_forgery_judges,
    register_table,
)

PAPER = "fpg"
ROW = "fpg"

register_table(
    PAPER,
    LEADERBOARD_TABLE,
    [TableRow(ROW, "fpg/leaderboard_demo", prepare=(DATA,))],
    description="leaderboard judge: FPG, a few steps on synthetic deepfakes at 64 px (a demo checkpoint, "
    "not the paper's numbers)",
)
register_forgery_judges(PAPER, ForgeryJudge("fpg", "fpg", "FPG", demo_row=ROW))
