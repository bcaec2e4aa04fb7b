"""The tables of ``python -m src.reproduce fpg``: the demo (the synthetic deepfake videos of the detection
demos, preprocessed, then FPG's refinement and separation on a small CNN) and the paper rows (trained on
FF++ c23 with self-blended fakes, tested on FF++ and cross-dataset on Celeb-DF v2)."""

from src.papers.preparations import DETECTION_DEMO_DATA
from src.papers.registry import CostUse, RowCost, TableRow, register_table

NETWORK = CostUse("FPG (EfficientNet-B4 + irregularity branch, attention, quality head)", 380, ("infer",))

DATA = DETECTION_DEMO_DATA

register_table(
    "fpg",
    "demo",
    [TableRow("demo_synthetic", "fpg/demo_synthetic", prepare=(DATA,))],
    description="FPG's refinement and separation on a small CNN, tested on the four synthetic manipulations",
)
register_table(
    "fpg",
    "paper",
    [
        TableRow("ffpp_c23", "fpg/ffpp_c23", cost=RowCost((NETWORK,), "ffpp_c23_sbi")),
        TableRow(
            "celeb_df_v2",
            "fpg/celeb_df_v2",
            task="eval",
            overrides=("ckpt_path={best_ckpt:ffpp_c23}",),
            cost=RowCost((NETWORK,), "celeb_df_v2"),
        ),
    ],
    description="trained on FF++ c23 (real frames + self-blends), tested on FF++ and on Celeb-DF v2",
)
