"""How EG enters the cross-paper leaderboard (``python -m src.leaderboard``): its detector judges protected
faces (the fraction it flags as fake), served by the ``eg`` method from the checkpoint of the ``leaderboard``
table's row.

That row trains the demo panel's checkpoint: EfficientNet-B4 (random init) at 32 px with the demo's frozen
dlib recognizer, a few steps on the synthetic detection data (prepared as the demo table prepares it); its
numbers say nothing about the paper.
"""

from __future__ import annotations

from src.papers.eg.tables import DATA
from src.papers.registry import (
    LEADERBOARD_TABLE,
    ForgeryJudge,
    TableRow,
    register_forgery_judges,
    register_table,
)

PAPER = "eg"
ROW = "eg"

register_table(
    PAPER,
    LEADERBOARD_TABLE,
    [TableRow(ROW, "eg/leaderboard_demo", prepare=(DATA,))],
    description="leaderboard judge: EG, a few steps on synthetic deepfakes at 32 px (a demo checkpoint, "
    "not the paper's numbers)",
)
register_forgery_judges(PAPER, ForgeryJudge("eg", "eg", "EG", demo_row=ROW))
