"""FPG: the online refinements, pair filtering, the separation loss, the quality teacher's checkpoint layout,
the module's training loss, and one test per defect of the original code that applies to a port."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from src.config.compose import compose
from src.networks.recognizers.checkpoints import convert_state_dict
from src.papers.fpg.module import DEFAULT_TERMS, FPGModule, check_terms
from src.papers.fpg.network import FPGNet
from src.papers.fpg.quality import QualityRegressor, build_quality_teacher
from src.papers.fpg.refinement import (
    RefinementConfig,
    attention_ratio,
    blend_residual,
    blend_step_sign,
    feature_masks,
    magnitude_refinement,
    masked_features,
    pair_keep,
    pair_separation_loss,
    reblend,
    separation_loss,
    shape_refinement,
    simple_soft_mask,
    step_masks,
)
from src.sweeping.expand import experiment_from_command, point_to_overrides, sweep_points
from src.sweeping.spec import load_sweep_spec

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
CONFIG = RefinementConfig()


def _square_masks(n: int, size: int = SIZE, low: int = 16, high: int = 48) -> torch.Tensor:
    """Soft square blend masks ``[n, 1, size, size]`` (values 0.5 … 1 inside the square, 0 outside)."""
    masks = torch.zeros(n, 1, size, size)
    ramp = torch.linspace(0.5, 1.0, high - low)
    masks[:, 0, low:high, low:high] = ramp[:, None].expand(-1, high - low)
    return masks


def _pair_batch(n: int = 2, size: int = SIZE, seed: int = 0) -> dict[str, torch.Tensor]:
    """An SBI pair batch as SelfBlendedFramesDataModule(blend_parts=True) collates it."""
    g = torch.Generator().manual_seed(seed)
    reals = torch.rand(n, 3, size, size, generator=g)
    sources = (reals + 0.2 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)
    masks = _square_masks(n, size, size // 4, 3 * size // 4)
    fakes = sources * masks + reals * (1 - masks)
    return {
        "image": torch.cat([reals, fakes]),
        "label": torch.tensor([0] * n + [1] * n),
        "mask": torch.cat([torch.zeros_like(masks), masks]),
        "source": sources,
        "blend_failed": torch.zeros(n, dtype=torch.long),
    }


@functools.cache
def _teacher() -> QualityRegressor:
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="RANDOM weights"):
        return build_quality_teacher(weights=None)


def _module(**terms: object) -> FPGModule:
    torch.manual_seed(0)
    net = FPGNet(backbone={"name": "small_cnn", "input_size": SIZE})
    module = FPGModule(
        net,
        functools.partial(torch.optim.AdamW, lr=1e-3),
        terms=terms or None,
        quality_teacher={"weights": None},
    )
    module.__dict__["_teacher"] = _teacher()  # one random IR-50 for every test
    return module


# --- shape refinement ----------------------------------------------------------------------------------


def test_attention_ratio_on_hand_made_maps() -> None:
    cams = torch.zeros(3, 4, 4)
    cams[0, 0, 0], cams[0, 3, 3] = 1.0, 0.2  # mean of positives 0.6: looks at (0, 0), inside the region
    cams[1] = 0.5  # flat: nothing exceeds its own mean
    cams[2, 1:3, 1:3] = torch.tensor([[0.2, 0.4], [0.6, 0.8]])  # mean of positives 0.5 → two pixels above
    masks = torch.zeros(3, 1, 4, 4)
    masks[:, :, :2, :2] = 0.7  # region: the 2×2 top-left block
    ratio, area, looked = attention_ratio(cams, masks)
    assert area.tolist() == [4, 4, 4]
    assert torch.allclose(
        ratio, torch.tensor([0.25, 0.0, 0.0], dtype=torch.float64)
    )  # (2,2)/(2,1) are outside
    assert looked[2].sum() == 2 and looked[2, 2, 1] and looked[2, 2, 2]


def test_only_confident_fakes_that_look_at_little_are_refined_and_pairs_change_together() -> None:
    n = 4
    batch = _pair_batch(n)
    images, masks = batch["image"], batch["mask"].clone()
    masks[:n] = masks[:n] + masks[n:]
    cams = torch.zeros(n, SIZE, SIZE)
    cams[0] = 0.1
    cams[0, 16:30, 16:30] = 1.0  # a corner of the region stands out: ρ = 196 / 1024 < 0.2, p = 1 → refined
    cams[1] = 0.1
    cams[1, 16:48, 16:48] = 1.0  # the whole region stands out: ρ = 1 → kept
    cams[2, 16:20, 16:20] = 1.0  # looks at little but p = 0.4 ≤ 0.5 → kept
    # fake 3: a CAM with no positive value looks at nothing (ρ = 0), p = 1 → refined
    p = torch.tensor([1.0, 1.0, 0.4, 1.0])
    result = shape_refinement(images, masks, cams, p, np.random.default_rng(0), CONFIG)
    assert result.candidate.tolist() == [True, False, False, True]
    assert result.refined.tolist() == [True, False, False, True]
    assert torch.equal(result.images[:n], images[:n])  # reals never change
    for i in (1, 2):  # untouched pairs: same fake, same masks
        assert torch.equal(result.images[n + i], images[n + i])
        assert torch.equal(result.masks[i], masks[i]) and torch.equal(result.masks[n + i], masks[n + i])
    for i in (0, 3):
        new = result.masks[n + i]
        assert torch.equal(result.masks[i], new) and not torch.equal(new, masks[n + i])
        assert 0.9 < float(new.max()) <= 1.0 and float(new.min()) >= 0.0  # 1 before the final resize
        assert float(new[0, :8, :8].abs().max()) == 0.0  # far outside the region: no blending
        expected = (1 - new) * images[i] + new * images[n + i]
        assert torch.allclose(result.images[n + i], expected, atol=1e-6)
    # fake 0's new region leaves out the corner it looked at: its mass moves away from that corner
    grid = torch.arange(SIZE, dtype=torch.float32)
    for i, low, high in ((0, 32.5, 40.0), (3, 30.5, 32.5)):
        m = result.masks[n + i][0]
        centre = ((m.sum(1) * grid).sum() / m.sum(), (m.sum(0) * grid).sum() / m.sum())
        assert all(low < float(c) < high for c in centre), (i, centre)
    assert torch.equal(batch["mask"][n:], masks[n:])  # inputs are not modified


def test_refinement_happens_with_probability_p() -> None:
    n = 1
    batch = _pair_batch(n)
    masks = batch["mask"].clone()
    masks[:n] = masks[n:]
    cams = torch.zeros(n, SIZE, SIZE)
    rng = np.random.default_rng(1)
    refined = [
        bool(shape_refinement(batch["image"], masks, cams, torch.tensor([0.6]), rng, CONFIG).refined[0])
        for _ in range(200)
    ]
    assert 0.45 < np.mean(refined) < 0.75


def test_simple_soft_mask_erodes_and_softens() -> None:
    region = np.zeros((SIZE, SIZE), np.float32)
    region[16:48, 16:48] = 1
    soft = simple_soft_mask(region, np.random.default_rng(0), CONFIG)
    assert soft is not None and soft.shape == region.shape and soft.dtype == np.float32
    assert soft.max() == pytest.approx(1.0) and soft.min() >= 0 and soft[:4, :4].max() == 0
    profile = soft[16:33, 32]  # from the region's edge to its centre: 0 (eroded), a soft ramp, then 1
    assert profile[0] == 0 and profile[-1] == pytest.approx(1.0) and np.all(np.diff(profile) >= -1e-6)
    assert ((profile > 0.05) & (profile < 0.95)).sum() >= 2
    tiny = np.zeros((SIZE, SIZE), np.float32)
    tiny[30:33, 30:33] = 1  # a 3×3 region erodes to nothing under a ≥ 10 px kernel
    assert simple_soft_mask(tiny, np.random.default_rng(0), CONFIG) is None
    released = RefinementConfig(erode="released")  # the 2×1 kernel the original code applies
    assert simple_soft_mask(tiny, np.random.default_rng(0), released) is not None


# --- magnitude refinement ------------------------------------------------------------------------------


def test_blend_step_sign_rule() -> None:
    sources = torch.ones(3, 1, 2, 2)
    backgrounds = torch.zeros(3, 1, 2, 2)
    gradient = torch.tensor(
        [
            [[[1.0, 1.0], [1.0, -1.0]]],  # 3 positive, 1 negative → +1
            [[[-1.0, -1.0], [1.0, 0.0]]],  # 1 positive, 2 negative → −1
            [[[1.0, -1.0], [0.0, 0.0]]],  # a tie → −1
        ]
    )
    assert blend_step_sign(gradient, sources, backgrounds).tolist() == [1.0, -1.0, -1.0]
    # S − B flips the sign of ∂L/∂M
    assert blend_step_sign(gradient, backgrounds, sources).tolist() == [-1.0, 1.0, -1.0]


def test_step_keeps_the_residual_and_stays_in_range() -> None:
    g = torch.Generator().manual_seed(0)
    sources, backgrounds = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    masks = torch.rand(2, 1, 8, 8, generator=g)
    fakes = (sources * masks + backgrounds * (1 - masks) + 0.05 * torch.randn(2, 3, 8, 8, generator=g)).clamp(
        0, 1
    )
    residual = blend_residual(fakes, sources, backgrounds, masks)
    assert torch.allclose(
        reblend(sources, backgrounds, masks, residual), fakes, atol=1e-6
    )  # ε = 0: unchanged
    stepped = step_masks(torch.full((2, 1, 2, 2), 0.995), torch.tensor([1.0, -1.0]), 0.01)
    assert torch.allclose(stepped[0], torch.ones(1, 2, 2)) and torch.allclose(
        stepped[1], torch.full((1, 2, 2), 0.98505)
    )


class _Brighter(nn.Module):
    """Logits [−mean(x), mean(x)]: brighter means faker, so ∇_x CE(·, fake) < 0 everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], dim=1)


