"""The detection baselines' tables for ``python -m src.reproduce detection_baselines``: the demo (synthetic
deepfake videos, preprocessed; a small CNN trained and tested within, cross-manipulation and cross-dataset;
SBI) and the paper rows (Xception, EfficientNet-B4 and SBI trained on FF++ c23, tested on FF++ and
Celeb-DF)."""

from src.papers.preparations import DETECTION_DEMO_DATA
from src.papers.registry import CostUse, RowCost, TableRow, register_table

DEMO = "detection_baselines/demo_synthetic"

DATA = DETECTION_DEMO_DATA
XCEPTION = CostUse("Xception", 299, ("infer",))
EFFICIENTNET = CostUse("EfficientNet-B4", 380, ("infer",))


def _pair(name: str, cost: CostUse, train_data: str) -> list[TableRow]:
    return [
        TableRow(
            f"{name}/ffpp_c23", f"detection_baselines/{name}/ffpp_c23", cost=RowCost((cost,), train_data)
        ),
        TableRow(
            f"{name}/celeb_df_v2",
            f"detection_baselines/{name}/celeb_df_v2",
            task="eval",
            overrides=(f"ckpt_path={{best_ckpt:{name}/ffpp_c23}}",),
            cost=RowCost((cost,), "celeb_df_v2"),
        ),
    ]


register_table(
    "detection_baselines",
    "demo",
    [
        TableRow("demo_synthetic", DEMO, prepare=(DATA,)),
        TableRow(
            "cross_manipulation",
            f"{DEMO}_cross_manipulation",
            task="eval",
            overrides=("ckpt_path={best_ckpt:demo_synthetic}",),
        ),
        TableRow(
            "cross_dataset",
            f"{DEMO}_cross_dataset",
            task="eval",
            overrides=("ckpt_path={best_ckpt:demo_synthetic}",),
        ),
        TableRow("demo_synthetic_sbi", f"{DEMO}_sbi", prepare=(DATA,)),
    ],
    description="synthetic deepfakes: a small CNN within / cross-manipulation / cross-dataset, and SBI",
)
register_table(
    "detection_baselines",
    "paper",
    [
        *_pair("xception", XCEPTION, "ffpp_c23"),
        *_pair("efficientnet_b4", EFFICIENTNET, "ffpp_c23"),
        *_pair("sbi", EFFICIENTNET, "ffpp_c23_sbi"),
    ],
    description="Xception, EfficientNet-B4 and SBI trained on FF++ c23, tested on FF++ and Celeb-DF v2",
)
