"""The tables of ``python -m src.reproduce eg``: the demo (the synthetic deepfake videos of the detection
demos, preprocessed, then EG's reconstructed objective on a small CNN) and the paper rows (trained on FF++ c23
with self-blended fakes, tested on FF++ and cross-dataset on Celeb-DF v2)."""

from src.papers.preparations import DETECTION_DEMO_DATA
from src.papers.registry import CostUse, RowCost, TableRow, register_table

NETWORK = CostUse("EG (EfficientNet-B4 + frozen IResNet-18)", 380, ("infer", "fr_guidance"))

DATA = DETECTION_DEMO_DATA

register_table(
    "eg",
    "demo",
    [TableRow("demo_synthetic", "eg/demo_synthetic", prepare=(DATA,))],
    description="EG's reconstructed objective on a small CNN, tested on the four synthetic manipulations",
)
register_table(
    "eg",
    "paper",
    [
        TableRow("ffpp_c23", "eg/ffpp_c23", cost=RowCost((NETWORK,), "ffpp_c23_sbi")),
        TableRow(
            "celeb_df_v2",
            "eg/celeb_df_v2",
            task="eval",
            overrides=("ckpt_path={best_ckpt:ffpp_c23}",),
            cost=RowCost((NETWORK,), "celeb_df_v2"),
        ),
    ],
    description="trained on FF++ c23 (real frames + self-blends), tested on FF++ and on Celeb-DF v2",
    excluded={"eg/released_ffpp_raw": "evaluates the released weights: a check of the port"},
)