def test_magnitude_refinement_makes_the_fake_harder_and_keeps_the_residual() -> None:
    g = torch.Generator().manual_seed(0)
    backgrounds = 0.2 + 0.3 * torch.rand(2, 3, 16, 16, generator=g)
    sources = backgrounds + 0.3  # S > B: a stronger blend is brighter, i.e. faker for this detector
    masks = _square_masks(2, 16, 4, 12)
    residual = 0.01 * torch.randn(2, 3, 16, 16, generator=g)
    fakes = sources * masks + backgrounds * (1 - masks) + residual
    refined, signs = magnitude_refinement(_Brighter(), backgrounds, fakes, sources, masks, eps=0.01)
    assert signs.tolist() == [-1.0, -1.0]  # dL/dM < 0: the step lowers the blend
    expected = (sources * masks * 0.99 + backgrounds * (1 - masks * 0.99) + residual).clamp(0, 1)
    assert torch.allclose(refined, expected, atol=1e-6)
    assert refined.min() >= 0 and refined.max() <= 1 and not refined.requires_grad
    assert _Brighter()(refined)[:, 1].sum() < _Brighter()(fakes)[:, 1].sum()  # less fake for the detector


# --- pooling, pairs, separation ------------------------------------------------------------------------


def test_pairs_are_filtered_jointly() -> None:
    """Original defect #6: rows were filtered one by one and the survivors split in halves, so dropping one
    row shifted every later pair. Here a pair goes only as a whole, and halves stay aligned."""
    small = torch.zeros(6, 1, 2, 2)
    small[[0, 2, 3, 4, 5], 0, 0, 0] = 1  # real 1 is empty; its fake (row 4) is not
    keep = pair_keep(small)
    assert keep.tolist() == [True, False, True, True, False, True]
    features = torch.randn(6, 5, 2, 2)
    pooled = masked_features(features[keep], small[keep])
    reals, fakes = pooled[:2], pooled[2:]
    expected = masked_features(features[[0, 2, 3, 5]], small[[0, 2, 3, 5]])
    assert torch.allclose(reals, expected[:2]) and torch.allclose(fakes, expected[2:])
    expected_loss = separation_loss(expected[:2], expected[2:])
    assert torch.allclose(pair_separation_loss(features, small), expected_loss)
    # the original filters rows one by one (0, 2, 3, 4, 5), splits them at 5 // 2 and takes diag(R @ Fᵀ):
    # real 0 meets fake 0, but real 2 meets fake 1 (row 4)
    rows = small.flatten(1).sum(1) > 0
    naive = masked_features(features[rows], small[rows])
    original = ((torch.diag(naive[:2] @ naive[2:].T) + 1) / 2).mean()
    assert not torch.allclose(original, expected_loss)


