"""PRO-Face on the cross-paper leaderboard (``python -m src.leaderboard``): the demo recognizer every paper's
leaderboard table shares, then PRO-Face for a few steps against it; served in its default configuration."""

from __future__ import annotations

from src.papers.registry import LEADERBOARD_TABLE, Contender, TableRow, register_contenders, register_table

PAPER = "proface"
#: the row whose selected checkpoint the demo leaderboard serves PRO-Face with
DEMO_ROW = "leaderboard_demo"

register_table(
    PAPER,
    LEADERBOARD_TABLE,
    [
        TableRow("recognizer", "demo/recognizer", overrides=("trainer.max_epochs=2",)),
        TableRow(
            DEMO_ROW,
            "proface/leaderboard_demo",
            overrides=("model.recognizer.path={best_ckpt:recognizer}",),
        ),
    ],
    description="demo checkpoints for the leaderboard: the demo recognizer, then PRO-Face (blur) for a few "
    "steps on SyntheticFaces",
)
register_contenders(PAPER, Contender(PAPER, demo_row=DEMO_ROW))
