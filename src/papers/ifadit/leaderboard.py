"""iFADIT on the cross-paper leaderboard (``python -m src.leaderboard``): its demo checkpoints (the demo's
stand-in identity encoder trained for one epoch and exported to a file of its own, so the demo's export is
never overwritten; then phases 1 and 2, a few CPU steps each on SyntheticFaces at 32 px) and its contender:
the served method, reversible with a password (the leaderboard judges recovery with the right and a wrong
one)."""

from __future__ import annotations

from pathlib import Path

from src.papers.preparations import network_export
from src.papers.registry import (
    LEADERBOARD_TABLE,
    Contender,
    TableRow,
    register_contenders,
    register_table,
)

PAPER = METHOD = "ifadit"
#: the row whose selected checkpoint (a phase-2 one) the leaderboard serves
SERVED_ROW = "phase2"
#: where the leaderboard's phases read the stand-in identity encoder (``model.identity_recognizer.weights``)
ENCODER_FILE = Path("demo_ifadit") / "leaderboard_identity_encoder.pth"


ENCODER = network_export(
    "identity_encoder", ENCODER_FILE, "the leaderboard's stand-in identity encoder's network"
)

register_table(
    PAPER,
    LEADERBOARD_TABLE,
    [
        TableRow(
            "identity_encoder",
            "ifadit/demo_identity_encoder",
            overrides=("trainer.max_epochs=1", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"),
        ),
        TableRow("phase1", "ifadit/leaderboard_demo_phase1", prepare=(ENCODER,)),
        TableRow(
            SERVED_ROW,
            "ifadit/leaderboard_demo_phase2",
            overrides=("model.disentangle_ckpt={best_ckpt:phase1}",),
        ),
    ],
    description="leaderboard demo checkpoints: a stand-in identity encoder, then phases 1 and 2 (synthetic)",
)
register_contenders(PAPER, Contender(METHOD, demo_row=SERVED_ROW))