def test_masked_features_on_hand_made_maps() -> None:
    features = torch.zeros(1, 2, 2, 2)
    features[0, 0] = torch.tensor([[3.0, 100.0], [5.0, 100.0]])
    features[0, 1] = torch.tensor([[4.0, -7.0], [0.0, -7.0]])
    small = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])  # the left column
    pooled = masked_features(features, small)
    assert torch.allclose(pooled, torch.tensor([[4.0, 2.0]]) / (20.0**0.5))
    masks = torch.zeros(1, 1, 8, 8)
    masks[0, 0, 4:, :4] = 0.3
    assert feature_masks(masks, (2, 2)).tolist() == [[[[0.0, 0.0], [1.0, 0.0]]]]  # binarised, nearest


def test_separation_loss_values() -> None:
    e0, e1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert separation_loss(e0, -e0).item() == pytest.approx(0.0)  # opposite: nothing left to separate
    assert separation_loss(e0, e0).item() == pytest.approx(1.0)
    assert separation_loss(e0, e1).item() == pytest.approx(0.5)
    two = separation_loss(torch.cat([e0, e0]), torch.cat([-e0, e1]))
    assert two.item() == pytest.approx(0.25)
    empty = separation_loss(torch.zeros(0, 2), torch.zeros(0, 2))
    assert empty.item() == 0.0 and isinstance(empty, torch.Tensor)
    with pytest.raises(ValueError, match="pairs must align"):
        separation_loss(torch.zeros(2, 2), torch.zeros(1, 2))


