"""One test over every served method (timm-style): it loads through the SDK and works on a photo.

Trained methods get a tiny *untrained* checkpoint written the way training runs write them (weights plus the
embedded config of the method's experiment, shrunk by the paper's tiny settings); the SDK must rebuild the
method from it alone. Each method then protects (or scores) a SyntheticFaces photo in both face modes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from src.config.instantiate import instantiate
from src.datamodules.components.synthetic_face_renderer import render_synthetic_face
from src.papers.registry import METHOD_KINDS, METHODS, discover, served_targets
from src.sdk import Detector, NoFaceError, NotReversibleError, PasswordError, Protector, ServingError, load
from src.utils.checkpoint_files import CHECKPOINT_FORMAT, RECORD_KEY
from tests.helpers import composed, tiny_overrides

PAPERS = discover()
TRAINED = sorted(name for name, entry in METHODS.items() if entry.needs_checkpoint)
PHOTO_SIZE = 160


def photo(identity: int = 1) -> np.ndarray:
    """A SyntheticFaces photo in which MTCNN finds the face."""
    return render_synthetic_face(0, identity, 0, PHOTO_SIZE)


def write_tiny_checkpoint(name: str, folder: Path, required_values: dict[str, str]) -> Path:
    """A checkpoint of method ``name``'s experiment at tiny size, untrained, laid out like a run's."""
    experiment = METHODS[name].experiment
    assert experiment, f"method '{name}' needs a checkpoint but names no experiment to build one from"
    cfg = composed(experiment, tiny_overrides(experiment, folder / "runs", required_values))
    model = instantiate(cfg.model)
    path = folder / f"{name}.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "pytorch-lightning_version": pl.__version__,
            "epoch": 0,
            "global_step": 0,
            RECORD_KEY: {
                "format": CHECKPOINT_FORMAT,
                "config": OmegaConf.to_container(cfg, resolve=True),
                "experiment": experiment,
                "run_id": "tiny-test",
            },
        },
        path,
    )
    return path


def config_of(path: Path) -> dict:
    """The config embedded in a checkpoint file (a test's own file: read with full unpickling)."""
    return torch.load(path, map_location="cpu", weights_only=False)[RECORD_KEY]["config"]


def module_from_file(path: Path) -> pl.LightningModule:
    """The checkpoint's module rebuilt the trusted way (its config, strict weights): the reference a served
    method is compared with."""
    module = instantiate(OmegaConf.create(config_of(path)["model"]))
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["state_dict"])
    return module.eval()


def served(name: str, tmp_path: Path, required_values: dict[str, str]) -> Protector | Detector:
    ckpt = write_tiny_checkpoint(name, tmp_path, required_values) if METHODS[name].needs_checkpoint else None
    return load(name, ckpt=ckpt)


def test_every_paper_method_names_a_registered_paper() -> None:
    assert {"blur", "pixelate", "mask", "dp_pix"} <= set(METHODS)
    for name, entry in METHODS.items():
        assert entry.paper in PAPERS, name
        assert entry.kind in METHOD_KINDS and entry.summary, name
        assert entry.needs_checkpoint == (entry.experiment is not None), name
        known = PAPERS[entry.paper].targets
        assert set(served_targets(entry)) <= set(known), f"{name} serves targets its paper does not build"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_serves_a_photo(name: str, tmp_path: Path, required_values: dict[str, str]) -> None:
    method = served(name, tmp_path, required_values)
    assert method.describe()["name"] == name and method.describe()["kind"] == METHODS[name].kind
    image = photo()
    if isinstance(method, Detector):
        for mode in ("detect", "whole"):
            results = method.detect([image, image], faces=mode)
            assert len(results) == 2 and results[0].faces, (name, mode)
            score = results[0].score
            assert score is not None and 0.0 <= score <= 1.0, (name, mode, score)
            assert results[0].score == pytest.approx(results[1].score, abs=1e-5), "same image, same score"
        return
    assert isinstance(method, Protector)
    entry = METHODS[name]
    assert (method.reversible, method.needs_password) == (entry.reversible, entry.needs_password), name
    password = "correct horse" if method.needs_password else None
    for mode in ("detect", "whole"):
        result = method.protect([image], password=password, faces=mode)[0]
        assert result.image.shape == image.shape and result.image.dtype == np.uint8, (name, mode)
        assert not np.array_equal(result.image, image), f"{name} ({mode}) left the photo unchanged"
        assert result.privacy["method"] == name and result.privacy["faces"] == len(result.faces) == 1
        if mode == "detect":  # pixels far outside the face square are untouched
            assert np.array_equal(result.image[:2, :2], image[:2, :2]) or result.faces[0].top < 2
    if not method.reversible:
        with pytest.raises(NotReversibleError, match=name):
            method.recover([image], password=password)
    if method.needs_password:  # the password rules, on the same method (building one is the costly part)
        with pytest.raises(PasswordError, match="needs a password"):
            method.protect(image, password=None)
    else:
        with pytest.raises(PasswordError, match="takes no password"):
            method.protect(image, password="secret")


def test_a_photo_without_a_face_is_an_error_naming_it(tmp_path: Path) -> None:
    blank = np.full((96, 96, 3), 200, dtype=np.uint8)
    with pytest.raises(NoFaceError, match="image 0: no face found"):
        load("blur").protect(blank)


def test_unknown_method_and_missing_checkpoint_are_clear() -> None:
    with pytest.raises(ServingError, match="unknown method 'nope'; methods: .*blur"):
        load("nope")
    with pytest.raises(ServingError, match="needs no checkpoint"):
        load("blur", ckpt=__file__)  # refused before the file is even read as a checkpoint
    for name in TRAINED:
        with pytest.raises(ServingError, match=f"method '{name}' needs a trained checkpoint"):
            load(name)
