"""PRO-Face's tables for ``python -m src.reproduce proface``: the demo (the demo recognizer, then PRO-Face on
SyntheticFaces against it) and the paper's CelebA table (4 obfuscations x 5 recognizers, each trained)."""

from src.papers.registry import CostUse, RowCost, TableRow, register_table

OBFUSCATIONS = ("blur_31_2_8", "pixelate_7", "faceshifter", "simswap")
RECOGNIZERS = ("IResNet50", "IResNet100", "SEResNet50", "MobileFaceNet", "InceptionResNet")
#: the face-swap rows run at 224 px (the cost entry's "SimSwap-row size"), the others at the run size
SIZES = {"faceshifter": 224, "simswap": 224}


def _row(obfuscation: str, recognizer: str) -> TableRow:
    size = SIZES.get(obfuscation, 112)
    return TableRow(
        f"{obfuscation}/{recognizer}",
        f"proface/celeba/{obfuscation}/{recognizer}",
        cost=RowCost((CostUse("PRO-Face", size, ("protect",)),), "celeba"),
    )


register_table(
    "proface",
    "demo",
    [
        TableRow("recognizer", "demo/recognizer"),
        TableRow(
            "demo_synthetic",
            "proface/demo_synthetic",
            overrides=("model.recognizer.path={best_ckpt:recognizer}",),
        ),
    ],
    description="PRO-Face on SyntheticFaces (blur), the demo recognizer as its frozen recognizer",
)
register_table(
    "proface",
    "paper",
    [_row(obfuscation, recognizer) for obfuscation in OBFUSCATIONS for recognizer in RECOGNIZERS],
    description="the CelebA table: every obfuscation x recognizer, trained and tested",
    excluded={
        f"proface/released/{data}/{obfuscation}/{recognizer}": (
            "evaluates the authors' released weights (python -m src.eval): a check of the port, not a "
            "reproduction by training"
        )
        for data in ("celeba", "lfw", "vggface2")
        for obfuscation in OBFUSCATIONS
        for recognizer in RECOGNIZERS
    },
)