# --- network and quality teacher -----------------------------------------------------------------------


def test_network_outputs() -> None:
    net = FPGNet(backbone={"name": "small_cnn", "input_size": SIZE}).eval()
    x = torch.rand(3, 3, SIZE, SIZE)
    logits, quality, features = net.forward_train(x)
    assert logits.shape == (3, 2) and quality.shape == (3, 1) and features.shape == (3, 512, 2, 2)
    assert torch.allclose(net(x), logits)
    assert net.attention[-2].out_features == net.backbone.feature_dim == 512
    assert not net.last_block._forward_hooks  # the capture hook is removed


def test_quality_teacher_loads_the_tface_layout(tmp_path: Path) -> None:
    """TFace saves ``R50(use_type="Qua")`` under DataParallel: ``module.`` + input_layer / body / quality
    keys."""
    teacher = _teacher()
    state = {f"module.{k}": v for k, v in _published(teacher).items()}
    assert {"module.input_layer.0.weight", "module.input_layer.2.weight", "module.quality.1.weight"} <= set(
        state
    )
    assert (
        "module.body.3.shortcut_layer.0.weight" in state
        and "module.body.0.shortcut_layer.0.weight" not in state
    )
    assert state["module.body.23.res_layer.2.weight"].shape == (512,)  # PReLU of a stage-4 unit
    assert state["module.quality.1.weight"].shape == (512 * 7 * 7,) and state[
        "module.quality.3.weight"
    ].shape == (1, 25088)
    assert len([k for k in state if k.startswith("module.body.") and k.endswith("res_layer.1.weight")]) == 24
    path = tmp_path / "SDD_FIQA_checkpoints_r50.pth"
    torch.save(state, path)
    loaded = build_quality_teacher(weights=str(path))
    x = torch.rand(2, 3, 80, 80)
    assert torch.equal(loaded.score(x), teacher.score(x))
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    state.pop("module.quality.3.bias")
    with pytest.raises(ValueError, match="missing keys.*quality.3.bias"):
        convert_state_dict(teacher, state, teacher.key_mapping("sdd_fiqa"))


