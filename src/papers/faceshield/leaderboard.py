"""FaceShield on the cross-paper leaderboard (``python -m src.leaderboard``): its demo checkpoints (Stage I,
then Stage II on its extractor, both a few CPU steps on SyntheticFaces at 256 px, the smallest size the
renderer works at) and its contenders: the served method at three ε of the original's range, each with the
served default sampler (the authors' ``faceshield_repo``, whose ε is nominal: see its privacy record)."""

from __future__ import annotations

from src.papers.registry import LEADERBOARD_TABLE, Contender, TableRow, register_contenders, register_table

PAPER = METHOD = "faceshield"
#: the row whose selected checkpoint (a Stage II one) the leaderboard serves
SERVED_ROW = "stage2_irc"
#: ε values of the DP step: near-random identity (E[cos] 0.2), the transition (0.73), the original's default
EPSILONS = (1.0, 5.0, 30.0)

register_table(
    PAPER,
    LEADERBOARD_TABLE,
    [
        TableRow("stage1_fse", "faceshield/leaderboard_demo_fse"),
        TableRow(
            SERVED_ROW,
            "faceshield/leaderboard_demo_irc",
            overrides=("model.extractor_ckpt={best_ckpt:stage1_fse}",),
        ),
    ],
    description="leaderboard demo checkpoints: Stages I and II, a few steps each on SyntheticFaces at 256 px",
)
register_contenders(
    PAPER,
    *(
        Contender(METHOD, variant=f"eps={epsilon:g}", options={"epsilon": epsilon}, demo_row=SERVED_ROW)
        for epsilon in EPSILONS
    ),
)
