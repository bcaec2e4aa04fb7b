"""Nominal sizes of the datasets paper tables read, for the dry-run's GPU-hour estimate.

Counts are the published split sizes of each dataset (the ones its DataModule reads, see
``docs/datasets.md``), in the unit a training step consumes: images, or face frames for the video datasets
(videos × frames kept per video by the preprocessing the configs name). They size an *estimate*: a partial
copy, another frame count or a filtered list changes the real figure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSize:
    """Items per split (``val``/``test`` 0 when the split is not read) and where the figure comes from."""

    train: int
    val: int
    test: int
    unit: str
    note: str

    def split(self, name: str) -> int:
        """The size of split ``name`` (``train``, ``val`` or ``test``)."""
        if name not in ("train", "val", "test"):
            raise KeyError(f"no split '{name}' (train, val, test)")
        return int(getattr(self, name))


_FFPP_VIDEOS = (720, 140, 140)  # per method and for the originals: the official pair split
_FFPP_FRAMES = 32  # frames per video of the FF++ preprocessing (docs/datasets.md, "FaceForensics++")

DATASET_SIZES: dict[str, DatasetSize] = {
    "celeba": DatasetSize(162_770, 19_867, 19_962, "images", "CelebA's list_eval_partition.txt"),
    "celeba_hq": DatasetSize(24_183, 2_993, 2_824, "images", "CelebA-HQ by CelebA's partition"),
    "ffhq": DatasetSize(60_000, 10_000, 10_000, "images", "FFHQ: first 60,000 train, last 10,000 val = test"),
    "celeba_with_verification": DatasetSize(
        162_770,
        62_000,
        62_000,
        "images",
        "CelebA train list; val = test = LFW, CFP-FP, AgeDB-30, CALFW, CPLFW (31,000 pairs)",
    ),
    "lfw_pairs": DatasetSize(0, 0, 12_000, "images", "LFW's 6,000 pairs of pairs.txt (two images each)"),
    "vggface2": DatasetSize(3_141_890, 0, 169_396, "images", "VGGFace2 train (8,631 ids) / test (500 ids)"),
    "ffpp_c23": DatasetSize(
        *(n * 5 * _FFPP_FRAMES for n in _FFPP_VIDEOS),
        "frames",
        "FF++ c23: 720/140/140 videos each of originals and 4 methods, 32 frames per video",
    ),
    "ffpp_c23_sbi": DatasetSize(
        720 * 8 * 2,
        140 * 8 * 2,
        140 * 5 * _FFPP_FRAMES,
        "frames",
        "SBI on FF++ c23: 8 real frames per training video, each paired with its self-blend; test as FF++",
    ),
    "celeb_df_v2": DatasetSize(
        0, 0, 518 * _FFPP_FRAMES, "frames", "Celeb-DF v2's 518 test videos, 32 frames per video"
    ),
    "mt_makeup": DatasetSize(
        1_115, 0, 8, "images", "MT: one (non-makeup, makeup) pair per non-makeup face; 8 fixed test pairs"
    ),
    "one_to_n": DatasetSize(0, 0, 1_000, "images", "a 1:N set: 500 identities x (query, gallery)"),
}
