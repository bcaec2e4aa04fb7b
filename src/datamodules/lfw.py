"""LFW: people folders and the 10-fold ``pairs.txt`` verification protocol (View 2), or View 1 lists.

Layout (docs/datasets.md, "LFW"): ``<root>/lfw/<Name>/<Name>_<NNNN>.jpg`` (or ``lfw_funneled/``,
``lfw-deepfunneled/`` via ``image_dir``) and ``<root>/pairs.txt``. ``pairs.txt``: a ``folds<TAB>n`` header,
then per fold ``n`` matched ``Name i j`` and ``n`` mismatched ``Name1 i Name2 j`` lines; ``i``/``j`` are
1-based image numbers (``Name_{i:04d}.<ext>``, any image extension, so aligned copies written as PNG by
``python -m src.preprocess.align`` work too). Whitespace of any kind separates fields (derived lists use
spaces and may lack the final newline). View 1 files (``pairsDevTest.txt``: one count) give one fold; a
pair CSV (``fold,is_same,image_a,image_b``) is read as well. Images the list names but the copy lacks are
reported once (an error unless ``allow_partial``; then their pairs are left out and counted).

LFW is evaluation data: ``val`` and ``test`` are the images the pair list uses (no training split). With
``eval_protocol: pairs`` (default) their batches are pairs: ``image_a``, ``image_b``, ``is_same``, ``fold``,
``index`` and ``identity_a``/``identity_b``; with ``images``, each used image once (``image``,
``identity``, ``index``) and :meth:`LFWDataModule.pair_list` maps pairs to those indices. Either way
``pair_list(split).fold`` gives :func:`src.metrics.identity.verification_accuracy` its ``fold_ids``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from src.datamodules.components.geometry import BoxCrop
from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.pairs import (
    NamedPairs,
    PairNamer,
    lfw_image_name,
    read_pair_list_file,
    split_file_info,
)
from src.datamodules.split import SplitFaceDataModule, SplitRecords, labels_from_keys

LAYOUT = "<root>/lfw/<Name>/<Name>_0001.jpg ... and <root>/pairs.txt"


class LFWDataModule(SplitFaceDataModule):
    """LFW verification pairs with their official folds.

    ``crop_box`` (x, y, w, h in the 250×250 image, e.g. ``[50, 50, 150, 150]`` for the central face
    region) is applied before resizing; ``null`` resizes the whole image.
    """

    dataset_name = "lfw"

    def __init__(
        self,
        root: str,
        image_size: int = 112,
        image_dir: str = "lfw",
        pairs_file: str = "pairs.txt",
        crop_box: Sequence[int] | None = None,
        eval_protocol: str = "pairs",
        **common: Any,
    ) -> None:
        if common.get("train_protocol", "images") != "images" or common.get("triplets_file"):
            raise ValueError("LFW has no training split: train_protocol must be 'images' (no triplets_file)")
        if common.get("pairs_naming", "auto") not in ("auto", "lfw"):
            raise ValueError(
                "LFW pair lists name LFW's own files: datamodule.pairs_naming must be auto or lfw"
            )
        super().__init__(root, image_size, eval_protocol=eval_protocol, **common)
        if crop_box is not None and (len(crop_box) != 4 or min(crop_box[2:]) <= 0):
            raise ValueError(f"datamodule.crop_box must be [x, y, w, h] with w, h > 0, got {crop_box}")
        self.crop_box = None if crop_box is None else tuple(int(v) for v in crop_box)
        self.image_dir = image_dir
        self.pairs_file = pairs_file
        self.official_pairs: NamedPairs | None = None
        self._counts: dict[str, Any] = {}

    def build_records(self) -> dict[str, SplitRecords]:
        """Parse the pair list, index the images it uses and report the ones the copy lacks."""
        if not self.root.is_dir():
            raise DatasetLayoutError(f"dataset root not found: {self.root}. Expected layout: {LAYOUT}")
        folder = self.root / self.image_dir
        if not folder.is_dir():
            raise DatasetLayoutError(
                f"LFW image folder not found: {folder} (set datamodule.image_dir, e.g. lfw_funneled or "
                f"lfw-deepfunneled). Expected layout: {LAYOUT}"
            )
        pairs_path = Path(self.pairs_file).expanduser()
        pairs_path = pairs_path if pairs_path.is_absolute() else self.root / pairs_path
        if not pairs_path.is_file():
            raise DatasetLayoutError(f"LFW pair list not found: {pairs_path}. Expected layout: {LAYOUT}")
        parsed = read_pair_list_file(pairs_path)
        if isinstance(parsed, NamedPairs):
            pairs = parsed
        else:
            on_disk = []
            for person, _ in parsed.identities:
                if (folder / person).is_dir():
                    files = sorted((folder / person).iterdir())
                    on_disk += [f"{person}/{f.name}" for f in files if f.is_file()]
            namer = PairNamer(on_disk, None, "LFW image folder")
            pairs = NamedPairs(
                [
                    namer.lfw(p, n) or lfw_image_name(p, n)
                    for p, n in zip(parsed.person_a, parsed.number_a, strict=True)
                ],
                [
                    namer.lfw(p, n) or lfw_image_name(p, n)
                    for p, n in zip(parsed.person_b, parsed.number_b, strict=True)
                ],
                parsed.is_same,
                parsed.fold,
                list(parsed.lines),
                pairs_path,
            )
        self.official_pairs = pairs
        first_line: dict[str, int] = {}
        for a, b, line in zip(pairs.name_a, pairs.name_b, pairs.lines, strict=True):
            first_line.setdefault(a, line)
            first_line.setdefault(b, line)
        names = sorted(first_line)
        missing = [n for n in names if not (folder / n).is_file()]
        details = {n: f"{pairs_path.name} line {first_line[n]}" for n in missing}
        self.note_missing(pairs_path, folder, missing, details, verb="named in")
        with os.scandir(folder) as entries:
            people = sorted(e.name for e in entries if e.is_dir())
        person_number = {p: i for i, p in enumerate(people)}
        persons = [n.split("/")[0] for n in names]
        records = SplitRecords(
            folder,
            names,
            labels_from_keys(persons),
            {"identity_id": np.asarray([person_number.get(p, -1) for p in persons], np.int64)},
            BoxCrop(self.image_size, None if self.crop_box is None else np.asarray(self.crop_box)),
            identity_names=persons,
        )
        self._counts = {
            "pairs_file": str(pairs_path),
            "identities": len(set(persons)),
            "people_in_folder": len(people),
            "crop_box": self.crop_box,
        }
        return {"val": records, "test": records}

    def named_pairs(self, split: str) -> tuple[NamedPairs, dict[str, object]]:
        """The official pair list (the same for ``val`` and ``test``)."""
        if self.official_pairs is None or self.official_pairs.source is None:
            raise RuntimeError("LFWDataModule.named_pairs before setup()")
        return self.official_pairs, {**split_file_info(self.official_pairs.source, False), "official": True}

    def train_dataloader(self) -> DataLoader:
        """LFW is an evaluation set."""
        raise ValueError("LFW is an evaluation set (pairs.txt protocol); it has no training split")

    def layout_info(self) -> dict[str, Any]:
        """Pair-list file, identities used, people in the image folder."""
        return dict(self._counts)
