"""The Inspector's tables for ``python -m src.reproduce inspector``: the demo (the synthetic deepfake videos
of the detection demos, then the four stages and the robust-accuracy table) and the paper rows (the four
stages on FF++ c23, then the robust-accuracy protocol on FF++ and Celeb-DF v2)."""

from src.papers.preparations import DETECTION_DEMO_DATA
from src.papers.registry import CostUse, RowCost, TableRow, register_table

NETWORK = "Inspector (Xception D + reconstructor G + ResNet-18 A and C)"
DETECTOR = RowCost((CostUse(NETWORK, 299, ("detector",)),), "ffpp_c23")
DEFENCE = RowCost((CostUse(NETWORK, 299, ("defence",)),), "ffpp_c23")
#: (stage, the key that takes the previous stage's checkpoint)
STAGES = (
    ("stage1_detector", None),
    ("stage2_reconstructor", "model.detector_ckpt"),
    ("stage3_autothresh", "model.reconstructor_ckpt"),
    ("stage4_corrector", "model.autothresh_ckpt"),
)

DATA = DETECTION_DEMO_DATA


def _stages(prefix: str, demo: bool) -> list[TableRow]:
    rows, previous = [], None
    for stage, key in STAGES:
        chained = (f"{key}={{best_ckpt:{previous}}}",) if key and previous else ()
        rows.append(
            TableRow(
                stage,
                f"{prefix}{stage}",
                overrides=chained,
                prepare=(DATA,) if demo and previous is None else (),
                cost=None if demo else (DETECTOR if previous is None else DEFENCE),
            )
        )
        previous = stage
    return rows


register_table(
    "inspector",
    "demo",
    _stages("inspector/demo_synthetic/", demo=True),
    description="the four stages on synthetic deepfakes, then the robust-accuracy table",
)
register_table(
    "inspector",
    "paper",
    [
        *_stages("inspector/", demo=False),
        *(
            TableRow(
                f"robust_{data}",
                f"inspector/robust_{data}",
                task="eval",
                overrides=("ckpt_path={best_ckpt:stage4_corrector}",),
                cost=RowCost((CostUse(NETWORK, 299, ("defence",)),), data),
            )
            for data in ("ffpp_c23", "celeb_df_v2")
        ),
    ],
    description="the four stages on FF++ c23, then the robust-accuracy protocol on FF++ and Celeb-DF v2",
)
