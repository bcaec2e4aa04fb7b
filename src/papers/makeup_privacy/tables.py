"""Makeup-privacy's tables for ``python -m src.reproduce makeup_privacy``: the demo (synthetic makeup data, a
stand-in recognizer trained and exported, the generator, the 1:1 and 1:N tests) and the paper's rows (trained
on MT, tested 1:1 and 1:N on the test release)."""

from collections.abc import Mapping
from pathlib import Path

from src.papers.preparations import network_export
from src.papers.registry import CostUse, Preparation, RowCost, TableRow, register_table
from src.preprocess.detection_demo import data_dir
from src.preprocess.synthetic_makeup import write_synthetic_makeup_data

#: as the demo (``src.papers.makeup_privacy.demo``) writes them
FOLDER = "demo_makeup"
IMAGE_SIZE = 64


def _write_data(_: Mapping[str, Path]) -> None:
    write_synthetic_makeup_data(data_dir() / FOLDER, image_size=IMAGE_SIZE, progress=False)


DATA = Preparation(
    "synthetic makeup-transfer data",
    f"<data dir>/{FOLDER}",
    _write_data,
    lambda: (data_dir() / FOLDER / "synthetic_makeup.json").is_file(),
)
RECOGNIZER = network_export(
    "recognizer", Path(FOLDER) / "recognizer.pth", "the stand-in recognizer's network"
)
GENERATOR = CostUse("Makeup-privacy SPADE generator (ngf 128, two warped levels)", 256, ("infer",))
DISCRIMINATOR = CostUse("Makeup-privacy multiscale discriminator (2 PatchGANs, ndf 64)", 256, ("infer",))
TRAINED = ("ckpt_path={best_ckpt:mt_train}",)

register_table(
    "makeup_privacy",
    "demo",
    [
        TableRow("recognizer", "makeup_privacy/demo_recognizer", prepare=(DATA,)),
        TableRow("demo_synthetic", "makeup_privacy/demo_synthetic", prepare=(RECOGNIZER,)),
        TableRow(
            "test_pairs",
            "makeup_privacy/demo_test_pairs",
            task="eval",
            overrides=("ckpt_path={best_ckpt:demo_synthetic}",),
        ),
        TableRow(
            "test_1toN",
            "makeup_privacy/demo_test_1toN",
            task="eval",
            overrides=("ckpt_path={best_ckpt:demo_synthetic}",),
        ),
    ],
    description="synthetic makeup data, a stand-in recognizer, the generator, then 1:1 ASR and 1:N PSR",
)
register_table(
    "makeup_privacy",
    "paper",
    [
        TableRow(
            "mt_train", "makeup_privacy/mt_train", cost=RowCost((GENERATOR, DISCRIMINATOR), "mt_makeup")
        ),
        TableRow("celebahq_1to1", "makeup_privacy/celebahq_1to1", task="eval", overrides=TRAINED),
        TableRow(
            "celebahq_1to1_robustness",
            "makeup_privacy/celebahq_1to1_robustness",
            task="eval",
            overrides=TRAINED,
        ),
        TableRow("ladn_1to1", "makeup_privacy/ladn_1to1", task="eval", overrides=TRAINED),
        TableRow(
            "lfw_1toN",
            "makeup_privacy/lfw_1toN",
            task="eval",
            overrides=TRAINED,
            cost=RowCost((GENERATOR,), "one_to_n"),
        ),
        TableRow(
            "celeba_1toN",
            "makeup_privacy/celeba_1toN",
            task="eval",
            overrides=TRAINED,
            cost=RowCost((GENERATOR,), "one_to_n"),
        ),
    ],
    description="the generator trained on MT, then 1:1 impersonation and 1:N protection on the test release",
)
