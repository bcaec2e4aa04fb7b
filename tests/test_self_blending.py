"""SBI generator (src.datamodules.components.self_blending) and landmark hull masks (src.face.face_hulls)."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from functools import cache

import cv2
import numpy as np
import pytest

from src.datamodules.components.self_blending import (
    DEFAULT_CONFIG,
    SelfBlendConfig,
    blend,
    choose_box,
    sample_rng,
    self_blend,
    self_blend_face,
    self_blend_frame,
    soft_mask,
)
from src.datamodules.components.synthetic_face_renderer import (
    IdentityTraits,
    ImageVariation,
    face_landmarks,
    render_face,
)
from src.face.face_hulls import (
    FOREHEAD_ORDER,
    HULL_TYPES,
    extend_brows,
    facehull_mask,
    flip_landmarks,
    flip_permutation,
    hull_mask,
    landmark_box,
    mean_face_landmarks68,
    mean_face_landmarks81,
    reorder_forehead,
)

NO_JOINT = dict(joint_rgb_shift_p=0.0, joint_hsv_p=0.0, joint_brightness_contrast_p=0.0, jpeg_p=0.0)
SMALL = dataclasses.replace(DEFAULT_CONFIG, size=64)


@cache
def synthetic_face(seed: int, identity: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A rendered synthetic face (read-only uint8 ``(size, size, 3)``) and its 81 renderer landmarks."""
    traits = IdentityTraits.sample(seed, identity)
    variation = ImageVariation.sample(seed, identity, 0)
    landmarks = face_landmarks(traits, variation, size, points=81)
    image = render_face(traits, variation, size)
    image.flags.writeable = False
    landmarks.flags.writeable = False
    return image, landmarks


def face(identity: int = 0, points: int = 81, size: int = 160) -> tuple[np.ndarray, np.ndarray]:
    image, landmarks = synthetic_face(0, identity, size)
    return image, landmarks[:points]


def _arrays(sample) -> list[np.ndarray]:
    return [sample.real, sample.fake, sample.mask, sample.source, sample.landmarks]


# ----------------------------------------------------------------------------- (a) blend inside the mask


def test_blend_formula_keeps_target_where_mask_is_zero():
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    target = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    mask = np.zeros((8, 8), np.float32)
    mask[2:5, 3:7] = 1.0
    mask[6, 6] = 0.5
    out = blend(source, target, mask)
    assert np.array_equal(out[mask == 0], target[mask == 0])
    assert np.array_equal(out[mask == 1], source[mask == 1])
    expected = (0.5 * source[6, 6].astype(np.float32) + 0.5 * target[6, 6]).astype(np.uint8)
    assert np.array_equal(out[6, 6], expected)


@pytest.mark.parametrize("points", [68, 81])
def test_self_blended_face_changes_pixels_only_inside_the_mask(points):
    image, landmarks = face(identity=1, points=points)
    box = landmark_box(landmarks[:68])
    changed_somewhere = False
    for seed in range(8):
        sample = self_blend_face(
            image, reorder_forehead(landmarks) if points == 81 else landmarks, sample_rng(3, 0, seed)
        )
        real, fake, mask, source = sample.real, sample.fake, sample.mask, sample.source
        assert real.shape == fake.shape == source.shape == image.shape and mask.shape == image.shape[:2]
        # the returned mask and source are exactly what was blended
        assert np.array_equal(fake, blend(source, real, mask))
        outside = mask == 0
        differs = (fake != real).any(axis=-1)
        assert outside.any() and (~outside).any()
        assert np.array_equal(fake[outside], real[outside]), "blend leaked outside the mask"
        assert (mask[differs] > 0).all()
        # the mask stays near the face: zero beyond the (extended) landmark box plus a generous jitter margin
        extended = landmark_box(np.concatenate([landmarks, extend_brows(landmarks)]))
        pad = 0.25 * (box[2] - box[0]) + 8
        ys, xs = np.nonzero(mask)
        assert xs.min() >= extended[0] - pad and xs.max() <= extended[2] + pad
        assert ys.min() >= extended[1] - pad and ys.max() <= extended[3] + pad
        assert (
            mask.min() >= 0.0
            and mask.max() <= 1.0
            and mask.max() == pytest.approx(sample.params["blend_ratio"])
        )
        changed_somewhere |= bool(differs.any())
    assert changed_somewhere


def test_full_sample_without_joint_augmentation_differs_only_inside_the_mask():
    config = dataclasses.replace(SMALL, **NO_JOINT)
    for k in range(6):
        image, landmarks = face(identity=k, points=68 if k % 2 else 81)
        for train in (True, False):
            sample = self_blend(image, landmarks, None, sample_rng(5, 0, k), config, train=train)
            outside = sample.mask == 0
            assert outside.any()
            assert np.array_equal(sample.fake[outside], sample.real[outside])
            assert sample.params["joint_augmentation"] == []


