"""Makeup-privacy on the cross-paper leaderboard (``python -m src.leaderboard``): its demo checkpoint (the
demo's synthetic makeup data; the demo's stand-in recognizer trained for one epoch and exported to a file of
its own, so the demo's export is never overwritten; then the generator trained a few batches against it) and
its contender: the served method with its default reference (a rendered made-up face, offline)."""

from __future__ import annotations

from pathlib import Path

from src.papers.makeup_privacy.tables import DATA, FOLDER
from src.papers.preparations import network_export
from src.papers.registry import (
    LEADERBOARD_TABLE,
    Contender,
    TableRow,
    register_contenders,
    register_table,
)

PAPER = METHOD = "makeup_privacy"
#: the row whose selected checkpoint the leaderboard serves
SERVED_ROW = "generator"
#: where leaderboard_demo reads the stand-in (``model.recognizers.standin.weights``)
RECOGNIZER_FILE = Path(FOLDER) / "leaderboard_recognizer.pth"


RECOGNIZER = network_export("recognizer", RECOGNIZER_FILE, "the leaderboard's stand-in recognizer's network")

register_table(
    PAPER,
    LEADERBOARD_TABLE,
    [
        TableRow(
            "recognizer",
            "makeup_privacy/demo_recognizer",
            overrides=(
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=12",
                "trainer.limit_val_batches=2",
                "trainer.limit_test_batches=2",
            ),
            prepare=(DATA,),
        ),
        TableRow(SERVED_ROW, "makeup_privacy/leaderboard_demo", prepare=(RECOGNIZER,)),
    ],
    description="leaderboard demo checkpoint: a stand-in recognizer, then a few generator steps (synthetic)",
)
register_contenders(PAPER, Contender(METHOD, demo_row=SERVED_ROW))