def _published(teacher: QualityRegressor) -> dict[str, torch.Tensor]:
    mapping = teacher.key_mapping("sdd_fiqa")
    return {mapping.to_theirs(k): v for k, v in teacher.state_dict().items()}


def test_quality_input_is_prepared_like_the_original() -> None:
    teacher = _teacher()
    x = torch.full((1, 3, 4, 4), 0.999)  # ×255 = 254.7 → 254 (truncated, as .type(torch.uint8))
    prepared = teacher.preprocess_like_fpg(x)
    assert prepared.shape == (1, 3, 112, 112)
    assert torch.allclose(prepared, torch.full_like(prepared, (254 / 255 - 0.5) / 0.5))


def test_missing_teacher_file_names_the_manifest_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="fpg-sdd-fiqa-r50.*SDD_FIQA_checkpoints_r50.pth.*pin"):
        build_quality_teacher(weights="manifest:fpg-sdd-fiqa-r50")


# --- the module ----------------------------------------------------------------------------------------


def test_training_loss_on_a_tiny_batch_leaves_parameter_grads_alone() -> None:
    module = _module()
    module.train()
    batch = _pair_batch(2)
    bn = module.net.irregularity[1]
    stats = bn.running_mean.clone()
    loss, logs = module.training_loss(batch)
    assert torch.isfinite(loss) and module.net.training
    assert all(p.grad is None for p in module.parameters())  # the perception passes wrote no .grad
    for key in ("loss_ce", "loss_sep", "loss_quality", "kept_pairs", "shape_candidates", "magnitude_stepped"):
        assert key in logs and isinstance(logs[key], torch.Tensor)
    assert logs["kept_pairs"] == 2
    assert not torch.equal(bn.running_mean, stats)  # only the training forward updated the statistics
    total = logs["loss_ce"] + 0.075 * logs["loss_sep"] + logs["loss_quality"]
    assert torch.allclose(loss.detach(), total)
    loss.backward()
    assert module.net.quality.weight.grad is not None and module.net.head[1].weight.grad is not None
    assert not any(p.requires_grad for p in module.quality_teacher(torch.device("cpu")).parameters())
    assert not any(k.startswith("_teacher") or "quality_teacher" in k for k in module.state_dict())


def test_perception_passes_run_in_eval_mode_and_restore_the_mode() -> None:
    module = _module(quality=0.0)
    module.train()
    batch = _pair_batch(2, seed=3)
    n = 2
    masks = batch["mask"].clone()
    masks[:n] += masks[n:]
    modes: list[bool] = []
    hook = module.net.last_block.register_forward_hook(lambda m, i, o: modes.append(m.training))
    try:
        seen = module.perceive(batch["image"], masks, batch["source"], n)
    finally:
        hook.remove()
    assert modes and not any(modes) and module.net.training
    assert (
        torch.equal(seen.images[:n], batch["image"][:n]) and seen.images.min() >= 0 and seen.images.max() <= 1
    )
    again = module.perceive(batch["image"], masks, batch["source"], n)
    assert torch.equal(again.images, seen.images)  # the same (seed, epoch, batch): the same choices


