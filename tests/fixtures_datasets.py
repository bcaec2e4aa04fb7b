"""Miniature on-disk copies of the real dataset layouts (the "minimal fake copy" of each dataset).

Tiny images, but metadata files in the exact formats: count and header lines, CRLF where the real files
have it, runs of spaces, tabs, quoted fields. Each ``make_*`` writes under ``root`` and returns it (or a
description of what it wrote); :func:`tiny_data_overrides` builds all of them for the experiment tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from src.preprocess.verification_bins import synthetic_verification_sets
from src.preprocess.videos import FAILURE_COLUMNS, INDEX_COLUMNS

CRLF = "\r\n"

CELEBA_ATTRIBUTES = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]


def write_image(path: Path, width: int, height: int, seed: int, gray: bool = False) -> Path:
    """A distinct random picture (JPEG or PNG by suffix), optionally single-channel."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (1, 1, 3))
    image = np.clip(base + rng.integers(-40, 40, (height, width, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[..., 0] if gray else image)
    return path


def write_text(path: Path, lines: Sequence[str], newline: str = "\n", final_newline: bool = True) -> Path:
    """Write ``lines`` with an exact line ending (bytes, so CRLF survives on every platform)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = newline.join(lines) + (newline if final_newline else "")
    path.write_bytes(text.encode("utf-8"))
    return path


# --- CelebA -------------------------------------------------------------------------------------------

# Non-contiguous CelebA ids, identity-disjoint across partition 0 / 1 / 2.
CELEBA_IDS = {0: (2880, 2937, 8692, 5805), 1: (4153, 9040), 2: (6369, 10177)}


def make_celeba(
    root: Path,
    layout: str = "flat",
    images_per_identity: int = 3,
    ids: dict[int, Sequence[int]] | None = None,
    size: tuple[int, int] = (178, 218),
) -> dict[str, object]:
    """CelebA: ``img_align_celeba/000001.jpg ...`` + the five list files (CRLF, count/header lines).

    ``layout``: ``flat`` (torchvision's ``celeba/`` folder), ``official`` (``Img/``, ``Anno/``, ``Eval/``) or
    ``kaggle`` (``img_align_celeba/img_align_celeba/`` and CSV partition/attribute files, no identity file).
    Images are interleaved over the partition in file order, as in no real copy, to test sorting by split.
    Returns ``files``, ``identity`` and ``partition`` per file.
    """
    ids = ids or CELEBA_IDS
    rows = [
        (identity, part)
        for part, group in ids.items()
        for identity in group
        for _ in range(images_per_identity)
    ]
    order = np.random.default_rng(0).permutation(len(rows))
    rows = [rows[i] for i in order]
    files = [f"{i + 1:06d}.jpg" for i in range(len(rows))]
    image_dir = {"flat": "img_align_celeba", "official": "Img/img_align_celeba"}.get(
        layout, "img_align_celeba/img_align_celeba"
    )
    for i, name in enumerate(files):
        write_image(root / image_dir / name, size[0], size[1], seed=i, gray=(i == 1))
    anno = {"flat": "", "official": "Anno/", "kaggle": ""}[layout]
    evaluation = {"flat": "", "official": "Eval/", "kaggle": ""}[layout]
    rng = np.random.default_rng(1)
    attrs = rng.choice([-1, 1], size=(len(files), 40))
    if layout == "kaggle":
        write_text(
            root / "list_eval_partition.csv",
            ["image_id,partition", *(f"{n},{p}" for n, (_, p) in zip(files, rows, strict=True))],
        )
        write_text(
            root / "list_attr_celeba.csv",
            [
                "image_id," + ",".join(CELEBA_ATTRIBUTES),
                *(f"{n}," + ",".join(str(v) for v in a) for n, a in zip(files, attrs, strict=True)),
            ],
        )
        return {
            "files": files,
            "identity": [r[0] for r in rows],
            "partition": [r[1] for r in rows],
            "attr": attrs,
        }
    write_text(
        root / f"{anno}identity_CelebA.txt", [f"{n} {i}" for n, (i, _) in zip(files, rows, strict=True)], CRLF
    )
    write_text(
        root / f"{evaluation}list_eval_partition.txt",
        [f"{n} {p}" for n, (_, p) in zip(files, rows, strict=True)],
        CRLF,
    )
    write_text(
        root / f"{anno}list_attr_celeba.txt",
        [
            str(len(files)),
            " ".join(CELEBA_ATTRIBUTES) + " ",  # the real header ends with a space
            *(f"{n} " + " ".join(f"{v:2d}" for v in a) for n, a in zip(files, attrs, strict=True)),
        ],
        CRLF,
    )
    boxes = rng.integers(50, 300, size=(len(files), 4))
    write_text(
        root / f"{anno}list_bbox_celeba.txt",
        [
            str(len(files)),
            "image_id x_1 y_1 width height",
            *(f"{n}    {b[0]:3d} {b[1]:3d} {b[2]:3d} {b[3]:3d}" for n, b in zip(files, boxes, strict=True)),
        ],
        CRLF,
    )
    points = np.tile([69, 109, 106, 113, 77, 142, 73, 152, 108, 154], (len(files), 1))
    write_text(
        root / f"{anno}list_landmarks_align_celeba.txt",
        [
            str(len(files)),
            "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
            "leftmouth_x leftmouth_y rightmouth_x rightmouth_y",
            *(f"{n} " + " ".join(f"{v:4d}" for v in p) for n, p in zip(files, points, strict=True)),
        ],
        CRLF,
    )
    return {
        "files": files,
        "identity": [r[0] for r in rows],
        "partition": [r[1] for r in rows],
        "attr": attrs,
        "bbox": boxes,
    }


def make_celeba_hq(
    root: Path, celeba_files: Sequence[str], header: bool = True, padded: bool = False
) -> list[str]:
    """CelebA-HQ: ``CelebA-HQ-img/0.jpg ...`` (or ``00000.jpg``) + the mapping file to the fake CelebA files.

    The HQ set takes the CelebA files in reverse order (so HQ order ≠ CelebA order).
    """
    chosen = list(celeba_files)[::-1]
    rows = []
    for hq, name in enumerate(chosen):
        write_image(
            root / "CelebA-HQ-img" / (f"{hq:05d}.jpg" if padded else f"{hq}.jpg"), 32, 32, seed=100 + hq
        )
        rows.append(f"{hq:<8d}{int(Path(name).stem) - 1:<11d}{name}")
    write_text(
        root / "CelebA-HQ-to-CelebA-mapping.txt", (["idx      orig_idx   orig_file"] if header else []) + rows
    )
    return chosen


# --- FFHQ ----------------------------------------------------------------------------------------------


def ffhq_landmarks(index: int) -> list[list[float]]:
    """68 plausible (x, y) points in 1024² pixels, shifted per image."""
    angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    return [[512 + 300 * np.cos(a) + index, 540 + 360 * np.sin(a)] for a in angle]


def make_ffhq(
    root: Path,
    train: Sequence[int] = (0, 1, 2),
    validation: Sequence[int] = (60000,),
    flat: bool = False,
    size: int = 24,
    with_json: bool = True,
    same_content: bool = False,
) -> Path:
    """FFHQ: ``images1024x1024/<shard>/<index>.png`` (+ ``thumbnails128x128/``), ``LICENSE.txt``s, JSON.

    ``flat``: ``00000.png ...`` directly at the root (Kaggle / Hugging Face copies). PNGs are ``size`` px;
    ``same_content`` makes every image the same picture (to compare augmentations across workers).
    """
    indices = [*train, *validation]
    for index in indices:
        shard = f"{index - index % 1000:05d}"
        seed = 0 if same_content else index
        if flat:
            write_image(root / f"{index:05d}.png", size, size, seed=seed)
        else:
            write_image(root / "images1024x1024" / shard / f"{index:05d}.png", size, size, seed=seed)
            write_image(
                root / "thumbnails128x128" / shard / f"{index:05d}.png", size // 2, size // 2, seed=seed
            )
    if not flat:
        for folder in ("images1024x1024", "thumbnails128x128"):
            (root / folder / "LICENSE.txt").write_text("Creative Commons licences, see the JSON\n")
    (root / "LICENSE.txt").write_text("CC BY-NC-SA 4.0\n")
    if with_json:
        entries = {}
        for index in indices:
            shard = f"{index - index % 1000:05d}"
            entries[str(index)] = {
                "category": "training" if index in train else "validation",
                "metadata": {"photo_url": "https://example.invalid", "author": "someone", "country": ""},
                "image": {
                    "file_path": f"images1024x1024/{shard}/{index:05d}.png",
                    "pixel_size": [1024, 1024],
                    "face_landmarks": ffhq_landmarks(index),
                },
                "thumbnail": {
                    "file_path": f"thumbnails128x128/{shard}/{index:05d}.png",
                    "pixel_size": [128, 128],
                },
            }
        (root / "ffhq-dataset-v2.json").write_text(json.dumps(entries, indent=1))
    return root


# --- VGGFace2 ------------------------------------------------------------------------------------------

VGGFACE2_TRAIN = {
    "n000002": ["0001_01.jpg", "0002_01.jpg", "0003_01.jpg"],
    "n000003": ["0001_01.jpg", "0004_01.jpg", "0005_02.jpg"],
    "n000005": ["0001_01.jpg", "0002_01.jpg"],
    "n000007": ["0010_01.jpg", "0011_01.jpg"],
}
VGGFACE2_TEST = {
    "n000001": ["0019_01.jpg", "0115_02.jpg"],
    "n000009": ["0001_01.jpg", "0002_01.jpg"],
    "n000010": ["0003_01.jpg", "0004_01.jpg"],
    "n000012": ["0001_01.jpg", "0002_01.jpg"],
}
VGGFACE2_NAMES = {
    "n000001": "14th_Dalai_Lama",
    "n000002": "A_Fine_Frenzy",
    "n000003": "A.J._Buckley",
    "n000005": "Aaron_Carter, Jr.",  # a comma inside the quotes, as in some real rows
    "n000007": "Aaron_Yoo",
    "n000009": "Aaron_Lohr",
    "n000010": "Abigail_Spencer",
    "n000012": "Adam_Baldwin",
    "n000004": "Not_Shipped",  # listed in the meta file, no folder (real copies list more than ship)
}


def make_vggface2(
    root: Path,
    meta_style: str = "spaced",
    meta_dir: str = "",
    train: dict[str, list[str]] | None = None,
    test: dict[str, list[str]] | None = None,
    size: tuple[int, int] = (48, 60),
) -> Path:
    """VGGFace2: ``train/``/``test/`` identity folders, lists, ``identity_meta.csv``, ``bb_landmark/`` CSVs.

    ``meta_style``: ``spaced`` (``n000001, "Name", 424, 0, m`` with the spaced header and a trailing comma)
    or ``errata`` (CRLF, the name in doubled quotes, no spaces before numbers, as real copies have).
    ``meta_dir``: ``""`` (files at the root) or ``"meta/"``.
    """
    train, test = train or VGGFACE2_TRAIN, test or VGGFACE2_TEST
    width, height = size
    for split, classes in (("train", train), ("test", test)):
        listed, bb_rows, lm_rows = [], [], []
        for c, (class_id, images) in enumerate(sorted(classes.items())):
            for k, image in enumerate(images):
                write_image(
                    root / split / class_id / image, width, height, seed=1000 * c + k + (split == "test")
                )
                listed.append(f"{class_id}/{image}")
                stem = f"{class_id}/{Path(image).stem}"
                bb_rows.append(f'"{stem}",{8 + k},{10 + k},{width - 16},{height - 20}')
                pts = [16.5 + k, 24.25, 31.5 + k, 24.0, 24.0, 33.5, 18.0, 42.0, 30.0, 42.5]
                lm_rows.append(f'"{stem}",' + ",".join(f"{v:.4f}" for v in pts))
        write_text(root / meta_dir / f"{split}_list.txt", listed)
        write_text(root / "bb_landmark" / f"loose_bb_{split}.csv", ["NAME_ID,X,Y,W,H", *bb_rows])
        header = "NAME_ID,P1X,P1Y,P2X,P2Y,P3X,P3Y,P4X,P4Y,P5X,P5Y"
        write_text(root / "bb_landmark" / f"loose_landmark_{split}.csv", [header, *lm_rows])
    flags = {**{c: 1 for c in train}, **{c: 0 for c in test}, "n000004": 1}
    rows = []
    for class_id in sorted(flags):
        name = VGGFACE2_NAMES.get(class_id, f"Person_{class_id}")
        count = len(train.get(class_id, test.get(class_id, [])))
        gender = "f" if int(class_id[1:]) % 2 else "m"
        if meta_style == "errata":
            rows.append(f'{class_id}," ""{name.replace(",", "")}""",{count},{flags[class_id]}, {gender}')
        else:
            rows.append(f'{class_id}, "{name}", {count}, {flags[class_id]}, {gender},')
    header = "Class_ID, Name, Sample_Num, Flag, Gender"
    write_text(
        root / meta_dir / "identity_meta.csv", [header, *rows], CRLF if meta_style == "errata" else "\n"
    )
    return root


VGGFACE2_ATTRIBUTES = [
    "Male",
    "Black_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Blond_Hair",
    "Long_Hair",
    "Mustache_or_Beard",
    "Wearing_Hat",
    "Eyeglasses",
    "Sunglasses",
    "Mouth_Open",
]


def make_vggface2_attributes(
    root: Path, values: dict[str, Sequence[int]], folder: str = "attributes", count: int = 11
) -> Path:
    """``attributes/01-Male.txt ... 11-Mouth_Open.txt`` (CRLF, ``<image><TAB>0|1``), one value per list."""
    for k, name in enumerate(VGGFACE2_ATTRIBUTES[:count]):
        lines = [f"{image}\t{row[k]}" for image, row in values.items()]
        write_text(root / folder / f"{k + 1:02d}-{name}.txt", lines, CRLF)
    return root / folder


# --- pair and triplet lists of the released protection code ------------------------------------------------


def write_pairs_txt(
    path: Path,
    folds: Sequence[tuple[Sequence[tuple[str, int, int]], Sequence[tuple[str, int, str, int]]]],
    separator: str = " ",
    final_newline: bool = False,
) -> Path:
    """An LFW-format pair list: header ``<folds> <n>``, then per fold n matched and n mismatched lines.

    Space-separated without a final newline by default, as the CelebA / VGGFace2 lists are.
    """
    per_fold = len(folds[0][0])
    lines = [f"{len(folds)}{separator}{per_fold}"]
    for matched, mismatched in folds:
        lines += [separator.join(str(v) for v in row) for row in matched]
        lines += [separator.join(str(v) for v in row) for row in mismatched]
    return write_text(path, lines, final_newline=final_newline)


def write_triplet_lists(
    folder: Path,
    split: str,
    files: Sequence[str],
    triplets: Sequence[tuple[int, int, int]],
    labels: Sequence[int] | None = None,
    base: int = 0,
) -> tuple[Path, Path]:
    """``filenames_<split>.txt`` (one file per line, optional label) and ``triplets_<split>.txt``.

    ``triplets`` are (anchor, positive, negative) positions in ``files``; the file writes them in the
    released lists' order ``anchor negative positive``, ``base``-based.
    """
    names = [f if labels is None else f"{f} {label}" for f, label in zip(files, labels or files, strict=True)]
    filenames = write_text(folder / f"filenames_{split}.txt", names)
    rows = [f"{a + base} {n + base} {p + base}" for a, p, n in triplets]
    return filenames, write_text(folder / f"triplets_{split}.txt", rows)


# --- LFW -----------------------------------------------------------------------------------------------

LFW_PEOPLE = {"Abel_Pacheco": 4, "Dean_Barker": 1, "Abdel_Madi_Shabneh": 1, "Akhmed_Zakayev": 3, "Zico": 2}
LFW_PAIRS_2x1 = [
    "2\t1",
    "Abel_Pacheco\t1\t4",
    "Abdel_Madi_Shabneh\t1\tDean_Barker\t1",
    "Akhmed_Zakayev\t1\t3",
    "Abel_Pacheco\t2\tAkhmed_Zakayev\t2",
]


def make_lfw(
    root: Path,
    people: dict[str, int] | None = None,
    pairs: Sequence[str] | None = None,
    image_dir: str = "lfw",
    size: int = 40,
    pairs_file: str = "pairs.txt",
    final_newline: bool = True,
) -> Path:
    """LFW: ``lfw/<Name>/<Name>_0001.jpg`` and ``pairs.txt`` (default ``2<TAB>1``: 2 folds × 1 + 1 pairs)."""
    for p, (person, count) in enumerate(sorted((people or LFW_PEOPLE).items())):
        for k in range(1, count + 1):
            write_image(root / image_dir / person / f"{person}_{k:04d}.jpg", size, size, seed=50 * p + k)
    write_text(root / pairs_file, list(pairs or LFW_PAIRS_2x1), final_newline=final_newline)
    return root


def lfw_full_format(root: Path, folds: int = 10, per_fold: int = 3) -> Path:
    """An LFW copy with the full ``10<TAB>300``-style structure (synthetic names, ``per_fold`` per class)."""
    people = {f"Person_{i:02d}": 2 for i in range(2 * folds)}
    lines = [f"{folds}\t{per_fold}"]
    for fold in range(folds):
        a, b = f"Person_{2 * fold:02d}", f"Person_{2 * fold + 1:02d}"
        lines += [f"{a}\t1\t2"] * per_fold
        lines += [f"{a}\t{1 + k % 2}\t{b}\t{1 + (k + 1) % 2}" for k in range(per_fold)]
    return make_lfw(root, people, lines, size=16, final_newline=False)


# --- Image lists (torchkit format) -----------------------------------------------------------------------

# ``<path> <label>`` rows as a torchkit list gives them: nested folders, JPEG and PNG, labels not renumbered.
# Training labels 0, 1 and 3 (none has label 2: num_classes = 4 with 3 distinct labels); val and test use
# their own labels.
IMAGE_LIST_ROWS: dict[str, list[tuple[str, int]]] = {
    "train": [
        ("id_0000/0001.jpg", 0),
        ("id_0000/0002.png", 0),
        ("id_0001/0003.jpg", 1),
        ("id_0001/more/0004.jpg", 1),
        ("id_0001/0005.png", 1),
        ("id_0003/0006.jpg", 3),
        ("id_0003/0007.jpg", 3),
    ],
    "val": [("val/a/0008.jpg", 10), ("val/a/0009.jpg", 10), ("val/b/0010.png", 11), ("val/b/0011.jpg", 11)],
    "test": [
        ("test/c/0012.jpg", 20),
        ("test/c/0013.jpg", 20),
        ("test/d/0014.jpg", 21),
        ("test/d/0015.png", 21),
    ],
}
IMAGE_LIST_ODD_SIZE = "id_0001/more/0004.jpg"  # not the list's usual size: resized like the others


def make_image_list(root: Path, size: int = 20, newline: str = "\n") -> dict[str, Any]:
    """A torchkit-list copy laid out like CelebA's 112 px crops, with tiny images.

    ``<root>/align_crop_112/<listed path>`` and ``<root>/Anno/loss/celebA_{train,val,test}.txt``; returns the
    image folder (``images``), the list paths per split (``lists``) and the rows (``rows``).
    """
    images = root / "align_crop_112"
    lists: dict[str, Path] = {}
    seed = 700
    for split, rows in IMAGE_LIST_ROWS.items():
        for name, _ in rows:
            side = size + 6 if name == IMAGE_LIST_ODD_SIZE else size
            write_image(images / name, side, side, seed=seed)
            seed += 1
        lines = [f"{name} {label}" for name, label in rows]
        lists[split] = write_text(root / "Anno" / "loss" / f"celebA_{split}.txt", lines, newline)
    return {"images": images, "lists": lists, "rows": IMAGE_LIST_ROWS}


# --- TINY_DATA ----------------------------------------------------------------------------------------


# --- Google CartoonSet (PRO-Face S's mask stickers) ------------------------------------------------------


def write_sticker(path: Path, size: int, box: tuple[int, int, int, int], seed: int) -> Path:
    """An RGBA PNG: random colours, opaque inside ``box`` (r0, r1, c0, c1; inclusive), one half-alpha row."""
    rng = np.random.default_rng(seed)
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[..., :3] = rng.integers(0, 256, (size, size, 3))
    r0, r1, c0, c1 = box
    rgba[r0 : r1 + 1, c0 : c1 + 1, 3] = 255
    rgba[r0, c0 : c1 + 1, 3] = 128
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba, "RGBA").save(path)
    return path


STICKER_BOXES = [(10, 50, 12, 40), (0, 59, 5, 30), (20, 30, 0, 59), (3, 40, 30, 59)]


def make_cartoonset(root: Path, count: int = 10) -> Path:
    """CartoonSet as downloaded: ``cartoonset10k/cs<id>.png`` (RGBA) with its attribute ``.csv`` beside it.

    The stickers' visible regions touch the borders in different ways, so the square crop leaves the image.
    """
    folder = root / "cartoonset10k"
    for i in range(count):
        name = f"cs{10000000 + 7919 * i:011d}"
        write_sticker(folder / f"{name}.png", 60, STICKER_BOXES[i % len(STICKER_BOXES)], i)
        write_text(folder / f"{name}.csv", ['"eye_angle", 1, 3', '"face_color", 4, 11'])
    return root


# --- makeup transfer: MT-Dataset (training) and the test release (pairs, 1:N sets) ---------------------

MT_MAKEUP = ("vFG112.png", "XYH-012.png", "vRX45.png")
MT_NON_MAKEUP = ("vSYYZ306.png", "xfsy_0044.png", "vHX44.png", "vRX916.png")
#: Label ids of the four quadrants of each label map (face-parsing ids of the MT segs, 0..14).
MT_QUADRANT_LABELS = ((0, 1, 7, 9), (4, 5, 13, 14), (1, 6, 10, 12), (2, 3, 8, 11))


def write_label_map(path: Path, size: int, labels: Sequence[int], palette: bool = False) -> Path:
    """A one-channel PNG of class ids: four quadrants holding ``labels`` and a 1-px border of id 0.

    ``palette``: saved as a palette (mode P) image, whose pixel values are the ids (as some segs are).
    """
    half = size // 2
    ids = np.zeros((size, size), dtype=np.uint8)
    ids[:half, :half], ids[:half, half:], ids[half:, :half], ids[half:, half:] = labels
    ids[0, :] = ids[-1, :] = ids[:, 0] = ids[:, -1] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(ids)
    if palette:
        image = image.convert("P")
        image.putpalette([value for i in range(256) for value in ((i * 37) % 256, (i * 91) % 256, i)])
    image.save(path)
    return path


def make_mt_dataset(root: Path, size: int = 32) -> dict[str, Any]:
    """MT-Dataset as downloaded: ``makeup.txt`` / ``non-makeup.txt`` (``makeup/<file>.png`` lines, CRLF
    in one), ``images/{makeup,non-makeup}/``, ``segs/`` label maps under the same names (palette PNGs for the
    makeup side) and two target-identity photos under ``test_target_image/``. Returns the listed names."""
    makeup = [f"makeup/{name}" for name in MT_MAKEUP]
    non_makeup = [f"non-makeup/{name}" for name in MT_NON_MAKEUP]
    for i, name in enumerate([*non_makeup, *makeup]):
        write_image(root / "images" / name, size, size, seed=300 + i)
        labels = MT_QUADRANT_LABELS[i % len(MT_QUADRANT_LABELS)]
        write_label_map(root / "segs" / name, size, labels, palette=name.startswith("makeup/"))
    write_text(root / "makeup.txt", makeup, newline=CRLF)
    write_text(root / "non-makeup.txt", non_makeup, final_newline=False)
    write_image(root / "test_target_image" / "target" / "085807.jpg", size, size, seed=320)
    write_image(root / "test_target_image" / "test" / "047073.jpg", size, size, seed=321)
    return {"makeup": makeup, "non_makeup": non_makeup}


#: 1:N identities (LFW names) of the miniature ``lfw112x112_500``.
ONE_TO_N_PEOPLE = ("Abel_Pacheco", "Dean_Barker", "Gray_Davis", "Zhu_Rongji")


def make_makeup_test_release(root: Path, size: int = 32) -> dict[str, Any]:
    """The makeup-transfer test release ``Dataset-test/`` in miniature: numbered ``CelebA-HQ/`` sources
    (``2.jpg`` and ``10.jpg``, so numeric and name order differ), ``LADN/before/`` sources, ``reference/``
    makeup photos (not square), ``lfw112x112_500/<Name>/<Name>_000{1,2}.jpg`` (the ``_0002`` file written
    first) and a target photo. Returns the expected orders."""
    sources = ["0.jpg", "1.jpg", "2.jpg", "10.jpg"]
    for i, name in enumerate(reversed(sources)):
        write_image(root / "CelebA-HQ" / name, size, size + 8, seed=400 + i)
    ladn = ["ladn_a.png", "ladn_b.png"]
    for i, name in enumerate(ladn):
        write_image(root / "LADN" / "before" / name, size, size, seed=410 + i)
    references = ["XMY-014.png", "vFG137.png", "vRX916.png"]
    for i, name in enumerate(references):
        write_image(root / "reference" / name, size + 4, size, seed=420 + i)
    for i, person in enumerate(ONE_TO_N_PEOPLE):
        for number in (2, 1):
            write_image(
                root / "lfw112x112_500" / person / f"{person}_{number:04d}.jpg",
                size,
                size,
                seed=430 + 2 * i + number,
            )
    write_image(root / "test_target_image" / "test" / "047073.jpg", size, size, seed=440)
    return {"sources": sources, "ladn": ladn, "references": references, "people": list(ONE_TO_N_PEOPLE)}


# --- preprocessed video frames (the index `python -m src.preprocess.videos` writes) -----------------------
FRAME_COLUMNS = INDEX_COLUMNS  # the index and failure files exactly as the preprocessing CLI writes them
CROP = 64
FRAMES_PER_VIDEO = 3


def _face_crop(identity: int, sample: int, fake: bool) -> np.ndarray:
    """A 64 px region with a synthetic face (a fake pastes another identity's inner face, softly)."""
    from src.datamodules.components.synthetic_face_renderer import render_synthetic_face

    image = render_synthetic_face(7, identity, sample, CROP)
    if fake:
        other = render_synthetic_face(7, identity + 50, sample, CROP)
        yy, xx = np.mgrid[:CROP, :CROP]
        mask = np.clip(1.3 - np.hypot((xx - CROP / 2) / 14, (yy - CROP / 2 - 2) / 17), 0, 1)[..., None]
        image = (mask * other + (1 - mask) * image).astype(np.uint8)
    return image


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def make_preprocessed_frames(root: Path, dataset: str = "ffpp") -> Path:
    """A preprocessed index (``--profile sbi --landmarks dlib68 --faces all``) of tiny synthetic videos.

    FF++: per split one pair → 2 originals and ``a_b`` / ``b_a`` for Deepfakes and FaceSwap, 3 frames each;
    the test split also has a second, smaller face in one frame, a frame with no face and an original that
    could not be read (both in ``failures.csv``). Celeb-DF: real / synthesis videos, train and test.
    Crops are 64 px with the face box in the middle and 68 landmarks of a mean face in that box.
    """
    from src.face.face_hulls import mean_face_landmarks68

    folder = root / dataset
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    if dataset == "ffpp":
        pairs = {"train": ("071", "054"), "val": ("000", "003"), "test": ("953", "974")}
        videos = []
        for split, (a, b) in pairs.items():
            videos += [(split, "youtube", 0, name) for name in (a, b)]
            videos += [
                (split, m, 1, f"{x}_{y}") for m in ("Deepfakes", "FaceSwap") for x, y in ((a, b), (b, a))
            ]
        compression = "c23"
    else:
        videos = [("train", "Celeb-real", 0, "id1_0000"), ("train", "Celeb-synthesis", 1, "id1_id2_0000")]
        videos += [("test", "Celeb-real", 0, "id0_0000"), ("test", "YouTube-real", 0, "00000")]
        videos += [("test", "Celeb-synthesis", 1, f"id0_id{k}_0000") for k in (1, 3)]
        compression = "orig"
    box = np.array([16.0, 16.0, 48.0, 48.0])
    for number, (split, method, label, name) in enumerate(videos):
        kind = method if dataset == "ffpp" else ("real" if label == 0 else "synthesis")
        uid = f"{dataset}/{method}/{compression}/{name}"
        out = folder / split / uid
        out.mkdir(parents=True, exist_ok=True)
        for frame in range(FRAMES_PER_VIDEO):
            index = frame * 10
            base = {
                "video_uid": uid,
                "frame_index": index,
                "label": label,
                "method": kind,
                "compression": compression,
                "split": split,
            }
            if split == "test" and label == 1 and frame == 2 and number % 2 == 0:
                failures.append({**base, "reason": "no_face", "detail": "no face above the score threshold"})
                continue
            faces = [box] if not (split == "test" and frame == 1) else [box, np.array([2.0, 2.0, 26.0, 26.0])]
            image = _face_crop(number, frame, fake=label == 1)
            for face, face_box in enumerate(faces):
                stem = f"{index:03d}" if face == 0 else f"{index:03d}_{face}"
                Image.fromarray(image).save(out / f"{stem}.png")
                points = mean_face_landmarks68(face_box).astype(np.float32)
                np.save(out / f"{stem}.npy", points)
                five = points[[36, 45, 30, 48, 54]]
                rows.append(
                    {
                        **base,
                        "label": label,
                        "method": kind,
                        "path": (out / f"{stem}.png").relative_to(folder).as_posix(),
                        "score": "0.999",
                        **{c: f"{v:.3f}" for c, v in zip(FRAME_COLUMNS[8:18], five.ravel(), strict=True)},
                        "face_index": face,
                        **dict(zip(FRAME_COLUMNS[19:23], (f"{v:.1f}" for v in face_box), strict=True)),
                        "landmarks": (out / f"{stem}.npy").relative_to(folder).as_posix(),
                    }
                )
    lost = (
        "test",
        "youtube" if dataset == "ffpp" else "Celeb-real",
        "999" if dataset == "ffpp" else "id9_0000",
    )
    failures.append(
        {
            "video_uid": f"{dataset}/{lost[1]}/{compression}/{lost[2]}",
            "frame_index": "",
            "reason": "unreadable",
            "detail": "cannot open",
            "label": 0,
            "method": "youtube" if dataset == "ffpp" else "real",
            "compression": compression,
            "split": "test",
        }
    )
    _write_csv(folder / "index.csv", FRAME_COLUMNS, rows)
    _write_csv(folder / "failures.csv", FAILURE_COLUMNS, failures)
    return folder


def make_tiny_detector_checkpoint(path: Path, image_size: int = 32) -> Path:
    """A Lightning checkpoint of a frame detector on the small CNN (random weights): what an evaluation-only
    detection experiment loads in the tests."""
    import functools

    import torch

    from src.lightning_modules.frame_detector import FrameDetectorModule
    from src.networks.detectors import build_detector_net
    from src.utils.checkpoint_files import write_weights_checkpoint

    torch.manual_seed(0)
    module = FrameDetectorModule(
        build_detector_net("small_cnn", input_size=image_size), functools.partial(torch.optim.Adam)
    )
    return write_weights_checkpoint(module, path)


def makeup_tiny_data_overrides(base: Path) -> dict[str, list[str]]:
    """Build the makeup-transfer miniatures under ``base``; return their TINY_DATA entries."""
    make_mt_dataset(base / "MT-Dataset")
    make_makeup_test_release(base / "Dataset-test")
    small = ["datamodule.image_size=32", "datamodule.batch_size=2", "datamodule.num_workers=0"]
    return {
        "src.datamodules.mt_makeup.MTMakeupDataModule": [
            f"datamodule.root={base / 'MT-Dataset'}",
            "datamodule.eval_pairs=2",
            *small,
        ],
        "src.datamodules.makeup_pairs.MakeupPairsDataModule": [
            f"datamodule.root={base / 'Dataset-test'}",
            "datamodule.max_sources=2",
            *small,
        ],
        "src.datamodules.one_to_n.OneToNDataModule": [
            f"datamodule.root={base / 'Dataset-test'}",
            "datamodule.gallery_size=32",
            *small,
        ],
    }


def tiny_data_overrides(base: Path) -> dict[str, list[str]]:
    """Build every miniature layout under ``base``; return the ``tests/helpers.py`` TINY_DATA entries."""
    make_ffhq(base / "ffhq", train=(0, 1, 2, 3), validation=(60000, 60001))
    celeba = make_celeba(base / "celeba")
    hq_files = make_celeba_hq(base / "celeba_hq", celeba["files"])  # type: ignore[arg-type]
    make_vggface2(base / "vggface2")
    make_lfw(base / "lfw")
    image_list = make_image_list(base / "image_list")
    synthetic_verification_sets(
        base / "verification", ("lfw", "cfp_fp"), identities_per_set=20, pairs_per_fold=1, image_size=32
    )
    make_cartoonset(base / "cartoonset")
    ffpp = make_preprocessed_frames(base / "frames", "ffpp")
    celeb_df = make_preprocessed_frames(base / "frames", "celeb_df")
    make_tiny_detector_checkpoint(base / "detectors" / "small_cnn.ckpt")
    lookup = dict(
        zip(celeba["files"], zip(celeba["identity"], celeba["partition"], strict=True), strict=True)
    )  # type: ignore[arg-type]
    hq_train_identities = len({lookup[f][0] for f in hq_files if lookup[f][1] == 0})
    small = ["datamodule.image_size=32", "datamodule.batch_size=2", "datamodule.num_workers=0"]
    derived = [
        f"datamodule.splits_dir={base / 'splits'}",
        "datamodule.pair_folds=1",
        "datamodule.pairs_per_fold=2",
    ]
    return {
        "src.datamodules.ffhq.FFHQDataModule": [
            f"datamodule.root={base / 'ffhq'}",
            f"datamodule.cache_dir={base / 'cache'}",
            f"datamodule.splits_dir={base / 'splits'}",
            *small,
        ],
        "src.datamodules.celeba.CelebADataModule": [
            f"datamodule.root={base / 'celeba'}",
            "datamodule.train_identities=4",
            *small,
            *derived,
        ],
        "src.datamodules.celeba.CelebAHQDataModule": [
            f"datamodule.root={base / 'celeba_hq'}",
            f"datamodule.celeba_root={base / 'celeba'}",
            f"datamodule.train_identities={hq_train_identities}",
            *small,
            *derived,
        ],
        "src.datamodules.vggface2.VGGFace2DataModule": [
            f"datamodule.root={base / 'vggface2'}",
            "datamodule.val_identities=2",
            "datamodule.train_identities=2",
            *small,
            *derived,
        ],
        "src.datamodules.lfw.LFWDataModule": [f"datamodule.root={base / 'lfw'}", *small],
        "src.datamodules.verification_bins.VerificationBinsDataModule": [
            f"datamodule.root={base / 'verification'}",
            "datamodule.sets=[lfw,cfp_fp]",
            "datamodule.image_size=32",
            "datamodule.batch_size=8",
            "datamodule.num_workers=0",
        ],
        # the training child's own keys (root, lists) come from the experiment or the paper's tiny settings
        "src.datamodules.with_verification.TrainWithVerificationDataModule": [
            "datamodule.image_size=32",
            "datamodule.train.batch_size=2",
            "datamodule.train.num_workers=0",
            f"datamodule.verification.root={base / 'verification'}",
            "datamodule.verification.sets=[lfw,cfp_fp]",
            "datamodule.verification.batch_size=8",
            "datamodule.verification.num_workers=0",
        ],
        "src.datamodules.image_list.ImageListDataModule": [
            f"datamodule.root={image_list['images']}",
            f"datamodule.list_file={image_list['lists']['train']}",
            f"datamodule.val_list={image_list['lists']['val']}",
            f"datamodule.test_list={image_list['lists']['test']}",
            *small,
            *derived,
        ],
        "src.datamodules.ffpp.FFPPFramesDataModule": [f"datamodule.root={ffpp}", *small],
        "src.datamodules.self_blended.SelfBlendedFramesDataModule": [f"datamodule.root={ffpp}", *small],
        "src.datamodules.celeb_df.CelebDFFramesDataModule": [f"datamodule.root={celeb_df}", *small],
        **makeup_tiny_data_overrides(base),
    }


def compose_datamodule(name: str, overrides: Sequence[str] = ()) -> Any:
    """The ``datamodule`` node of ``experiments/_base/datamodule/<name>.yaml``, composed in an experiment."""
    from src.config.compose import compose

    extra = ["model.head.num_classes=3"] if name in ("ffhq", "lfw") else []  # no training identities
    return compose("demo/recognizer", [f"datamodule={name}", *extra, *overrides]).config.datamodule
