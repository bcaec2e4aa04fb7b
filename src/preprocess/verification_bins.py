"""Write verification sets in the face.evoLVe / insightface ``.bin`` format (pickled ``(bins, issame)``).

``bins`` holds the encoded images of every pair in order (``a0, b0, a1, b1, ...``) and ``issame`` one boolean
per pair; the reader (:class:`~src.datamodules.verification_bins.VerificationBinsDataModule`) splits the pairs
into consecutive equal folds. This module writes such files from any images, and builds stand-in sets from
held-out SyntheticFaces identities (NOT real data) so the demos and tests exercise the real reader:

    python -m src.preprocess.verification_bins --out data/demo_verification --pairs-per-fold 6

Layout and reader: docs/datasets.md, "Verification sets (.bin)".
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from src.datamodules.components.pairs import derive_pairs
from src.datamodules.synthetic_faces import SyntheticFacesDataset

#: the five sets PRO-Face C and most recognition papers report, in their usual order
STANDARD_SETS = ("lfw", "cfp_fp", "agedb_30", "calfw", "cplfw")


def encode_image(image: np.ndarray, ext: str = ".png") -> bytes:
    """An RGB ``uint8`` [H, W, 3] image encoded as ``ext`` bytes (what ``.bin`` files hold)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    ok, data = cv2.imencode(ext, np.ascontiguousarray(image[:, :, ::-1]))
    if not ok:
        raise ValueError(f"could not encode an image as {ext}")
    return data.tobytes()


def write_verification_bin(
    path: str | Path,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    issame: Sequence[bool],
    ext: str = ".png",
) -> Path:
    """Write ``pairs`` of RGB ``uint8`` images with their ``issame`` flags as a ``.bin`` file."""
    if len(pairs) != len(issame) or not pairs:
        raise ValueError(
            f"need one issame flag per pair and at least one pair, got {len(pairs)}, {len(issame)}"
        )
    bins = [encode_image(image, ext) for pair in pairs for image in pair]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with part.open("wb") as f:
        pickle.dump((bins, [bool(s) for s in issame]), f, protocol=pickle.HIGHEST_PROTOCOL)
    part.replace(path)
    return path


def synthetic_verification_bin(
    path: str | Path,
    identities: Sequence[int],
    folds: int = 10,
    pairs_per_fold: int = 6,
    images_per_identity: int = 4,
    image_size: int = 112,
    seed: int = 0,
) -> Path:
    """A ``.bin`` of LFW-style pairs (``folds`` identity-disjoint folds, ``pairs_per_fold`` matched and as
    many mismatched per fold, grouped fold by fold) over SyntheticFaces ``identities``."""
    dataset = SyntheticFacesDataset(identities, images_per_identity, image_size, seed, sample_offset=5000)
    pairs = derive_pairs(dataset.labels, folds, pairs_per_fold, seed)
    order = np.argsort(pairs.fold, kind="stable")  # the reader's folds are consecutive blocks
    images = [(dataset.render(int(pairs.index_a[i])), dataset.render(int(pairs.index_b[i]))) for i in order]
    return write_verification_bin(path, images, [bool(pairs.is_same[i]) for i in order])


def synthetic_verification_sets(
    root: str | Path,
    sets: Sequence[str] = STANDARD_SETS,
    first_identity: int = 10_000,
    identities_per_set: int = 24,
    folds: int = 10,
    pairs_per_fold: int = 6,
    images_per_identity: int = 4,
    image_size: int = 112,
    seed: int = 0,
) -> list[Path]:
    """One synthetic ``<root>/<set>.bin`` per name, each over its own identities from ``first_identity`` on
    (far above any training split's, so the sets are identity-disjoint from training)."""
    written = []
    for number, name in enumerate(sets):
        start = first_identity + number * identities_per_set
        written.append(
            synthetic_verification_bin(
                Path(root) / f"{name}.bin",
                range(start, start + identities_per_set),
                folds,
                pairs_per_fold,
                images_per_identity,
                image_size,
                seed + number,
            )
        )
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: write synthetic stand-ins of the verification sets."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder that receives <set>.bin")
    parser.add_argument("--sets", nargs="+", default=list(STANDARD_SETS))
    parser.add_argument("--identities-per-set", type=int, default=24)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument(
        "--pairs-per-fold", type=int, default=6, help="matched (and as many mismatched) per fold"
    )
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in synthetic_verification_sets(
        args.out,
        args.sets,
        identities_per_set=args.identities_per_set,
        folds=args.folds,
        pairs_per_fold=args.pairs_per_fold,
        image_size=args.image_size,
        seed=args.seed,
    ):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