def test_refinement_changes_fakes_only_inside_their_masks_and_gradients_reach_the_detector_only() -> None:
    """The refined batch differs from the input only where a fake's old or new blend mask is non-zero, the
    reals never change, and the loss sends gradients to the detector's parameters, not to the data."""
    module = _module(quality=0.0, magnitude=True)
    module.refinement = RefinementConfig(
        threshold=1.0, min_confidence=0.0, magnitude_p=1.0
    )  # refine, step always
    module.train()
    n = 3
    batch = _pair_batch(n, seed=5)
    masks = batch["mask"].clone()
    masks[:n] += masks[n:]
    refined = 0.0
    for epoch_batch in range(6):  # several seeded draws: some refine shape, all step the magnitude
        module._batch_index = epoch_batch
        seen = module.perceive(batch["image"], masks, batch["source"], n)
        refined += float(seen.logs["shape_refined"])
        assert float(seen.logs["magnitude_stepped"]) == 1.0
        assert torch.equal(seen.images[:n], batch["image"][:n])
        changed = (seen.images[n:] - batch["image"][n:]).abs().amax(dim=1) > 1e-6
        support = (masks[n:, 0] > 0) | (seen.masks[n:, 0] > 0)
        assert not (changed & ~support).any(), "a fake changed outside its blend masks"
        assert torch.equal(seen.masks[:n], seen.masks[n:])  # each real keeps its fake's mask
        assert not seen.images.requires_grad
    assert refined > 0, "no draw refined a shape: the check above saw only magnitude steps"
    images = batch["image"].clone().requires_grad_(True)
    loss, _ = module.training_loss({**batch, "image": images})
    loss.backward()
    assert images.grad is None  # the refined batch is detached: no gradient flows into the data
    trainable = [p for p in module.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in module.net.backbone.parameters() if p.requires_grad)


def test_port_needs_no_device_attribute_on_the_network() -> None:
    """Original defect #5: ``shape_refinemnet`` read ``model.device``, which a bare nn.Module lacks."""
    module = _module(quality=0.0, magnitude=False)
    assert not hasattr(module.net, "device")
    loss, _ = module.training_loss(_pair_batch(2, seed=4))
    assert torch.isfinite(loss)


def test_dropped_pairs_keep_the_rest_aligned_and_no_pair_left_is_handled() -> None:
    """Original defects #6 and #7: a pair with an empty mask is dropped as a whole, and with no pair left
    (or with the separation and quality terms off) every loss is still a defined tensor."""
    module = _module(quality=0.0, shape=False, magnitude=False)
    batch = _pair_batch(3, seed=5)
    batch["mask"][4] = 0  # pair 1 has no blended region
    loss, logs = module.training_loss(batch)
    assert logs["kept_pairs"] == 2 and torch.isfinite(loss)
    batch["mask"][3:] = 0  # no pair at all: CE over every row, separation 0
    loss, logs = module.training_loss(batch)
    assert logs["kept_pairs"] == 0 and logs["loss_sep"] == 0 and torch.isfinite(loss)
    plain = _module(sep=0.0, quality=0.0, shape=False, magnitude=False)
    loss, logs = plain.training_loss(_pair_batch(2, seed=6))
    assert set(k for k in logs if k.startswith("loss_")) == {"loss_ce"} and loss.requires_grad


def test_batches_without_blend_parts_are_refused() -> None:
    batch = _pair_batch(2)
    del batch["mask"]
    with pytest.raises(ValueError, match="blend_parts=true"):
        _module().training_loss(batch)


def test_quality_term_without_teacher_is_a_clear_error() -> None:
    net = FPGNet(backbone={"name": "small_cnn", "input_size": SIZE})
    module = FPGModule(net, functools.partial(torch.optim.AdamW), quality_teacher=None)
    with pytest.raises(ValueError, match="model.terms.quality > 0 needs model.quality_teacher"):
        module.on_fit_start()
    FPGModule(
        net, functools.partial(torch.optim.AdamW), quality_teacher=None, terms={"quality": 0}
    ).on_fit_start()


