"""Synthetic makeup-transfer data: the three DataModules read it, its label maps match the renders, it is
deterministic and resumable, and the face renderer it builds on still draws what it drew before."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from src.config.compose import compose
from src.config.instantiate import instantiate
from src.datamodules.components.synthetic_face_renderer import (
    LABEL_BACKGROUND,
    LABEL_BROW_LEFT,
    LABEL_BROW_RIGHT,
    LABEL_EAR_LEFT,
    LABEL_EAR_RIGHT,
    LABEL_EYE_LEFT,
    LABEL_EYE_RIGHT,
    LABEL_HAIR,
    LABEL_LOWER_LIP,
    LABEL_MOUTH_INTERIOR,
    LABEL_NECK,
    LABEL_NOSE,
    LABEL_SKIN,
    LABEL_UPPER_LIP,
    IdentityTraits,
    ImageVariation,
    face_label_map,
    face_parsing,
    render_face,
    render_synthetic_face,
)
from src.preprocess.synthetic_makeup import (
    INFO_FILE,
    MT_TARGET,
    STYLES,
    MakeupStyle,
    main,
    render_makeup_face,
    write_synthetic_makeup_data,
)

SIZE = 32
LIPS = [LABEL_UPPER_LIP, LABEL_LOWER_LIP]
COUNTS = {"non_makeup": 6, "makeup": 5, "sources": 3, "references": 2, "identities": 3}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return write_synthetic_makeup_data(
        tmp_path_factory.mktemp("synthetic_makeup") / "root", SIZE, **COUNTS, seed=3, progress=False
    )


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def _dilate(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel (8-neighbourhood): anti-aliased edges belong to either side."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _changed(a: np.ndarray, b: np.ndarray, threshold: int = 20) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > threshold


# --- the DataModules on the written folders -----------------------------------------------------------


def test_the_three_datamodules_compose_set_up_and_yield_batches(data) -> None:
    small = ["datamodule.image_size=24", "datamodule.batch_size=2", "datamodule.num_workers=0"]
    extra = {"mt_makeup": ["datamodule.eval_pairs=3"], "one_to_n": ["datamodule.gallery_size=16"]}
    batches = {}
    for name, keys in data.datamodule_keys().items():
        overrides = [f"datamodule={name}", *small, *extra.get(name, [])]
        overrides += [f"datamodule.{key}={value}" for key, value in keys.items()]
        dm = instantiate(compose("demo/recognizer", overrides).config.datamodule)
        dm.setup()
        batches[name] = (dm, next(iter(dm.test_dataloader())))
    dm, batch = batches["mt_makeup"]
    train = next(iter(dm.train_dataloader()))
    for item in (batch, train):
        assert item["source"].shape == (2, 3, 24, 24) and item["reference"].dtype == torch.float32
        assert item["source_labels"].shape == (2, 24, 24) and item["reference_labels"].dtype == torch.int64
        assert int(item["source_labels"].max()) <= 13
        assert {LABEL_SKIN, LABEL_HAIR} <= set(item["source_labels"].unique().tolist())
    assert dm.describe()["train_items_per_epoch"] == COUNTS["non_makeup"]
    assert all(name.startswith("makeup/") for name in batch["reference_name"])
    assert dm.load_target(MT_TARGET).shape == (3, 24, 24)
    dm, batch = batches["makeup_pairs"]
    assert len(dm.dataset()) == COUNTS["sources"] * COUNTS["references"]
    assert batch["source_name"] == ["0.jpg", "0.jpg"] and batch["source"].shape == (2, 3, 24, 24)
    dm, batch = batches["one_to_n"]
    assert len(dm.dataset()) == COUNTS["identities"]
    assert batch["gallery"].shape == (2, 3, 16, 16) and batch["reference"].shape == (2, 3, 24, 24)
    assert all(name.endswith("_0001.jpg") for name in batch["query_name"])
    assert all(name.endswith("_0002.jpg") for name in batch["gallery_name"])
    assert "SYNTHETIC" in data.readme.read_text() and data.test_target.is_file()


# --- label maps -----------------------------------------------------------------------------------------


def _flipped(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """A colour far from ``rgb`` in every channel."""
    return tuple(1.0 if c < 0.5 else 0.0 for c in rgb)  # type: ignore[return-value]


@pytest.mark.parametrize("size", [32, 64])
def test_label_maps_sit_where_the_renderer_draws_each_part(size: int) -> None:
    """Recolour one part in the renderer's own inputs (no parser involved): the part's labelled pixels
    change, pixels change only where the parsing gives the part coverage, and every strongly changed pixel
    is labelled the part (give or take the one-pixel anti-aliased edge)."""
    lips = [LABEL_UPPER_LIP, LABEL_LOWER_LIP]
    eyes, brows = [LABEL_EYE_LEFT, LABEL_EYE_RIGHT], [LABEL_BROW_LEFT, LABEL_BROW_RIGHT]
    skin = [LABEL_SKIN, LABEL_NOSE, LABEL_EAR_LEFT, LABEL_EAR_RIGHT, LABEL_NECK]
    tested = 0
    for identity in range(16):
        traits, variation = IdentityTraits.sample(5, identity), ImageVariation.sample(5, identity, 1)
        if traits.glasses:  # glasses have no class: the data never uses such identities
            continue
        tested += 1
        parsing = face_parsing(traits, variation, size)
        labels, image = parsing.labels, render_face(traits, variation, size)
        assert np.array_equal(labels, face_label_map(traits, variation, size))
        assert np.allclose(parsing.coverage.sum(axis=0), 1.0, atol=1e-4)
        # (the face with one part recoloured, its labels, labels drawn over it that let a little through)
        parts = [
            # the mouth line, in a dark lip tone, crosses an open mouth
            (replace(traits, lip_rgb=_flipped(traits.lip_rgb)), variation, lips, [LABEL_MOUTH_INTERIOR]),
            (
                replace(traits, hair_rgb=_flipped(traits.hair_rgb)),
                variation,
                [LABEL_HAIR],
                brows,
            ),  # hair-toned
            # lid lines are drawn in a dark skin tone, brows are 95 % opaque
            (replace(traits, skin_rgb=_flipped(traits.skin_rgb)), variation, skin, eyes + brows),
            (replace(traits, eye_rgb=_flipped(traits.eye_rgb)), variation, [], eyes),  # the irises
            # the background and the clothing, which has no class of its own
            (
                traits,
                replace(variation, clothing_rgb=_flipped(variation.clothing_rgb)),
                [LABEL_BACKGROUND],
                [],
            ),
        ]
        for part_traits, part_variation, ids, also in parts:
            change = np.abs(render_face(part_traits, part_variation, size).astype(int) - image).max(axis=2)
            changed = change > 20
            assert not (changed & (parsing.visible(*ids, *also) == 0)).any(), (identity, ids)
            region = np.isin(labels, ids)
            if ids and changed[region].sum() >= 4:
                # the background is mostly not clothing; a beard (face skin) hides the skin under it
                if ids != [LABEL_BACKGROUND] and not (ids == skin and traits.beard):
                    assert changed[region].mean() > 0.8, (identity, ids, changed[region].mean())
                # a pixel changed about as much as the part's own pixels is the part's, or on its edge
                # (up to a few pixels of sub-pixel slivers: a bald head's hair, a lip's thin corner)
                strong = change > 0.6 * np.percentile(change[region & changed], 75)
                assert (strong & ~_dilate(np.isin(labels, ids + also))).sum() <= 3, (identity, ids)
        left, right = (labels == LABEL_EYE_LEFT).nonzero()[1], (labels == LABEL_EYE_RIGHT).nonzero()[1]
        if len(left) and len(right):
            assert left.mean() < right.mean(), identity
        if variation.mouth_open == 0:
            assert not (labels == LABEL_MOUTH_INTERIOR).any(), identity
    assert tested >= 10


def _chromaticity(rgb: np.ndarray) -> np.ndarray:
    values = rgb.astype(float) + 1.0
    return values / values.sum(axis=-1, keepdims=True)


def test_written_makeup_changes_only_skin_and_lips_and_the_lip_labels_take_the_lip_colour(data) -> None:
    """Each written made-up face is its plain render (same face, same pose) changed only on skin, nose and
    lips; the labelled lips take the lipstick's colour and a lipstick alone changes the image around the
    lip labels; the files hold exactly what the API renders."""
    info = json.loads(data.info.read_text())
    made_up = [f for f in info["files"] if f["role"] == "makeup"]
    assert len(made_up) == COUNTS["makeup"] and info["synthetic"] and info["complete"]
    checked = 0
    for record in made_up:
        labels = np.asarray(Image.open(data.root / record["labels"]))
        image = _rgb(data.root / record["path"])
        style = MakeupStyle(**{k: tuple(v) if isinstance(v, list) else v for k, v in record["style"].items()})
        identity, sample = record["identity"], record["sample"]
        plain, expected, expected_labels = render_makeup_face(3, identity, sample, SIZE, style)
        assert np.array_equal(image, expected) and np.array_equal(labels, expected_labels)
        parsing = face_parsing(
            IdentityTraits.sample(3, identity), ImageVariation.sample(3, identity, sample), SIZE
        )
        assert np.array_equal(parsing.labels, labels)
        change = np.abs(image.astype(int) - plain).max(axis=2)
        makeup_classes = parsing.visible(LABEL_SKIN, LABEL_NOSE, *LIPS)
        assert not ((change > 0) & (makeup_classes == 0)).any(), record["path"]  # eyes, brows, hair... kept
        # most of the change is on pixels labelled skin, nose or lips (the rest: their anti-aliased edges)
        assert (change * np.isin(labels, [LABEL_SKIN, LABEL_NOSE, *LIPS])).sum() > 0.7 * change.sum()
        lips = np.isin(labels, LIPS)
        if lips.sum() < 3:
            continue
        checked += 1
        target = _chromaticity(np.asarray(style.lip_rgb) * 255)
        before = np.abs(_chromaticity(plain[lips]) - target).sum(axis=-1).mean()
        assert np.abs(_chromaticity(image[lips]) - target).sum(axis=-1).mean() < before, record["path"]
        # a lipstick alone changes the labelled lips, centred on them
        lipstick = replace(STYLES[0], blush_strength=0.0, shadow_strength=0.0, foundation_strength=0.0)
        change = np.abs(render_makeup_face(3, identity, sample, SIZE, lipstick)[1].astype(int) - plain).max(
            axis=2
        )
        assert (change[lips] > 5).mean() > 0.8, record["path"]
        rows, cols = np.mgrid[:SIZE, :SIZE]
        centre = ((change * rows).sum() / change.sum(), (change * cols).sum() / change.sum())
        lip_rows, lip_cols = lips.nonzero()
        assert lip_rows.min() - 2 <= centre[0] <= lip_rows.max() + 2, record["path"]
        assert lip_cols.min() - 2 <= centre[1] <= lip_cols.max() + 2, record["path"]
    assert checked >= 2
    non_makeup = [f for f in info["files"] if f["role"] == "non_makeup"]
    for record in non_makeup[:2]:
        plain, _, labels = render_makeup_face(3, record["identity"], record["sample"], SIZE)
        assert np.array_equal(_rgb(data.root / record["path"]), plain)
        assert np.array_equal(np.asarray(Image.open(data.root / record["labels"])), labels)


# --- determinism, resuming, the command line -------------------------------------------------------------


def test_same_seed_same_bytes_and_resume_rewrites_only_what_is_missing(data, tmp_path: Path) -> None:
    again = write_synthetic_makeup_data(tmp_path / "again", SIZE, **COUNTS, seed=3, progress=False)
    files = _files(data.root)
    images = sum(COUNTS.values()) + COUNTS["identities"] + 2  # 1:N: two images each; two target faces
    assert _files(again.root) == files and (again.written, again.kept) == (images, 0)
    other = write_synthetic_makeup_data(tmp_path / "other", SIZE, **COUNTS, seed=4, progress=False)
    assert (
        _files(other.root)["MT-Dataset/images/non-makeup/synthetic_0000.png"]
        != files["MT-Dataset/images/non-makeup/synthetic_0000.png"]
    )
    lost = again.root / "MT-Dataset/images/makeup/synthetic_0001_smoky.png"
    lost.unlink()
    resumed = write_synthetic_makeup_data(tmp_path / "again", SIZE, **COUNTS, seed=3, progress=False)
    assert (resumed.written, _files(again.root)) == (1, files)
    with pytest.raises(ValueError, match="other settings"):
        write_synthetic_makeup_data(tmp_path / "again", SIZE, **COUNTS, seed=4, progress=False)
    stray = tmp_path / "stray" / "Dataset-test" / "reference" / "real_face.png"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"")
    with pytest.raises(ValueError, match="not empty"):
        write_synthetic_makeup_data(tmp_path / "stray", SIZE, **COUNTS, progress=False)
    with pytest.raises(ValueError, match="does not write"):
        write_synthetic_makeup_data(tmp_path / "stray", SIZE, **COUNTS, progress=False, force=True)
    assert main(["--root", str(tmp_path / "cli"), "--image-size", "8", "--no-progress"]) == 2
    assert main(["--root", str(tmp_path / "cli"), "--identities", "1", "--no-progress"]) == 2
    args = ["--root", str(tmp_path / "cli"), "--image-size", "16", "--non-makeup", "2", "--makeup", "1"]
    assert main([*args, "--sources", "1", "--references", "1", "--identities", "2", "--no-progress"]) == 0
    assert (tmp_path / "cli" / INFO_FILE).is_file()


# --- the renderer is unchanged -------------------------------------------------------------------------

#: 4 x 4 block sums (uint16, little-endian, [8, 8, 3]) of ``render_synthetic_face(0, identity, 0, 32)`` as
#: the renderer drew them before it could produce label maps: identity 0 wears glasses, 2 a beard and a
#: moustache, 11 has long hair and an open mouth
GOLDEN_BLOCK_SUMS = {
    0: (
        "lA5vDfIFuw6pDdMFEg8NDtkFTQ9ZDsoFaQ+GDp0Fow/eDpcFzw9GD58F1A9oD3AFBA/jDVMGTw8/DlQGXA9VDiIGgwxOCokE"
        "AAyWCT0EMA9QDpEFzg9RD5QF6A+HD3AFmw6GDeUFqg6jDakFSAoCB4wDGAhDA2YCKghKA2sCWgk2BeYClg/jDjoF0Q9cDzYF"
        "4Q7NDRoGEQ6jDJsFDAdyA6QC7wYjBE4DFAfEA/cCtwdCA20CCg7IDOoE7w+yD3gFqg6gDdkFcAtiCUAE3QbdAycDBgdLBIoD"
        "gQfxBCcETQfYAwsD2w2CDGsE1g9PDwEFwQ67DeIFfAjyBR0DKgZmA8ACiQadAxYDRAdpBKYDHgfCA6oC0A9rD3sF7Q+8D1oF"
        "wg7FDdkF9Q3CDGAFQQgmBmMDCwagAwADxQYEBLAC6AcyBZcCog8SDwEFxQ9UD+MEGAddCIYDDgddCH0DOgYmBjEDrAVwBPYC"
        "7At1C4wENQ99Dh0Fyg9gDz8F3Q+fDysF"
    ),
    2: (
        "JgSkBDoElwMpBLwDBwSpBDYElgMnBMgDZAOYA3UDcAMKBLID0wPGBD8EXQNoBN4DDwSLBCME9gOGBBYEwAMmBNgDkgL6AU8C"
        "ewLJATACfwLXATYCPwPbA4gDHwQiBZUE/wN3BA8EQgTLBFkEAgOvAsQCbAWHBFQEhALPATUClwLZAUUCCAP2AgED6QPsBF4E"
        "4wNZBPADIASfBDIEWAV+BEIEAwrNCLEHSwkTCC4HRQgRB2MGBAPUAvACugO2BCwETAS/BFEEHASdBC0ESQWABDYEegoGCeYH"
        "2AwnC6MJvAstCucIkwO5A5oDvAO3BCsEgwT0BIMEDgSQBB4EBwXVBHgE9Qa/BUYFlwcrBp8F6AWKBQkFBgTYBFYEFQQLBX0E"
        "XQTHBFcEaATjBG8E8wa0Bu8F+QjUB+AGWAfcBgoGTQQXBY4E9QPUBEgEUgRFBbQEFATsAxIEJwT5AyQE7gV3BT0FlAieB8gG"
        "DgbrBV4FpARmBdoEFgTvBGQETQQ+BasE"
    ),
    11: (
        "CgbfBZgGHwYDBo0GfAZtBsoG0wbPBgMHRgdUB1oHwAfZB7YHNQhcCA4IRwh/CAUI4gW8BVoGNwYjBpQGbgZXBqIGtwQpBHYE"
        "SQXUBP8ErAfDB48HGwhHCOYHQAh7CPIH8wXWBV0GQgY0Bo8G6wMVA3sDjAJFAcMBjwJGAccBzQQpBEoE9wcsCLUHcQiwCBII"
        "9wXgBVAGTwZJBo0G5QSlA6wDvwlZCLAHNgrUCAYILAUDBAEE5AceCJgHaQitCAEIGQYLBmEGfgZ+BqsGkAVyBGEEFQz2CvEJ"
        "FgznCt0JEgbiBLUE0QcDCHQHWAifCOEHLwYnBmcGjwaWBq0GFwNGAoACoAmeB8YG2QmnB8YG6wMwAzUDTgdyB+cGggjSCAYI"
        "MAYvBlgGwAbKBs0G2QbwBs0GFQduBvYFngh/B6cGpwffB08HHghiCKwHsAgBCSQIcwZ7Bo4GYAbLB8YGCgY9CioHtQY/C3UH"
        "hQcOC5kHtQUUDGMH/AWOC2YH/AZ2CpkH"
    ),
}


def test_renderer_draws_what_it_drew_before_label_maps_existed() -> None:
    """The renders match fingerprints taken before the refactor that shares the part geometry with the
    label maps (bit-identical on the machine that made them; a tolerance of a few levels per 16-pixel block
    leaves room for last-bit differences of numpy's transcendental functions across CPUs)."""
    for identity, encoded in GOLDEN_BLOCK_SUMS.items():
        golden = np.frombuffer(base64.b64decode(encoded), dtype="<u2").reshape(8, 8, 3).astype(int)
        image = render_synthetic_face(0, identity, 0, 32)
        sums = image.astype(int).reshape(8, 4, 8, 4, 3).sum(axis=(1, 3))
        assert np.abs(sums - golden).max() <= 4, identity
