"""PRO-Face C's tables for ``python -m src.reproduce proface_c``: the demo (synthetic verification sets, a
stand-in server trained and exported, then the client) and the paper's CelebA rows."""

from collections.abc import Mapping
from pathlib import Path

from src.papers.preparations import network_export
from src.papers.registry import CostUse, Preparation, RowCost, TableRow, register_table
from src.preprocess.detection_demo import data_dir
from src.preprocess.verification_bins import STANDARD_SETS, synthetic_verification_sets

#: as the demo (``src.papers.proface_c.demo``) writes them
IMAGE_SIZE = 32
FOLDER = "demo_verification"
SERVER_FILE = "demo_server.pth"


def _sets_ready() -> bool:
    return all((data_dir() / FOLDER / f"{name}.bin").is_file() for name in STANDARD_SETS)


def _write_sets(_: Mapping[str, Path]) -> None:
    synthetic_verification_sets(data_dir() / FOLDER, image_size=IMAGE_SIZE, pairs_per_fold=3)


SETS = Preparation(
    "synthetic verification sets (.bin)", f"<data dir>/{FOLDER}/*.bin", _write_sets, _sets_ready
)
SERVER = network_export("demo_server", Path(FOLDER) / SERVER_FILE, "the stand-in server's network")
COST = RowCost(
    (
        CostUse("PRO-Face C client A (MobileFaceNet body, interfaces, keys)", 112, ("infer",)),
        CostUse("PRO-Face C server S (AdaFace IR-101, compensated)", 112, ("infer",)),
    ),
    "celeba_with_verification",
)

register_table(
    "proface_c",
    "demo",
    [
        TableRow("demo_server", "proface_c/demo_server", prepare=(SETS,)),
        TableRow("demo_synthetic", "proface_c/demo_synthetic", prepare=(SERVER,)),
    ],
    description="a stand-in server on SyntheticFaces, then the client A against it (verification table)",
)
register_table(
    "proface_c",
    "paper",
    [
        TableRow("celeba_ir101", "proface_c/celeba_ir101", cost=COST),
        TableRow("celeba_ir50", "proface_c/celeba_ir50", cost=COST),
        TableRow(
            "transmission_8bit",
            "proface_c/transmission_8bit",
            task="eval",
            overrides=("ckpt_path={best_ckpt:celeba_ir101}",),
        ),
        TableRow(
            "transmission_4bit_pruned50",
            "proface_c/transmission_4bit_pruned50",
            task="eval",
            overrides=("ckpt_path={best_ckpt:celeba_ir101}",),
        ),
    ],
    description="the client trained against IR-101 and IR-50 servers on CelebA; compressed transmission rows",
    excluded={"proface_c/released_ir101": "evaluates the authors' released client: a check of the port"},
)