def test_terms_and_refinement_settings_are_checked() -> None:
    assert check_terms(None) == DEFAULT_TERMS
    assert check_terms({"sep": 0})["sep"] == 0.0
    for bad, message in (
        ({"ce": 0}, "ce must be > 0"),
        ({"sep": -1}, "sep must be a number >= 0"),
        ({"shape": 1}, "shape must be true or false"),
        ({"alpha": 1}, "unknown term 'alpha'"),
    ):
        with pytest.raises(ValueError, match=message):
            check_terms(bad)
    with pytest.raises(ValueError, match="threshold must be a number in"):
        RefinementConfig(threshold=2)
    with pytest.raises(ValueError, match="erode_kernel"):
        RefinementConfig(erode_kernel=(9, 13))
    with pytest.raises(ValueError, match="blur_kernel_1"):
        RefinementConfig(blur_kernel_1=(16, 24))
    net = FPGNet(backbone={"name": "small_cnn"})
    with pytest.raises(ValueError, match="model.refinement.*unexpected keyword.*'t'"):
        FPGModule(net, functools.partial(torch.optim.AdamW), refinement={"t": 0.3})


# --- configuration: the original's settings, in experiment files (defects #1, #2, #11) ---------------


def test_training_experiment_carries_the_original_settings() -> None:
    """The hyper-parameters the original passed through a broken argparse / a missing config path."""
    cfg = compose("fpg/ffpp_c23", allow_missing=True).config
    model = cfg.model
    assert model.terms == {"ce": 1.0, "sep": 0.075, "quality": 1.0, "shape": True, "magnitude": True}
    assert (model.refinement.threshold, model.refinement.eps) == (0.2, 0.01)
    assert model.optimizer.lr == 1e-4 and list(model.optimizer.betas) == [0.9, 0.98]
    assert (model.optimizer.eps, model.optimizer.weight_decay) == (1e-6, 0.2)
    assert model.scheduler.decay_start == 0.75 and cfg.trainer.max_epochs == 50
    assert cfg.datamodule.batch_size * 2 * cfg.trainer.accumulate_grad_batches == 128
    assert (
        cfg.datamodule.blend_parts
        and cfg.datamodule.compression == "c23"
        and cfg.datamodule.image_size == 380
    )
    assert cfg.trainer.precision == "16-mixed" and cfg.seed == 2024 and model.perception_seed == 2024
    assert model.quality_teacher.weights == "manifest:fpg-sdd-fiqa-r50"
    assert model.net.backbone.name == "efficientnet_b4" and model.net.backbone.input_norm == "none"


def test_ablation_sweep_points_compose() -> None:
    spec = load_sweep_spec(ROOT / "experiments/sweeps/fpg_ablation.yaml")
    experiment, extra = experiment_from_command(spec)
    points = sweep_points(spec)
    assert experiment == "fpg/ffpp_c23" and len(points) == 7
    seen = set()
    for point in points:
        terms = compose(
            experiment, [*extra, *point_to_overrides(point)], allow_missing=True
        ).config.model.terms
        check_terms(dict(terms))
        seen.add(tuple(sorted(terms.items())))
    assert len(seen) == 7


def test_report_labels_the_ablation_runs() -> None:
    from src.papers.fpg.report import detector_label

    b4 = {"config.model.net.backbone.name": "efficientnet_b4"}
    full = {f"config.model.terms.{k}": v for k, v in DEFAULT_TERMS.items()}
    assert detector_label({**b4, **full}) == "FPG (full)"
    off = {**full, "config.model.terms.shape": False, "config.model.terms.sep": 0.0}
    assert detector_label({**b4, **off}) == "FPG (w/o shape refinement, L_sep)"
    demo = {"config.model.net.backbone.name": "small_cnn", "config.model.terms.sep": 0.1}
    assert detector_label(demo) == "FPG (full (sep=0.1), small CNN (demo))"