def test_whole_frame_blend_keeps_the_frame_outside_the_mask_and_repeats_per_seed():
    image, landmarks = face(identity=2, points=68, size=160)
    frame = np.zeros((200, 240, 3), np.uint8)
    frame[20:180, 40:200] = image  # the face away from the frame's origin: the paste-back must line up
    points = landmarks + np.array([40.0, 20.0])
    for k in range(4):
        sample = self_blend_frame(frame, points, sample_rng(9, 0, k))
        assert sample.fake.shape == frame.shape and sample.mask.shape == frame.shape[:2]
        assert np.array_equal(sample.real, frame)
        assert np.array_equal(sample.fake, blend(sample.source, frame, sample.mask))
        outside = sample.mask == 0
        assert np.array_equal(sample.fake[outside], frame[outside]), "the frame changed outside the mask"
        assert (sample.fake != frame).any()
        assert sample.params["source_is_transformed"]  # the frame is never the transformed copy
        x0, y0, x1, y1 = sample.params["crop"]
        inside = np.zeros(frame.shape[:2], bool)
        inside[y0:y1, x0:x1] = True
        assert not sample.mask[~inside].any()  # the blend stays in the coarse crop it was made in
        again = self_blend_frame(frame, points, sample_rng(9, 0, k))
        assert again.fake.tobytes() == sample.fake.tobytes() and again.params == sample.params


def test_soft_mask_is_eroded_and_scaled_by_the_blend_ratio():
    mask = np.zeros((200, 200), np.float32)
    mask[50:150, 60:140] = 1.0
    for seed in range(5):
        soft, params = soft_mask(mask, np.random.default_rng(seed))
        assert soft.dtype == np.float32 and soft.shape == mask.shape
        assert soft.max() == pytest.approx(params["blend_ratio"])
        assert params["kernel1"] % 2 == 1 and params["kernel2"] % 2 == 1
        assert (soft[mask == 0] < soft.max()).all()  # full weight only inside the hull


# ----------------------------------------------------------------------------- (b) determinism


def test_same_seed_gives_identical_samples_and_ignores_global_random_state():
    image, landmarks = face(identity=2)
    random.seed(1)
    np.random.seed(1)
    first = self_blend(image, landmarks, None, sample_rng(7, 1, 3), SMALL)
    state_py, state_np = random.getstate(), np.random.get_state()
    random.seed(99)
    np.random.seed(99)
    second = self_blend(image, landmarks, None, sample_rng(7, 1, 3), SMALL)
    for a, b in zip(_arrays(first), _arrays(second), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert first.params == second.params
    # the generator never touches the global streams
    random.seed(1)
    np.random.seed(1)
    self_blend(image, landmarks, None, sample_rng(7, 1, 3), SMALL)
    assert random.getstate() == state_py
    assert all(np.array_equal(x, y) for x, y in zip(np.random.get_state(), state_np, strict=True))


def test_different_seeds_give_different_samples():
    image, landmarks = face(identity=2)
    fakes = [self_blend(image, landmarks, None, sample_rng(7, 1, i), SMALL).fake for i in range(4)]
    assert all(not np.array_equal(fakes[0], other) for other in fakes[1:])
    assert not np.array_equal(sample_rng(0, 0, 1).random(4), sample_rng(0, 1, 0).random(4))
    assert np.array_equal(sample_rng(0, 2, 5).random(4), sample_rng(0, 2, 5).random(4))


# ----------------------------------------------------------------------------- (c) bad input


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda lm: lm[:67], r"shape \(68, 2\) or \(81, 2\)"),
        (lambda lm: np.concatenate([lm, lm[:, :1]], axis=1), r"shape \(68, 2\) or \(81, 2\)"),
        (lambda lm: np.where(np.arange(len(lm))[:, None] == 30, np.nan, lm), "NaN or infinite"),
        (lambda lm: np.where(np.arange(len(lm))[:, None] == 3, np.inf, lm), "NaN or infinite"),
        (lambda lm: lm + 1000.0, "inside the 160x160 image"),
        (lambda lm: np.repeat(lm[:1], len(lm), axis=0), "degenerate landmarks"),
        (lambda lm: np.stack([lm[:, 0], np.full(len(lm), 80.0)], axis=1), "degenerate landmarks"),
    ],
)
def test_bad_landmarks_raise_a_clear_error(change, message):
    image, landmarks = face()
    with pytest.raises(ValueError, match=message) as info:
        self_blend(image, change(np.array(landmarks)), None, sample_rng(0, 0, 0), SMALL, what="vid/007.png")
    assert str(info.value).startswith("vid/007.png: ")


