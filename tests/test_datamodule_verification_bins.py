"""Verification sets on tiny generated ``.bin`` files: safe loading, decoding, folds, batches, errors."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from src.config.errors import ConfigError
from src.config.instantiate import instantiate
from src.datamodules.components.image_io import CorruptImageError
from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.safe_pickle import (
    UnsafePickleError,
    VerificationBinError,
    kfold_ids,
    load_verification_bin,
)
from src.datamodules.synthetic_faces import SyntheticFacesDataModule
from src.datamodules.verification_bins import VerificationBinsDataModule
from src.datamodules.with_verification import TrainWithVerificationDataModule
from src.metrics.identity import verification_accuracy
from src.preprocess.verification_bins import main, synthetic_verification_sets, write_verification_bin
from tests.fixtures_datasets import compose_datamodule

SIZE = 16


def face(k: int, size: int = SIZE) -> np.ndarray:
    """A BGR image distinct per ``k`` (a colour and a square)."""
    image = np.zeros((size, size, 3), np.uint8)
    image[:] = (30 * (k % 8), 60 + 7 * k % 190, 200 - 5 * k % 180)
    image[2:6, 2 + k % 8 : 6 + k % 8] = 255
    return image


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


def write_bin(path: Path, bins: object, issame: object) -> Path:
    """Exactly as insightface writes a ``.bin`` file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump((bins, issame), f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def make_set(path: Path, pairs: int = 20, ext: str = ".png", arrays: bool = False, size: int = SIZE) -> Path:
    """``pairs`` pairs; image 0 is pure red (BGR (0, 0, 255)); matched pairs alternate with mismatched."""
    images = [face(k, size) for k in range(2 * pairs)]
    images[0] = np.zeros((size, size, 3), np.uint8)
    images[0][..., 2] = 255
    bins = [encode(im, ext) for im in images]
    if arrays:
        bins = [np.frombuffer(b, np.uint8).copy() for b in bins]
    return write_bin(path, bins, [i % 2 == 0 for i in range(pairs)])


def module(root: Path, **kwargs: object) -> VerificationBinsDataModule:
    dm = VerificationBinsDataModule(str(root), **{"image_size": SIZE, "batch_size": 8, **kwargs})
    dm.setup()
    return dm


def test_load_bin_decodes_rgb_pairs_and_folds(tmp_path: Path) -> None:
    data = load_verification_bin(make_set(tmp_path / "lfw.bin"))
    assert len(data) == 20 and len(data.images) == 40
    assert data.is_same.dtype == bool and data.is_same.tolist() == [i % 2 == 0 for i in range(20)]
    assert data.fold.tolist() == [f for f in range(10) for _ in range(2)]
    red = data.decode(0)
    assert red.shape == (SIZE, SIZE, 3) and (red[..., 0] == 255).all() and (red[..., 1:] == 0).all()
    assert np.array_equal(data.decode(5), cv2.cvtColor(face(5), cv2.COLOR_BGR2RGB))
    assert kfold_ids(23, 10).tolist()[:6] == [0, 0, 0, 1, 1, 1]  # KFold: the first n % k folds get one more


def test_uint8_array_bins_protocol2_and_numpy_flags(tmp_path: Path) -> None:
    path = make_set(tmp_path / "a.bin", arrays=True, ext=".jpg")
    data = load_verification_bin(path, folds=5)
    assert isinstance(data.images[0], np.ndarray) and data.fold.max() == 4
    assert data.decode(0)[..., 0].mean() > 240  # red after JPEG
    bins = [encode(face(k)) for k in range(4)]
    with (tmp_path / "p2.bin").open("wb") as f:  # Python 3 protocol 2 (bytes via _codecs.encode)
        pickle.dump((bins, np.array([True, False])), f, protocol=2)
    loaded = load_verification_bin(tmp_path / "p2.bin", folds=2)
    assert loaded.images[1] == bins[1] and loaded.is_same.tolist() == [True, False]


def test_datamodule_batches_sets_and_metric(tmp_path: Path) -> None:
    make_set(tmp_path / "lfw.bin")
    make_set(tmp_path / "cfp_fp.bin", pairs=10, size=24)  # resized to SIZE
    dm = module(tmp_path, sets=["lfw", "cfp_fp"])
    assert dm.set_names == ["lfw", "cfp_fp"]
    assert dm.set_pairs("cfp_fp").pairs == slice(20, 30) and dm.set_pairs("cfp_fp").fold.tolist() == list(
        range(10)
    )
    pairs = dm.pair_list("test")
    assert (
        len(pairs) == 30 and pairs.index_a.tolist()[:2] == [0, 2] and dm.set_ids().tolist()[19:21] == [0, 1]
    )
    batches = list(dm.test_dataloader())
    assert [len(b["index"]) for b in batches] == [8, 8, 8, 6]
    batch = batches[0]
    assert {"image_a", "image_b", "is_same", "fold", "index", "set", "pair_index"} <= set(batch)
    assert batch["image_a"].shape == (8, 3, SIZE, SIZE) and batch["image_a"].dtype == torch.float32
    assert batch["image_a"][0, 0].min() == 1.0 and batch["image_a"][0, 1:].max() == 0.0  # red, RGB order
    assert batch["is_same"].dtype == torch.bool and batch["fold"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    last = batches[-1]  # the tail batch is RGB too (and from the second set, resized)
    assert last["set"].tolist() == [1] * 6 and last["pair_index"].tolist() == [4, 5, 6, 7, 8, 9]
    assert last["image_a"].shape[-1] == SIZE
    assert torch.equal(batches[2]["image_a"][4], batch["image_a"][0])  # cfp_fp pair 0 is red as well
    scores = torch.cat([b["is_same"].float() for b in batches])
    for i, name in enumerate(dm.set_names):
        chosen = dm.set_pairs(name)
        result = verification_accuracy(
            scores[chosen.pairs], torch.from_numpy(chosen.is_same), 10, torch.from_numpy(chosen.fold)
        )
        assert result["mean"] == 1.0 and i in (0, 1)
    info = dm.describe()
    assert (
        info["pairs"] == 30 and info["sets"]["lfw"]["matched"] == 10 and info["sets"]["lfw"]["kind"] == "bin"
    )
    with pytest.raises(ValueError, match="no training split"):
        dm.train_dataloader()


def test_malicious_pickle_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, (f"touch {marker}",)

    path = write_bin(tmp_path / "lfw.bin", [Evil()], [True])
    with pytest.raises(UnsafePickleError, match=r"lfw\.bin.*(posix|os|nt)\.system"):
        load_verification_bin(path)
    (tmp_path / "e.bin").write_bytes(pickle.dumps((eval, ("1",))))
    with pytest.raises(UnsafePickleError, match=r"e\.bin: refused to load the global builtins\.eval"):
        load_verification_bin(tmp_path / "e.bin")
    with pytest.raises(UnsafePickleError, match="lfw.bin"):
        module(tmp_path, sets=["lfw"])
    assert not marker.exists()


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    path = write_bin(tmp_path / "o.bin", [np.array([b"x"], dtype=object)] * 2, [True])
    with pytest.raises(UnsafePickleError, match="o.bin.*Python objects"):
        load_verification_bin(path, folds=1)


def test_truncated_and_corrupt_files(tmp_path: Path) -> None:
    whole = make_set(tmp_path / "lfw.bin").read_bytes()
    (tmp_path / "lfw.bin").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(VerificationBinError, match=r"lfw\.bin: cannot read this \.bin file") as info:
        load_verification_bin(tmp_path / "lfw.bin")
    assert "\n" not in str(info.value)
    (tmp_path / "junk.bin").write_bytes(b"not a pickle at all")
    with pytest.raises(VerificationBinError, match="junk.bin"):
        load_verification_bin(tmp_path / "junk.bin")


def test_structure_errors(tmp_path: Path) -> None:
    png = encode(face(1))
    with pytest.raises(VerificationBinError, match=r"m\.bin: 5 images for 2 issame flags"):
        load_verification_bin(write_bin(tmp_path / "m.bin", [png] * 5, [True, False]), folds=1)
    with pytest.raises(VerificationBinError, match=r"n\.bin: 12 pairs cannot be cut into 10 equal folds"):
        load_verification_bin(write_bin(tmp_path / "n.bin", [png] * 24, [True] * 12))
    with pytest.raises(VerificationBinError, match=r"s\.bin: issame_list\[1\] must be a boolean"):
        load_verification_bin(write_bin(tmp_path / "s.bin", [png] * 4, [True, 1]), folds=1)
    with pytest.raises(VerificationBinError, match=r"b\.bin: bins\[0\] must be encoded image bytes"):
        load_verification_bin(write_bin(tmp_path / "b.bin", ["text", png], [True]), folds=1)
    with pytest.raises(VerificationBinError, match="expected a pickled"):
        (tmp_path / "t.bin").write_bytes(pickle.dumps([png]))
        load_verification_bin(tmp_path / "t.bin")


def test_undecodable_image_names_file_and_index(tmp_path: Path) -> None:
    bins = [encode(face(k)) for k in range(20)]
    bins[7] = b"\x00garbage"
    write_bin(tmp_path / "agedb_30.bin", bins, [True] * 10)
    dm = module(tmp_path, sets=["agedb_30"])
    with pytest.raises(CorruptImageError, match=r"agedb_30\.bin: image 7 \(pair 3\)"):
        dm.pair_dataset()[3]


def test_missing_set_lists_what_root_holds(tmp_path: Path) -> None:
    make_set(tmp_path / "lfw.bin")
    dm = VerificationBinsDataModule(str(tmp_path), sets=["lfw", "calfw"], batch_size=2)
    with pytest.raises(DatasetLayoutError, match=r"'calfw' not found.*holds: lfw\.bin"):
        dm.check_layout()
    with pytest.raises(DatasetLayoutError, match="calfw"):
        dm.setup()


def test_image_folder_with_pair_csv(tmp_path: Path) -> None:
    folder = tmp_path / "calfw"
    lines = ["fold,is_same,image_a,image_b"]
    for i in range(10):
        for k in (2 * i, 2 * i + 1):
            (folder / f"p{k}").mkdir(parents=True)
            cv2.imwrite(str(folder / f"p{k}" / "0.png"), face(k))
        lines.append(f"{i // 2},{int(i % 2 == 0)},p{2 * i}/0.png,p{2 * i + 1}/0.png")
    red = np.zeros((SIZE, SIZE, 3), np.uint8)
    red[..., 2] = 255  # BGR
    cv2.imwrite(str(folder / "p0" / "0.png"), red)
    (folder / "pairs.csv").write_text("\n".join(lines) + "\n")
    make_set(tmp_path / "lfw.bin")
    dm = module(tmp_path, sets=["calfw", "lfw"], folds=5)
    chosen = dm.set_pairs("calfw")
    assert chosen.kind == "folder" and chosen.fold.tolist() == [f for f in range(5) for _ in range(2)]
    item = dm.pair_dataset()[0]
    assert item["image_a"][0].min() == 1.0 and item["image_a"][1:].max() == 0.0 and item["set"] == 0
    assert dm.pair_dataset()[10]["set"] == 1 and len(dm.pair_dataset()) == 30
    with pytest.raises(VerificationBinError, match=r"pairs\.csv: the pair list has 5 fold"):
        module(tmp_path, sets=["calfw"], folds=10)


def test_config_composes_and_builds(tmp_path: Path) -> None:
    make_set(tmp_path / "lfw.bin")
    node = compose_datamodule("verification_bins", [f"datamodule.root={tmp_path}", "datamodule.sets=[lfw]"])
    dm = instantiate(node)
    assert isinstance(dm, VerificationBinsDataModule) and dm.set_names == ["lfw"] and dm.image_size == 112
    dm.setup()
    assert next(iter(dm.pair_dataset()))["image_a"].shape == (3, 112, 112)


# --- training data with verification sets (the composite DataModule) and the .bin writer ---------------


def test_train_with_verification_delegates_each_loader(tmp_path: Path) -> None:
    synthetic_verification_sets(tmp_path, ["lfw"], identities_per_set=20, pairs_per_fold=1, image_size=SIZE)
    train = SyntheticFacesDataModule(
        num_identities=12,
        train_identities=4,
        val_identities=4,
        test_identities=4,
        images_per_identity=2,
        image_size=SIZE,
        batch_size=4,
    )
    bins = VerificationBinsDataModule(str(tmp_path), sets=["lfw"], image_size=SIZE, batch_size=8)
    dm = TrainWithVerificationDataModule(train, bins)
    dm.setup("fit")
    assert dm.num_classes == 4 and dm.image_size == SIZE
    assert set(next(iter(dm.train_dataloader()))) >= {"image", "identity"}
    val = list(dm.val_dataloader())
    assert sum(len(b["index"]) for b in val) == 20 and "image_a" in val[0]
    assert [len(b["index"]) for b in dm.test_dataloader()] == [8, 8, 4]
    info = dm.describe()
    assert info["train"]["dataset"] == "SyntheticFaces" and info["verification"]["pairs"] == 20
    with pytest.raises(
        ConfigError, match=r"datamodule.image_size is 32 but \{'train': 16, 'verification': 16\}"
    ):
        TrainWithVerificationDataModule(train, bins, image_size=32)
    with pytest.raises(ConfigError, match="datamodule.verification must be a VerificationBinsDataModule"):
        TrainWithVerificationDataModule(train, train)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="datamodule.train must be a face DataModule"):
        TrainWithVerificationDataModule(object(), bins)  # type: ignore[arg-type]
    missing = TrainWithVerificationDataModule(
        train, VerificationBinsDataModule(str(tmp_path / "absent"), sets=["lfw"])
    )
    with pytest.raises(DatasetLayoutError, match="absent"):
        missing.check_layout()


def test_bin_writer_round_trips_through_the_restricted_reader(tmp_path: Path) -> None:
    pairs = [(face(0), face(1)), (face(2), face(2))]
    path = write_verification_bin(tmp_path / "x.bin", pairs, [False, True])
    loaded = load_verification_bin(path, folds=1)
    assert loaded.is_same.tolist() == [False, True]
    assert np.array_equal(loaded.decode(1), face(1))  # PNG is lossless, RGB order kept
    with pytest.raises(ValueError, match="one issame flag per pair"):
        write_verification_bin(tmp_path / "y.bin", pairs, [True])
    assert (
        main(
            [
                "--out",
                str(tmp_path / "cli"),
                "--sets",
                "calfw",
                "--identities-per-set",
                "20",
                "--pairs-per-fold",
                "1",
                "--image-size",
                "16",
            ]
        )
        == 0
    )
    assert load_verification_bin(tmp_path / "cli" / "calfw.bin").is_same.sum() == 10
