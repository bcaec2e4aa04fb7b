"""Obfuscation baselines: zoo recognizers (dlib on real-face experiments) and the dataset's own pair list."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.datamodules.lfw import LFWDataModule
from src.networks.recognizers import build_recognizer
from src.obfuscators import GaussianBlur, Identity
from src.papers.obfuscation_baselines.module import ObfuscationBaselinesModule
from tests.fixtures_datasets import make_lfw
from tests.helpers import run_experiment, tiny_overrides

FOLDS, PER_FOLD = 3, 2


def lfw_chips(root: Path) -> Path:
    """An LFW copy whose image folder holds 150-px 'chips' (random pixels) and a 3-fold pairs.txt."""
    people = {f"Person_{i:02d}": 3 for i in range(2 * FOLDS)}
    lines = [f"{FOLDS}\t{PER_FOLD}"]
    for fold in range(FOLDS):
        a, b = f"Person_{2 * fold:02d}", f"Person_{2 * fold + 1:02d}"
        lines += [f"{a}\t1\t{2 + k}" for k in range(PER_FOLD)]
        lines += [f"{a}\t{1 + k}\t{b}\t{3 - k}" for k in range(PER_FOLD)]
    return make_lfw(root, people, lines, image_dir="lfw_dlib150", size=150)


def test_lfw_dlib_experiment_scores_the_official_pairs_with_dlib(tmp_path: Path) -> None:
    """The real-face experiment embeds with dlib's ResNet and scores exactly pairs.txt, fold by fold."""
    root = lfw_chips(tmp_path / "lfw")
    experiment = "obfuscation_baselines/lfw_dlib"
    overrides = tiny_overrides(experiment, tmp_path / "runs")
    overrides += [f"datamodule.root={root}", "datamodule.image_dir=lfw_dlib150", "datamodule.batch_size=7"]
    result = run_experiment(experiment, overrides, task="eval")
    clean = result.table.set_index("obfuscator").loc["none"]

    # Independent recomputation: the datamodule's images and official pairs, embedded with the dlib port.
    dm = LFWDataModule(str(root), image_size=150, image_dir="lfw_dlib150", eval_protocol="images")
    dm.setup("test")
    images = torch.stack([dm.image_dataset("test")[i]["image"] for i in range(len(dm.image_dataset("test")))])
    dlib = build_recognizer("dlib_resnet")
    with torch.no_grad():
        emb = torch.nn.functional.normalize(dlib(images), dim=1)
    pairs = dm.pair_list("test")
    assert len(pairs) == 2 * FOLDS * PER_FOLD and pairs.num_folds == FOLDS
    scores = (emb[pairs.index_a] * emb[pairs.index_b]).sum(dim=1).numpy()
    assert clean["genuine_cos"] == pytest.approx(float(scores[pairs.is_same].mean()), abs=1e-5)
    assert clean["impostor_cos"] == pytest.approx(float(scores[~pairs.is_same].mean()), abs=1e-5)
    assert clean["psnr"] == pytest.approx(100.0)


def _obfuscators() -> dict[str, torch.nn.Module]:
    return {"none": Identity(), "blur": GaussianBlur(kernel_size=5, sigma_range=(1.0, 2.0), eval_sigma=1.5)}


def test_exactly_one_recognizer_source_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one of model.recognizer_ckpt .* got neither"):
        ObfuscationBaselinesModule(_obfuscators())
    with pytest.raises(ValueError, match="got both"):
        ObfuscationBaselinesModule(
            _obfuscators(), recognizer_ckpt=str(tmp_path / "x.ckpt"), recognizer=torch.nn.Identity()
        )
    with pytest.raises(ValueError, match="model.pairs must be one of"):
        ObfuscationBaselinesModule(_obfuscators(), recognizer=torch.nn.Identity(), pairs="official")


def test_dataset_pairs_need_a_datamodule_with_a_pair_list(tmp_path: Path) -> None:
    experiment = "demo/obfuscation_baselines"
    overrides = tiny_overrides(experiment, tmp_path / "runs", {"model.recognizer_ckpt": "x"})
    overrides += [
        "model.recognizer_ckpt=null",
        "+model.recognizer._target_=torch.nn.Flatten",
        "model.pairs=dataset",
    ]
    with pytest.raises(ValueError, match="model.pairs=dataset needs a DataModule with a verification pair"):
        run_experiment(experiment, overrides, task="eval")


def test_dataset_pairs_refuse_a_cut_test_set(tmp_path: Path) -> None:
    root = lfw_chips(tmp_path / "lfw")
    experiment = "obfuscation_baselines/lfw_dlib"
    overrides = tiny_overrides(experiment, tmp_path / "runs")
    overrides += [
        f"datamodule.root={root}",
        "datamodule.image_dir=lfw_dlib150",
        "datamodule.batch_size=4",
        "trainer.limit_test_batches=1",
    ]
    with pytest.raises(ValueError, match="test image\\(s\\) of the pair list were not evaluated"):
        run_experiment(experiment, overrides, task="eval")