def test_bad_image_and_box_raise_a_clear_error():
    image, landmarks = face()
    rng = sample_rng(0, 0, 0)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        self_blend(image.astype(np.float32), landmarks, None, rng, SMALL)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        self_blend(image[..., 0], landmarks, None, rng, SMALL)
    with pytest.raises(ValueError, match="degenerate box"):
        self_blend(image, landmarks, np.array([50.0, 50.0, 50.0, 90.0]), rng, SMALL)
    with pytest.raises(ValueError, match="box must be"):
        self_blend(image, landmarks, np.zeros(3), rng, SMALL)
    with pytest.raises(ValueError, match="outside the face crop"):
        self_blend(image, landmarks, np.array([2000.0, 2000.0, 2100.0, 2100.0]), rng, SMALL)


def test_config_is_validated():
    with pytest.raises(ValueError, match="p_68_only"):
        SelfBlendConfig(p_68_only=1.5)
    with pytest.raises(ValueError, match="blur_kernel_1"):
        SelfBlendConfig(blur_kernel_1=(4, 25))
    with pytest.raises(ValueError, match="soft_mask_size"):
        SelfBlendConfig(soft_mask_size=(256, 192))
    with pytest.raises(ValueError, match="hull_probs"):
        SelfBlendConfig(hull_probs=(0.5, 0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="hull_types"):
        SelfBlendConfig(hull_types=("facehull", "nope"), hull_probs=(0.5, 0.5))
    with pytest.raises(ValueError, match="size"):
        SelfBlendConfig(size=0)
    from_yaml = SelfBlendConfig(train_margin_scale=[0.2, 0.8], blend_ratios=[0.25, 0.5, 0.75, 1, 1, 1])
    assert from_yaml == DEFAULT_CONFIG and hash(from_yaml) == hash(DEFAULT_CONFIG)


# ----------------------------------------------------------------------------- (d) hulls and flips


@pytest.mark.parametrize("points", [68, 81])
@pytest.mark.parametrize("hull_type", HULL_TYPES)
def test_each_hull_is_a_nonempty_binary_mask_inside_the_landmark_region(hull_type, points):
    landmarks = mean_face_landmarks81([40.0, 60.0, 120.0, 150.0])[:points]
    landmarks = reorder_forehead(landmarks) if points == 81 else landmarks
    mask = hull_mask(hull_type, landmarks, 180, 160)
    assert mask.dtype == np.float32 and mask.shape == (180, 160)
    assert set(np.unique(mask)) == {0.0, 1.0}
    used = landmarks if hull_type == "facehull" else landmarks[:68]
    if hull_type == "extended":
        used = np.concatenate([used, extend_brows(used)])
    x1, y1, x2, y2 = landmark_box(used)
    ys, xs = np.nonzero(mask)
    assert xs.min() >= math.floor(x1) and xs.max() <= math.ceil(x2)
    assert ys.min() >= math.floor(y1) and ys.max() <= math.ceil(y2)
    hull = facehull_mask(used, 180, 160)
    assert (mask <= cv2.dilate(hull, np.ones((3, 3), np.uint8))).all()  # every part lies inside the hull
    assert mask.sum() > 0.3 * hull.sum()


def test_hull_types_differ_and_the_forehead_enlarges_the_face_hull():
    landmarks = reorder_forehead(mean_face_landmarks81([40.0, 60.0, 120.0, 150.0]))
    masks = {t: hull_mask(t, landmarks, 180, 160) for t in HULL_TYPES}
    assert masks["extended"].sum() > masks["components"].sum()
    # on this convex synthetic shape dfl_full and components both fill the 68-point hull; the forehead
    # (facehull of 81 points) and the raised brows (extended) reach higher
    hull68 = facehull_mask(landmarks[:68], 180, 160)
    assert np.array_equal(masks["dfl_full"], hull68) and np.array_equal(masks["components"], hull68)
    top = [int(np.nonzero(masks[t].any(axis=1))[0][0]) for t in ("components", "extended", "facehull")]
    assert top[0] > top[1] > top[2]
    with pytest.raises(ValueError, match="unknown hull type"):
        hull_mask("oval", landmarks, 10, 10)


@pytest.mark.parametrize("points", [68, 81])
def test_flip_permutation_is_an_involution_that_swaps_the_eyes(points):
    perm = flip_permutation(points)
    assert sorted(perm.tolist()) == list(range(points))
    assert np.array_equal(perm[perm], np.arange(points))
    assert set(perm[36:42].tolist()) == set(range(42, 48))
    assert perm[36] == 45 and perm[39] == 42 and perm[0] == 16 and perm[48] == 54 and perm[30] == 30
    # a left-right symmetric face mirrored about its axis maps onto itself, index by index
    width = 200
    landmarks = mean_face_landmarks81([50.0, 40.0, width - 1 - 50.0, 170.0])[:points]
    landmarks = reorder_forehead(landmarks) if points == 81 else landmarks
    np.testing.assert_allclose(flip_landmarks(landmarks, width), landmarks, atol=1e-9)
    np.testing.assert_allclose(flip_landmarks(flip_landmarks(landmarks + 3.0, width), width), landmarks + 3.0)


def test_forehead_reorder_makes_a_left_to_right_contour():
    raw = mean_face_landmarks81([0.0, 0.0, 100.0, 100.0])
    contour = reorder_forehead(raw)[68:]
    assert np.all(np.diff(contour[:, 0]) > 0)
    assert np.array_equal(contour, raw[list(FOREHEAD_ORDER)])
    np.testing.assert_array_equal(reorder_forehead(raw)[:68], raw[:68])
    with pytest.raises(ValueError, match=r"\(81, 2\)"):
        reorder_forehead(raw[:68])


def test_mean_face_landmarks68_fill_the_box():
    points = mean_face_landmarks68([10.0, 20.0, 110.0, 140.0])
    assert points.shape == (68, 2)
    np.testing.assert_allclose(landmark_box(points), [10.0, 20.0 + 0.053 * 120, 110.0, 140.0], atol=1.0)
    assert points[36, 0] < points[45, 0] and points[8, 1] == points[:, 1].max()


# ----------------------------------------------------------------------------- (e) shapes, 68 and 81 points


@pytest.mark.parametrize("points", [68, 81])
@pytest.mark.parametrize("size", [64, 380])
def test_output_shapes_and_dtypes(points, size):
    image, landmarks = face(identity=3, points=points)
    config = dataclasses.replace(DEFAULT_CONFIG, size=size)
    sample = self_blend(image, landmarks, None, sample_rng(0, 0, points), config)
    for array in (sample.real, sample.fake, sample.source):
        assert array.shape == (size, size, 3) and array.dtype == np.uint8
    assert sample.mask.shape == (size, size) and sample.mask.dtype == np.float32
    assert sample.mask.min() >= 0.0 and sample.mask.max() <= 1.0
    assert sample.landmarks.shape == (points, 2) and sample.landmarks.dtype == np.float32
    params = json.loads(json.dumps(sample.params))
    assert params["num_landmarks"] == points and params["hull_type"] in HULL_TYPES
    if points == 68:
        assert params["used_68_only"] is True


def test_81_points_sometimes_use_the_forehead():
    image, landmarks = face(identity=4)
    used = {
        self_blend(image, landmarks, None, sample_rng(1, 0, i), SMALL).params["used_68_only"]
        for i in range(12)
    }
    assert used == {True, False}


def test_flip_keeps_landmark_semantics_and_box_is_respected():
    image, landmarks = face(identity=5)
    config = dataclasses.replace(SMALL, flip_p=1.0)
    sample = self_blend(image, landmarks, None, sample_rng(2, 0, 0), config)
    assert sample.params["flipped"] is True
    assert sample.landmarks[36, 0] < sample.landmarks[45, 0]  # index 36 is still the image-left eye corner
    box = choose_box(
        np.array([[0.0, 0.0, 20.0, 20.0], landmark_box(landmarks[:68]) + np.array([-5, -5, 5, 5])]), landmarks
    )
    assert box[0] > 20
    eval_sample = self_blend(image, landmarks, box, sample_rng(2, 0, 0), SMALL, train=False)
    x0, y0, x1, y1 = eval_sample.params["crop"]
    bw, bh = box[2] - box[0], box[3] - box[1]
    assert x0 == int(box[0] - bw / 8) and y0 == int(box[1] - bh / 8)
    assert x1 == int(box[2] + bw / 8) + 1 and y1 == int(box[3] + bh / 8) + 1


# ----------------------------------------------------------------------------- (f) evaluation mode


def test_eval_mode_has_no_flip_fixed_margins_and_a_seed_independent_crop():
    image, landmarks = face(identity=6)
    samples = [self_blend(image, landmarks, None, sample_rng(9, 0, i), SMALL, train=False) for i in range(8)]
    for sample in samples:
        assert sample.params["flipped"] is False and sample.params["train"] is False
        assert sample.params["margin_scales"] == [DEFAULT_CONFIG.eval_margin_scale] * 4
        assert sample.params["joint_augmentation"] == []
        assert sample.params["crop"] == samples[0].params["crop"]
        assert np.array_equal(sample.landmarks, samples[0].landmarks)
    untouched = [s.real for s in samples if s.params["source_is_transformed"]]
    assert len(untouched) >= 2 and all(np.array_equal(u, untouched[0]) for u in untouched)
    train = [self_blend(image, landmarks, None, sample_rng(9, 0, i), SMALL).params for i in range(8)]
    assert len({tuple(p["crop"]) for p in train}) > 1 and {p["flipped"] for p in train} == {True, False}
