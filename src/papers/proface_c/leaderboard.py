"""PRO-Face C on the cross-paper leaderboard (``python -m src.leaderboard``): as its demo table, a stand-in
server trained (one epoch) and exported, the synthetic verification sets, then the client for a few batches
against that server. Served in its default configuration: the ``hybrid`` evaluation obfuscation the client
sends (it needs no file beyond the checkpoint, which holds the server too)."""

from __future__ import annotations

from pathlib import Path

from src.papers.preparations import network_export
from src.papers.proface_c.tables import FOLDER, SETS
from src.papers.registry import (
    LEADERBOARD_TABLE,
    Contender,
    TableRow,
    register_contenders,
    register_table,
)

PAPER = "proface_c"
#: the row whose selected checkpoint the demo leaderboard serves PRO-Face C with
DEMO_ROW = "leaderboard_demo"
#: the stand-in server's export, apart from the demo's ``demo_server.pth`` (a shorter-trained network)
SERVER_FILE = "leaderboard_server.pth"
#: the demo's stand-in server experiment for one epoch instead of four (24 steps; a new recognizer experiment
#: file would belong to another paper's tables)
SERVER_OVERRIDES = ("trainer.max_epochs=1",)


SERVER = network_export("server", Path(FOLDER) / SERVER_FILE, "the leaderboard's stand-in server network")

register_table(
    PAPER,
    LEADERBOARD_TABLE,
    [
        TableRow("server", "proface_c/demo_server", overrides=SERVER_OVERRIDES),
        # the client's run reads the verification sets and the exported server
        TableRow(DEMO_ROW, "proface_c/leaderboard_demo", prepare=(SETS, SERVER)),
    ],
    description="demo checkpoints for the leaderboard: a stand-in server (one epoch), then the client A for "
    "a few batches, on SyntheticFaces at 32 px",
)
register_contenders(PAPER, Contender(PAPER, demo_row=DEMO_ROW))
