"""Makeup-privacy's objectives and parsing masks: each term on constructed inputs, the histogram matching
against an independent loop implementation, the label-14 fix, MT one-hot maps and the weight fragment."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from src.config.errors import ConfigError
from src.networks.recognizers.base import FaceRecognizer
from src.papers.makeup_privacy import losses as L
from src.papers.makeup_privacy import parsing as P
from src.weights import load_manifest

# ------------------------------------------------------------------------------------- histogram matching


def loop_cdf(values: list[int]) -> list[np.float32]:
    """Counts per integer level, divided by the total, accumulated bin by bin in float32."""
    counts = [np.float32(0)] * 256
    for v in values:
        counts[v] += np.float32(1)
    total = np.float32(sum(int(c) for c in counts))
    cdf, running = [], np.float32(0)
    for i, count in enumerate(counts):
        running = count / total if i == 0 else np.float32(running + count / total)
        cdf.append(running)
    return cdf


def loop_table(source: list[np.float32], reference: list[np.float32]) -> list[int]:
    """Level i → the first j in 1..255 whose reference CDF bracket [j-1, j] holds the source CDF at i."""
    table = list(range(256))
    for i in range(1, 256):
        for j in range(1, 256):
            if reference[j - 1] <= source[i] <= reference[j]:
                table[i] = j
                break
    table[255] = 255
    return table


def loop_target(source: torch.Tensor, reference: torch.Tensor, m_src: torch.Tensor, m_ref: torch.Tensor):
    """Independent per-pixel implementation for one image: [3, H, W] in [-1, 1], masks [H, W] of 0/1."""
    src = ((source + 1) / 2).clamp(0, 1) * 255 * m_src
    ref = ((reference + 1) / 2).clamp(0, 1) * 255 * m_ref
    out = torch.zeros_like(src)
    src_pos = [(r, c) for r in range(src.shape[1]) for c in range(src.shape[2]) if m_src[r, c] != 0]
    ref_pos = [(r, c) for r in range(ref.shape[1]) for c in range(ref.shape[2]) if m_ref[r, c] != 0]
    for ch in range(3):
        src_levels = [int(src[ch, r, c].item()) for r, c in src_pos]
        ref_levels = [int(ref[ch, r, c].item()) for r, c in ref_pos]
        table = loop_table(loop_cdf(src_levels), loop_cdf(ref_levels))
        for (r, c), level in zip(src_pos, src_levels, strict=True):
            out[ch, r, c] = table[level]
    return out


def test_histogram_target_equals_an_independent_loop_implementation() -> None:
    g = torch.Generator().manual_seed(0)
    size = 20
    source = torch.rand(2, 3, size, size, generator=g) * 1.8 - 1.2  # some pixels clamp to level 0
    reference = torch.rand(2, 3, size, size, generator=g) ** 3 * 2 - 1  # a skewed histogram
    reference[1, :, :10] = 0.9  # sample 1: a very concentrated reference (identity fallbacks happen)
    m_src = (torch.rand(2, 1, size, size, generator=g) > 0.4).float()
    m_ref = (torch.rand(2, 1, size, size, generator=g) > 0.5).float()
    target = L.histogram_target(source, reference, m_src, m_ref)
    for b in range(2):
        expected = loop_target(source[b], reference[b], m_src[b, 0], m_ref[b, 0])
        torch.testing.assert_close(target[b], expected, rtol=0, atol=0)
    assert target.requires_grad is False and float(target.max()) <= 255


def test_matching_a_region_to_itself_keeps_every_occupied_level() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    mask = (torch.rand(1, 1, 16, 16, generator=g) > 0.3).float()
    target = L.histogram_target(x, x, mask, mask)
    torch.testing.assert_close(target, L.to_pixels(x).floor() * mask, rtol=0, atol=0)


def test_histogram_loss_is_zero_when_the_output_is_the_matched_reference() -> None:
    g = torch.Generator().manual_seed(2)
    source = torch.rand(1, 3, 24, 24, generator=g) * 2 - 1
    reference = torch.rand(1, 3, 24, 24, generator=g) * 2 - 1
    m_src = torch.zeros(1, 1, 24, 24)
    m_src[..., 4:14, 6:18] = 1
    m_ref = torch.zeros(1, 1, 24, 24)
    m_ref[..., 10:20, 2:20] = 1
    matched = L.histogram_target(source, reference, m_src, m_ref)
    generated = torch.where(m_src.bool(), matched / 127.5 - 1, torch.rand(1, 3, 24, 24, generator=g))
    generated.requires_grad_(True)
    loss = L.histogram_loss(generated, reference, source, m_src, m_ref)
    assert loss.item() == pytest.approx(0.0, abs=1e-4)
    # a wrong colour inside the region costs its L1 distance (0–255 scale, averaged over 3·H·W)
    shifted = generated.detach().clone()
    shifted[0, 0, 4, 6] = -1.0 if matched[0, 0, 4, 6] > 100 else 1.0
    expected = abs(float(L.to_pixels(shifted)[0, 0, 4, 6] - matched[0, 0, 4, 6])) / (3 * 24 * 24)
    assert L.histogram_loss(shifted, reference, source, m_src, m_ref).item() == pytest.approx(
        expected, abs=1e-4
    )
    loss.backward()  # differentiable on the generated side only (the target is detached)
    assert generated.grad is not None and generated.grad[~m_src.bool().expand_as(generated)].abs().sum() == 0


def test_empty_regions_cost_nothing_or_fall_back_to_the_identity_table() -> None:
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    empty, full = torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8)
    assert L.histogram_loss(x, x, x, empty, full).item() == 0.0
    torch.testing.assert_close(L.histogram_target(x, x, full, empty), L.to_pixels(x).floor())


def test_makeup_terms_name_the_four_regions_and_skip_zero_weights() -> None:
    labels = torch.tensor([[1, 4, 5, 7], [9, 6, 13, 0], [11, 12, 1, 1], [2, 3, 8, 10]]).view(1, 1, 4, 4)
    regions = P.region_masks(labels)
    x = torch.rand(1, 3, 4, 4) * 2 - 1
    terms = L.makeup_terms(x, x, x, regions, regions)
    assert list(terms) == ["makeup_eye_left", "makeup_eye_right", "makeup_lips", "makeup_skin"]
    weights = L.LossWeights.from_mapping({"makeup_skin": 0})
    assert "makeup_skin" not in L.makeup_terms(x, x, x, regions, regions, weights)


# -------------------------------------------------------------------------------------------- target


def test_impersonation_loss_against_a_hand_computation() -> None:
    adversarial = torch.tensor([[1.0, 0.0], [2.0, 0.0], [1.0, 1.0]])
    target = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    source = torch.tensor([[3.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    # d = 1 - cos: sample 0: d(a,t) = 1, d(a,s) = 0 → 2; sample 1: 0 - 2 + 1 < 0 → 0;
    # sample 2: d(a,t) = d(a,s) = 1 - 1/√2 → the margin, 1
    loss = L.impersonation_loss(adversarial, target, source)
    assert loss.item() == pytest.approx((2 + 0 + 1) / 3)
    assert L.impersonation_loss(adversarial, target, source, margin=0.5).item() == pytest.approx(
        (1.5 + 0.5) / 3
    )


def test_target_loss_averages_models_and_detaches_the_target() -> None:
    generated = torch.tensor(
        [[[[1.0, 0.0]]]], requires_grad=True
    )  # [1, 1, 1, 2]: the "embedding" is the pixels
    target = torch.tensor([[[[0.0, 1.0]]]], requires_grad=True)
    source = torch.tensor([[[[1.0, 0.0]]]])
    flat = lambda images: images.flatten(1)  # noqa: E731
    double = lambda images: 2 * images.flatten(1)  # noqa: E731  (same cosines)
    loss = L.target_loss(generated, target, source, [flat, double])
    assert loss.item() == pytest.approx(2.0)  # d(x̂, t) = 1, d(x̂, x) = 0, + 1
    loss.backward()
    assert target.grad is None and generated.grad is not None
    with pytest.raises(ValueError, match="no face recognizers"):
        L.target_loss(generated, target, source, [])


class TinyRecognizer(FaceRecognizer):
    input_size = (8, 8)
    embedding_dim = 3

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return x.mean(dim=(2, 3))


def test_recognizer_embedder_resizes_like_the_authors_and_feeds_minus_one_to_one() -> None:
    recognizer = TinyRecognizer()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    embeddings = L.recognizer_embedder(recognizer)(images)
    expected = F.interpolate(images, size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(recognizer.seen, expected)  # mean = std = 0.5: [-1, 1] passes unchanged
    torch.testing.assert_close(embeddings, expected.mean(dim=(2, 3)))


# --------------------------------------------------------------------------------- GAN, FM, VGG, match


def test_lsgan_and_feature_matching_on_constructed_outputs() -> None:
    fake = [
        [torch.ones(1, 2, 4, 4), torch.full((1, 1, 4, 4), 0.5)],
        [torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 2, 2)],
    ]
    real = [
        [torch.zeros(1, 2, 4, 4), torch.ones(1, 1, 4, 4)],
        [torch.full((1, 2, 2, 2), 3.0), torch.ones(1, 1, 2, 2)],
    ]
    assert L.generator_gan_loss(fake).item() == pytest.approx((0.25 + 1.0) / 2)
    d = L.discriminator_losses(fake, real)
    assert d["fake"].item() == pytest.approx((0.25 + 0.0) / 2) and d["real"].item() == 0.0
    # intermediate layers only: |1 - 0| and |0 - 3|, divided by the two scales
    assert L.feature_matching_loss(fake, real).item() == pytest.approx((1.0 + 3.0) / 2)
    assert L.generator_gan_loss([torch.zeros(1, 1, 3, 3)]).item() == 1.0  # a bare tensor per scale
    with pytest.raises(ValueError, match="scales"):
        L.feature_matching_loss(fake, real[:1])


def test_vgg_content_style_and_match_terms() -> None:
    g = torch.Generator().manual_seed(3)
    feats = [torch.rand(1, c, s, s, generator=g) for c, s in ((8, 2), (4, 4), (2, 8), (1, 16))]
    assert L.style_loss(feats, feats).item() == 0.0
    shifted = [f + 1.0 for f in feats]  # the means move by 1, the stds stay
    assert L.style_loss(shifted, feats).item() == pytest.approx(4.0, rel=1e-5)
    mean, std = L.mean_std(torch.tensor([[[[1.0, 3.0]]]]))
    assert mean.item() == 2.0 and std.item() == pytest.approx(2**0.5 + 1e-6)  # unbiased
    x = torch.zeros(1, 3, 4, 4)
    y = torch.ones(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1  # half of the pixels protected
    assert L.content_loss(y, x, mask).item() == pytest.approx(0.5)
    assert L.vgg_loss(y, x, mask, shifted, feats).item() == pytest.approx(20 * 0.5 + 4.0, rel=1e-5)
    warped = [feats[0] + 2.0, feats[1]]
    assert L.match_loss(feats, warped).item() == pytest.approx(4.0)  # levels 0 and 1 only
    with pytest.raises(ValueError, match="feature levels differ"):
        L.match_loss(feats[::-1], warped)


# ------------------------------------------------------------------------------------------- weights


def test_weights_are_the_authors_and_the_total_refuses_bad_names() -> None:
    assert L.LossWeights().as_dict() == {
        "gan": 1.0,
        "feature_matching": 10.0,
        "vgg": 10.0,
        "match": 3.0,
        "makeup_eye_left": 10.0,
        "makeup_eye_right": 10.0,
        "makeup_lips": 10.0,
        "makeup_skin": 1.0,
        "target": 10.0,
    }
    terms = {name: torch.tensor(1.0) for name in L.TERMS}
    assert L.weighted_total(terms, L.LossWeights()).item() == pytest.approx(65.0)
    with pytest.raises(ConfigError, match="unknown term 'lpips'"):
        L.LossWeights.from_mapping({"lpips": 1.0})
    with pytest.raises(ConfigError, match="'gan' must be >= 0"):
        L.LossWeights.from_mapping({"gan": -1})
    with pytest.raises(ConfigError, match=r"unknown term\(s\) \['style'\]"):
        L.weighted_total({**terms, "style": torch.tensor(1.0)}, L.LossWeights())
    with pytest.raises(ConfigError, match=r"no weight given for \['target'\]"):
        L.weighted_total(terms, {k: v for k, v in L.LossWeights().as_dict().items() if k != "target"})
    without_target = {k: v for k, v in terms.items() if k != "target"}
    with pytest.raises(ConfigError, match=r"\['target'\] have a weight but were not computed"):
        L.weighted_total(without_target, L.LossWeights())
    no_target = L.LossWeights.from_mapping({"target": 0})
    assert L.weighted_total(without_target, no_target).item() == pytest.approx(55.0)
    with pytest.raises(ConfigError, match="every weight is 0"):
        L.weighted_total({}, L.LossWeights(**dict.fromkeys(L.TERMS, 0.0)))


# ------------------------------------------------------------------------------------------- parsing


def test_mt_labels_become_a_19_channel_one_hot_or_stay_raw_when_faithful() -> None:
    labels = torch.tensor([[0.0, 7.0], [14.0, 5.0]]).view(1, 1, 2, 2)
    one_hot = P.semantic_map(labels)
    assert one_hot.shape == (1, 19, 2, 2) and one_hot.dtype == torch.float32
    assert one_hot.sum(dim=1).eq(1).all() and one_hot[0, 7, 0, 1] == 1 and one_hot[0, 14, 1, 0] == 1
    assert one_hot[:, 15:].sum() == 0
    torch.testing.assert_close(P.semantic_map(labels, faithful_bugs=True), labels)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 18\]"):
        P.mt_one_hot(torch.full((1, 1, 2, 2), 19))


def test_nonmakeup_unchanged_takes_label_14_from_the_source_unless_faithful() -> None:
    source = torch.tensor([[14, 0], [1, 7]]).view(1, 1, 2, 2)
    reference = torch.tensor([[1, 14], [14, 9]]).view(1, 1, 2, 2)
    fixed = P.nonmakeup_unchanged(source, reference)
    assert fixed.flatten().tolist() == [1.0, 1.0, 0.0, 0.0]  # 14 and background kept; skin, lip made up
    faithful = P.nonmakeup_unchanged(source, reference, faithful_bugs=True)
    # the source's own 14 is lost, the reference's 14 marks source skin and doubles the background
    assert faithful.flatten().tolist() == [0.0, 2.0, 1.0, 0.0]
    assert P.makeup_unchanged(reference).flatten().tolist() == [0.0, 1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="needs the reference labels"):
        P.nonmakeup_unchanged(source, faithful_bugs=True)


def test_region_and_protected_masks_in_both_conventions() -> None:
    labels = torch.tensor([[5, 4, 7, 9, 1, 6, 11, 12, 13, 2]]).view(1, 1, 1, 10)
    masks = P.region_masks(labels)
    assert masks["eye_left"].flatten().tolist()[:2] == [1.0, 0.0]  # MT 5 is the authors' left eye
    assert masks["eye_right"].flatten().tolist()[:2] == [0.0, 1.0]
    assert masks["lips"].flatten().tolist()[2:4] == [1.0, 1.0]
    assert masks["skin"].flatten().tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 0]
    probabilities = torch.softmax(torch.randn(2, 19, 4, 4), dim=1)
    protected = P.protected_mask(probabilities, "bisenet")
    torch.testing.assert_close(protected, probabilities[:, [0, 4, 5, 11, 16, 17]].sum(1, keepdim=True))
    one_hot = P.mt_one_hot(labels)
    torch.testing.assert_close(P.region_masks(one_hot)["skin"], masks["skin"])  # labels or one-hot alike
    torch.testing.assert_close(P.protected_mask(one_hot), P.protected_mask(labels))
    with pytest.raises(ValueError, match="unknown parsing convention"):
        P.protected_mask(labels, "celeba")  # type: ignore[arg-type]


def test_the_weight_fragment_is_in_the_manifest() -> None:
    manifest = load_manifest()
    names = {
        "torchvision-vgg19",
        "bisenet-face-parsing-79999",
        "amtgan-ir152",
        "amtgan-irse50",
        "amtgan-mobile-face",
        "amtgan-facenet",
    }
    assert names <= set(manifest)
    assert manifest["torchvision-vgg19"].file == "vgg19-dcbb9e9d.pth"
    assert manifest["torchvision-vgg19"].source == "torch_hub"
    assert manifest["bisenet-face-parsing-79999"].file == "79999_iter.pth"
    assert manifest["bisenet-face-parsing-79999"].sha256 is None
    assert all("makeup_privacy" in manifest[name].papers for name in names)
