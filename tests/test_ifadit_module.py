"""iFADIT's LightningModules on tiny random networks: the parts fit, phase 2 reads phase 1's checkpoint
strictly, one training step moves only what the phase trains, and evaluation is reproducible per batch."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from src.config.errors import ConfigError
from src.face.face_hulls import hull_mask
from src.networks.recognizers.irse import psp_identity_crop
from src.papers.ifadit.masks import EllipseMask, LandmarkMask
from src.papers.ifadit.module import IFaditDisentangle, IFaditFlow
from src.papers.ifadit.networks import IdentityCompensation, IdentityFlow, LatentMapper
from src.papers.ifadit.pipeline import identity_crop
from src.papers.ifadit.report import flow_table, paper_table
from src.papers.ifadit.settings import TINY_SIZE, tiny_networks, write_tiny_phase1
from src.utils.checkpoint_files import write_weights_checkpoint


@pytest.fixture(scope="module")
def phase1_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_phase1(tmp_path_factory.mktemp("ifadit") / "phase1.ckpt")


def phase2(phase1_ckpt: Path | None, **kwargs) -> IFaditFlow:
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = tiny_networks()
    options = {"masker": EllipseMask(), "compensation": IdentityCompensation()} | kwargs
    return IFaditFlow(
        **parts, flow=IdentityFlow(), disentangle_ckpt=phase1_ckpt and str(phase1_ckpt), **options
    )


def batch(n: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return {"image": torch.rand(n, 3, TINY_SIZE, TINY_SIZE, generator=g), "index": torch.arange(n) + 10}


def test_identity_crop_is_psps_at_256_and_scales_with_the_image() -> None:
    images = torch.rand(2, 3, 256, 256)
    assert torch.equal(identity_crop(images, 112), psp_identity_crop(images))
    small = torch.zeros(1, 1, 64, 64)
    small[..., 9:56, 8:55] = 1.0  # the same box at 64 px: rows 35/256..223/256, cols 32/256..220/256
    assert torch.allclose(identity_crop(small, 16), torch.ones(1, 1, 16, 16))


def test_masks_from_landmarks_and_ellipse() -> None:
    angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    points = np.stack([16 + 9 * np.cos(angle), 17 + 11 * np.sin(angle)], 1).astype(np.float32)
    images = torch.rand(2, 3, 32, 32)
    landmarks = torch.from_numpy(np.stack([points, points + 2]))
    masks = LandmarkMask("facehull")({"image": images, "landmarks": landmarks})
    assert masks.shape == (2, 1, 32, 32)
    assert np.array_equal(masks[1, 0].numpy(), hull_mask("facehull", points + 2, 32, 32))
    bad = landmarks.clone()
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match="image 11 of the batch has no landmarks"):
        LandmarkMask()({"image": images, "landmarks": bad, "index": torch.tensor([10, 11])})
    with pytest.raises(ValueError, match="datamodule.return_landmarks=true"):
        LandmarkMask()({"image": images})
    ellipse = EllipseMask(center=(0.5, 0.5), axes=(0.25, 0.5))({"image": images})[0, 0]
    assert ellipse[16, 16] == 1 and ellipse[16, 3] == 0 and ellipse[1, 16] == 1 and ellipse[16, 24] == 0


def test_phase2_refuses_parts_that_do_not_fit(phase1_ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="disentangle_ckpt=<phase-1 checkpoint>"):
        phase2(None)
    with pytest.raises(ConfigError, match="not both"):
        phase2(phase1_ckpt, attribute_weights="a.pth", mapper_weights="m.pth")
    with pytest.raises(ConfigError, match="loss_weights.compensation=0"):
        phase2(phase1_ckpt, compensation=None)
    with pytest.raises(ConfigError, match="model.mapper.attribute_dim=128"):
        parts = tiny_networks()
        IFaditFlow(**{**parts, "mapper": LatentMapper()}, flow=IdentityFlow(), masker=EllipseMask())
    with pytest.raises(ConfigError, match="model.compensation_weights too"):
        phase2(phase1_ckpt, flow_weights="G_net.pth")  # the released flow with a random ICL: refused
    with pytest.raises(ConfigError, match="recover_onto"):
        phase2(phase1_ckpt, recover_onto="elsewhere")


def test_phase2_reads_phase1_parts_strictly(phase1_ckpt: Path, tmp_path: Path) -> None:
    module = phase2(phase1_ckpt)
    saved = torch.load(phase1_ckpt, weights_only=True)["state_dict"]
    for name, value in module.attribute_encoder.state_dict().items():
        assert torch.equal(value, saved[f"attribute_encoder.{name}"])
    assert torch.equal(module.generator.input.input, saved["generator.input.input"])
    assert all(not p.requires_grad for p in module.attribute_encoder.parameters())
    table = module.results_table({"test/recovered/psnr": 30.0})
    assert table.loc[0, "training"].startswith("reconstructed") and table.loc[1, "PSNR"] == 30.0
    other = write_weights_checkpoint(IdentityFlow(), tmp_path / "flow_only.ckpt")
    with pytest.raises(ConfigError, match="holds no 'attribute_encoder.\\*' weights"):
        phase2(other)


def test_one_step_of_each_phase_trains_only_its_networks(phase1_ckpt: Path) -> None:
    module = phase2(phase1_ckpt)
    frozen = {
        k: v.clone() for k, v in module.state_dict().items() if not k.startswith(("flow.", "compensation."))
    }
    optimizer = module.configure_optimizers()
    module.train()  # as Lightning does; the frozen parts go back to eval mode at the epoch start
    module.on_train_epoch_start()
    loss = module.training_step(batch(), 0)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in frozen.items())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = tiny_networks()
    disentangle = IFaditDisentangle(**parts, masker=EllipseMask(), loss_weights={"lpips": 0.0})
    trained = {id(p) for group in disentangle.configure_optimizers().param_groups for p in group["params"]}
    owners = {id(p): name.split(".")[0] for name, p in disentangle.named_parameters() if id(p) in trained}
    assert set(owners.values()) == {"attribute_encoder", "mapper"}  # E_id and G stay frozen
    assert torch.isfinite(disentangle.training_step(batch(), 0))


def test_evaluation_is_reproducible_and_keeps_the_outside_of_the_mask(phase1_ckpt: Path) -> None:
    small = EllipseMask(center=(0.5, 0.5), axes=(0.15, 0.15))  # grown and feathered: off rows 0-1
    module = phase2(phase1_ckpt, recover_onto="original", masker=small).eval()
    with torch.no_grad():
        first, grid = module.evaluate_batch(batch())
        again, _ = module.evaluate_batch(batch())
    assert all(torch.equal(first[k], again[k]) for k in first)  # keys from key_seed and the batch's index
    assert set(grid) == {"original", "key 1", "key 2", "recovered (key 1)", "wrong key (key 2)"}
    outside = grid["original"][..., :2, :]  # far outside the grown, feathered ellipse
    assert torch.equal(grid["recovered (key 1)"][..., :2, :], outside)
    assert torch.equal(grid["key 1"][..., :2, :], outside)
    assert not torch.equal(grid["key 1"], grid["key 2"])  # another key, another face
    assert {"id__encoder__anonymised", "recovered__psnr", "wrong__ssim"} <= set(first)


def test_tables_from_logged_metrics() -> None:
    metrics = {
        "test/anonymised/psnr": 25.0,
        "test/recovered/psnr": 31.0,
        "test/wrong/psnr": 21.0,
        "test/identity/encoder/recovered": 0.8,
        "test/identity/dlib/anonymised": 0.1,
        "test/identity/dlib/diversity": 0.3,
        "test/detection/box_iou": 0.9,
    }
    table = flow_table(metrics)
    assert list(table["version"]) == ["anonymised (key 1)", "recovered (right key)", "wrong key"]
    assert table.loc[1, "PSNR"] == 31.0 and table.loc[1, "id cos encoder"] == 0.8
    assert table.loc[0, "diversity dlib"] == 0.3 and table.loc[0, "box IoU"] == 0.9
    assert math.isnan(table.loc[0, "id cos encoder"])  # not logged: NaN, never invented
    import pandas as pd

    runs = pd.DataFrame(
        [
            {
                "experiment": "ifadit/phase2_ffhq",
                "config.model._target_": "src.papers.ifadit.module.IFaditFlow",
            }
            | metrics,
            {
                "experiment": "ifadit/phase1_ffhq",
                "config.model._target_": "src.papers.ifadit.module.IFaditDisentangle",
                "test/reconstruction/psnr": 28.0,
                "test/identity/reconstruction": 0.7,
            },
            {
                "experiment": "ifadit/released_ffhq",
                "config.model._target_": "src.papers.ifadit.module.IFaditFlow",
                "config.model.flow_weights": "manifest:ifadit-identity-flow",
            }
            | metrics,
        ]
    )
    report = paper_table(runs)
    assert (
        list(report["experiment"])
        == ["ifadit/phase2_ffhq"] * 3 + ["ifadit/phase1_ffhq"] + ["ifadit/released_ffhq"] * 3
    )
    assert report.loc[3, "version"] == "reconstruction (phase 1)" and report.loc[3, "PSNR"] == 28.0
    assert report.loc[0, "training"].startswith("reconstructed") and report.loc[4, "training"].startswith(
        "released"
    )
