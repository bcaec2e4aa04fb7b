"""PRO-Face S on the cross-paper leaderboard (``python -m src.leaderboard``): a few steps of its demo on
SyntheticFaces; served in its default configuration (blur, the first evaluation setting), reversible with
a password, so the leaderboard also judges recovery with the right and a wrong password."""

from __future__ import annotations

from src.papers.registry import LEADERBOARD_TABLE, Contender, TableRow, register_contenders, register_table

PAPER = "proface_s"
#: the row whose selected checkpoint the demo leaderboard serves PRO-Face S with
DEMO_ROW = "leaderboard_demo"

register_table(
    PAPER,
    LEADERBOARD_TABLE,
    [TableRow(DEMO_ROW, "proface_s/leaderboard_demo")],
    description="demo checkpoint for the leaderboard: PRO-Face S for a few steps on SyntheticFaces at 32 px",
)
register_contenders(PAPER, Contender(PAPER, demo_row=DEMO_ROW))
