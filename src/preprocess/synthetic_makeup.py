"""Synthetic makeup-transfer data in the as-downloaded layouts (MT-Dataset, ``Dataset-test``, a 1:N set).

Usage: ``python -m src.preprocess.synthetic_makeup --root OUT [--image-size 64] [--non-makeup 64]
[--makeup 32] [--sources 16] [--references 4] [--identities 24] [--seed 0] [--force] [--no-progress]``.

**Everything here is synthetic.** Faces come from the SyntheticFaces renderer
(:mod:`src.datamodules.components.synthetic_face_renderer`) and the makeup is a colour blend inside the
renderer's own face regions, so that makeup-transfer training, the source × reference test protocol and the
1:N protection rate run on a CPU with the project's real DataModules and no download. Numbers measured on
this data say nothing about real faces or real makeup.

Written under ``root`` (docs/datasets.md, "Synthetic makeup-transfer data")::

    README.txt, synthetic_makeup.json            what this is; settings and every file's identity / style
    MT-Dataset/non-makeup.txt, makeup.txt        one ``non-makeup/<file>.png`` / ``makeup/<file>.png`` a line
    MT-Dataset/images/non-makeup/*.png           plain renders, one identity each
    MT-Dataset/images/makeup/*.png               renders of other identities with makeup applied
    MT-Dataset/segs/{non-makeup,makeup}/*.png    their label maps (one channel, MT-Dataset's ids 0..13)
    MT-Dataset/test_target_image/target/085807.jpg
    Dataset-test/CelebA-HQ/<k>.jpg               numbered plain sources
    Dataset-test/reference/*.png                 made-up references, one style after the other
    Dataset-test/lfw112x112_500/<Name>/<Name>_0001.jpg, <Name>_0002.jpg   1:N query and gallery
    Dataset-test/test_target_image/test/047073.jpg

The folder and target names are those of the real releases, so the DataModules' default keys apply; the
``lfw112x112_500`` name is kept for the layout only (``identities`` synthetic people at ``image_size``).

Makeup: lip colour (re-shaded by the lips' own light), eye shadow over the lids and sockets and blush on the
cheeks (multiplied in) and foundation (evened, tinted skin) — only where the label map says skin or lips, so
eyes, brows, hair and background keep their pixels. :data:`STYLES` holds five looks; every made-up image
takes the next one with its colours and strengths jittered. Label maps come from
:func:`~src.datamodules.components.synthetic_face_renderer.face_parsing` (the render's own geometry).
Identities with glasses (no class in those ids) are never used; made-up faces are also beard-free.

Determinism and resuming: every draw comes from ``numpy.random.default_rng([seed, ...])`` and the files hold
no timestamps, so the same arguments give the same bytes. Files are written atomically (temp file + rename);
a rerun with the same settings keeps the files present and writes the missing ones, a rerun with other
settings is refused unless ``force``. Exit status 0, or 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.datamodules.components.layout import IMAGE_EXTENSIONS
from src.datamodules.components.synthetic_face_renderer import (
    LABEL_LOWER_LIP,
    LABEL_NOSE,
    LABEL_SKIN,
    LABEL_UPPER_LIP,
    PARSING_LABELS,
    RGB,
    FaceParsing,
    IdentityTraits,
    ImageVariation,
    face_parsing,
    render_face,
)

__all__ = [
    "STYLES",
    "MakeupStyle",
    "SyntheticMakeupData",
    "apply_makeup",
    "main",
    "render_makeup_face",
    "write_synthetic_makeup_data",
]

MT_DIR, TEST_DIR = "MT-Dataset", "Dataset-test"
SOURCE_DIR, REFERENCE_DIR, ONE_TO_N_DIR = "CelebA-HQ", "reference", "lfw112x112_500"
MT_TARGET = "test_target_image/target/085807.jpg"
TEST_TARGET = "test_target_image/test/047073.jpg"
INFO_FILE, README_FILE = "synthetic_makeup.json", "README.txt"
MIN_SIZE, MAX_SIZE = 16, 1024
JPEG_QUALITY = 95
#: first identity number of each role: far apart, so no role shares a person with another (or with the
#: SyntheticFaces / verification-set identities, which start at 0 and 10 000)
IDENTITY_BASES = {
    "non_makeup": 1_000_000,
    "makeup": 2_000_000,
    "source": 3_000_000,
    "reference": 4_000_000,
    "one_to_n": 5_000_000,
    "target": 6_000_000,
}
_TAG_STYLE = 1  # first entry after the seed of the style-jitter generators
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# --- makeup ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MakeupStyle:
    """One look: a colour and a strength (blend weight in [0, 1]) per product.

    Lips are recoloured with their own shading, eye shadow and blush are multiplied in, foundation pulls the
    skin 40 % towards its mean and scales it per channel by ``foundation_gain``.
    """

    name: str
    lip_rgb: RGB
    lip_strength: float
    shadow_rgb: RGB
    shadow_strength: float
    blush_rgb: RGB
    blush_strength: float
    foundation_gain: RGB
    foundation_strength: float

    def jittered(self, rng: np.random.Generator) -> MakeupStyle:
        """The same look with colours moved by about 0.03 and strengths scaled by 0.85–1.15."""

        def colour(value: RGB) -> RGB:
            moved = np.clip(np.asarray(value) + rng.normal(0.0, 0.03, 3), 0.0, 1.2)
            return (float(moved[0]), float(moved[1]), float(moved[2]))

        def strength(value: float) -> float:
            return float(np.clip(value * rng.uniform(0.85, 1.15), 0.0, 0.95))

        return replace(
            self,
            lip_rgb=colour(self.lip_rgb),
            lip_strength=strength(self.lip_strength),
            shadow_rgb=colour(self.shadow_rgb),
            shadow_strength=strength(self.shadow_strength),
            blush_rgb=colour(self.blush_rgb),
            blush_strength=strength(self.blush_strength),
            foundation_gain=colour(self.foundation_gain),
            foundation_strength=strength(self.foundation_strength),
        )


#: the looks made-up images cycle through (so any few references differ); each row: name, lips (colour,
#: strength), eye shadow (colour, strength), blush (colour, strength), foundation (gain, strength)
STYLES: tuple[MakeupStyle, ...] = (
    MakeupStyle("red", (0.72, 0.05, 0.09), 0.85, (0.50, 0.36, 0.30), 0.55, (0.95, 0.55, 0.55), 0.30,
                (1.05, 1.00, 0.96), 0.25),
    MakeupStyle("smoky", (0.60, 0.34, 0.38), 0.60, (0.22, 0.20, 0.26), 0.80, (0.92, 0.62, 0.62), 0.20,
                (1.02, 1.00, 0.98), 0.30),
    MakeupStyle("coral", (0.95, 0.42, 0.32), 0.75, (0.95, 0.70, 0.38), 0.60, (1.00, 0.60, 0.48), 0.35,
                (1.06, 1.01, 0.94), 0.20),
    MakeupStyle("berry", (0.48, 0.07, 0.26), 0.85, (0.62, 0.38, 0.66), 0.65, (0.92, 0.50, 0.66), 0.30,
                (1.03, 0.99, 1.00), 0.20),
    MakeupStyle("nude", (0.80, 0.52, 0.47), 0.55, (0.72, 0.56, 0.46), 0.45, (0.96, 0.66, 0.60), 0.25,
                (1.04, 1.00, 0.95), 0.20),
)  # fmt: skip


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """Mean of ``values`` (``[H, W, ...]``) under ``weights`` ``[H, W]``; None when the weights vanish."""
    total = float(weights.sum())
    if total < 1e-3:
        return None
    return np.tensordot(weights, values, axes=([0, 1], [0, 1])) / total


def apply_makeup(image: np.ndarray, parsing: FaceParsing, style: MakeupStyle) -> np.ndarray:
    """``image`` (``uint8 [S, S, 3]`` RGB, the render ``parsing`` describes) made up with ``style``.

    Foundation on the face skin and nose, then blush on the cheeks' skin, eye shadow on the skin around the
    eyes and lipstick on the lips; every other pixel is returned unchanged.
    """
    img = image.astype(np.float32)
    skin = parsing.visible(LABEL_SKIN)
    base = parsing.visible(LABEL_SKIN, LABEL_NOSE)
    mean = _weighted_mean(img, base)
    if mean is not None:
        target = (mean + (img - mean) * 0.6) * np.asarray(style.foundation_gain, dtype=np.float32)
        img += (base * style.foundation_strength)[..., None] * (target - img)
    for zone, rgb, strength in (
        (parsing.cheek_zone, style.blush_rgb, style.blush_strength),
        (parsing.eye_zone, style.shadow_rgb, style.shadow_strength),
    ):
        weight = (zone * skin * strength)[..., None]
        img += weight * (img * np.asarray(rgb, dtype=np.float32) - img)
    lips = parsing.visible(LABEL_UPPER_LIP, LABEL_LOWER_LIP)
    luma = img @ _LUMA
    level = _weighted_mean(luma, lips)
    if level is not None:
        shade = luma / max(float(level), 1.0)
        target = np.asarray(style.lip_rgb, dtype=np.float32) * 255.0 * shade[..., None]
        img += (lips * style.lip_strength)[..., None] * (target - img)
    np.clip(img + 0.5, 0.0, 255.0, out=img)
    return img.astype(np.uint8)


def render_makeup_face(
    seed: int, identity: int, sample: int, size: int, style: MakeupStyle | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(plain, made_up, labels)`` of image ``sample`` of ``identity``: the plain render, the same render
    made up with ``style`` (the plain one again when ``None``) and its ``uint8`` label map."""
    traits = IdentityTraits.sample(seed, identity)
    variation = ImageVariation.sample(seed, identity, sample)
    plain = render_face(traits, variation, size)
    parsing = face_parsing(traits, variation, size)
    made_up = plain if style is None else apply_makeup(plain, parsing, style)
    return plain, made_up, parsing.labels


# --- the plan: every file, decided before anything is written -------------------------------------------


@dataclass(frozen=True)
class _Face:
    """One image to write: where (relative to the root), whom, which sample, which look, its label map."""

    path: str
    role: str
    identity: int
    sample: int
    style: MakeupStyle | None = None
    labels: str | None = None

    def record(self) -> dict[str, Any]:
        """What the info file says about it."""
        return {
            "path": self.path,
            "role": self.role,
            "identity": self.identity,
            "sample": self.sample,
            "labels": self.labels,
            "style": None if self.style is None else asdict(self.style),
        }


def _identities(seed: int, role: str, count: int) -> Iterator[int]:
    """The first ``count`` usable identities of ``role``: no glasses; made-up roles also no facial hair."""
    made_up = role in ("makeup", "reference")
    identity, found = IDENTITY_BASES[role], 0
    while found < count:
        traits = IdentityTraits.sample(seed, identity)
        if not traits.glasses and not (made_up and (traits.beard or traits.moustache)):
            yield identity
            found += 1
        identity += 1


def _style(seed: int, role: str, index: int) -> MakeupStyle:
    """The look of made-up image ``index`` of ``role``: the next of :data:`STYLES`, jittered."""
    role_code = list(IDENTITY_BASES).index(role)
    rng = np.random.default_rng([seed, _TAG_STYLE, role_code, index])
    return STYLES[index % len(STYLES)].jittered(rng)


def _plan(settings: dict[str, int]) -> list[_Face]:
    """Every image of the data set, in writing order."""
    seed = settings["seed"]
    faces: list[_Face] = []
    for k, identity in enumerate(_identities(seed, "non_makeup", settings["non_makeup"])):
        name = f"non-makeup/synthetic_{k:04d}.png"
        faces.append(
            _Face(f"{MT_DIR}/images/{name}", "non_makeup", identity, 0, None, f"{MT_DIR}/segs/{name}")
        )
    for k, identity in enumerate(_identities(seed, "makeup", settings["makeup"])):
        style = _style(seed, "makeup", k)
        name = f"makeup/synthetic_{k:04d}_{style.name}.png"
        faces.append(_Face(f"{MT_DIR}/images/{name}", "makeup", identity, 0, style, f"{MT_DIR}/segs/{name}"))
    target, test_target = _identities(seed, "target", 2)
    faces.append(_Face(f"{MT_DIR}/{MT_TARGET}", "target", target, 0))
    for k, identity in enumerate(_identities(seed, "source", settings["sources"])):
        faces.append(_Face(f"{TEST_DIR}/{SOURCE_DIR}/{k}.jpg", "source", identity, 0))
    for k, identity in enumerate(_identities(seed, "reference", settings["references"])):
        style = _style(seed, "reference", k)
        path = f"{TEST_DIR}/{REFERENCE_DIR}/synthetic_{k:02d}_{style.name}.png"
        faces.append(_Face(path, "reference", identity, 0, style))
    for k, identity in enumerate(_identities(seed, "one_to_n", settings["identities"])):
        person = f"Synthetic_Person_{k:04d}"
        for number in (1, 2):  # _0001: the query, _0002: the gallery image (another pose)
            path = f"{TEST_DIR}/{ONE_TO_N_DIR}/{person}/{person}_{number:04d}.jpg"
            faces.append(_Face(path, "one_to_n", identity, number - 1))
    faces.append(_Face(f"{TEST_DIR}/{TEST_TARGET}", "target", test_target, 0))
    return faces


# --- writing --------------------------------------------------------------------------------------------


def _write_bytes(path: Path, data: bytes) -> None:
    """Write atomically (temp file + rename), so a present file is always a complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def _encode(image: np.ndarray, path: str) -> bytes:
    """An RGB ``uint8`` image (or a one-channel label map) encoded as the file name's format."""
    array = image[..., ::-1] if image.ndim == 3 else image
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.endswith(".jpg") else []
    ok, data = cv2.imencode(Path(path).suffix, np.ascontiguousarray(array), params)
    if not ok:
        raise OSError(f"cannot encode {path}")
    return data.tobytes()


def _text(lines: list[str]) -> bytes:
    """A list file's bytes: one line each, LF endings (the DataModule also reads CRLF)."""
    return "".join(f"{line}\n" for line in lines).encode()


def _readme(settings: dict[str, int], counts: dict[str, int]) -> str:
    """The README.txt written into the root: what this is, what is where, how it was made."""
    ids = "\n".join(f"  {i:2d}  {name}" for i, name in enumerate(PARSING_LABELS))
    options = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in settings.items())
    size = settings["image_size"]
    rows = [
        (f"{MT_DIR}/", "MT-Dataset layout"),
        ("  non-makeup.txt, makeup.txt", f"the lists: {counts['non_makeup']} and {counts['makeup']} names"),
        ("  images/non-makeup/*.png", f"plain faces, one identity each, {size} px"),
        ("  images/makeup/*.png", "other identities made up (the style is in the file name)"),
        ("  segs/non-makeup/, segs/makeup/", "one label map per image, under the same relative name"),
        (f"  {MT_TARGET}", "a target face"),
        (f"{TEST_DIR}/", "makeup-transfer test layout"),
        (f"  {SOURCE_DIR}/<k>.jpg", f"{counts['source']} plain sources, numbered from 0"),
        (f"  {REFERENCE_DIR}/*.png", f"{counts['reference']} made-up references"),
        (f"  {ONE_TO_N_DIR}/<Name>/", f"1:N set: {settings['identities']} identities at {size} px (the real"),
        ("", "folder's name, kept for the layout); <Name>_0001.jpg is the"),
        ("", "query, <Name>_0002.jpg the gallery image (another pose)"),
        (f"  {TEST_TARGET}", "a target face"),
    ]
    contents = "\n".join(f"  {path:<40}{text}".rstrip() for path, text in rows)
    return f"""SYNTHETIC makeup-transfer data -- NOT real faces, NOT real makeup.

Every face here is a procedural render (ProFace Lab's SyntheticFaces renderer) and every made-up face is a
colour blend inside the renderer's own face regions. It exists so that makeup-transfer code runs end to end
without a download. Never report numbers measured on it as results on MT-Dataset, CelebA-HQ, LADN or LFW.

Made by: python -m src.preprocess.synthetic_makeup --root <this folder> {options}
(the same options give the same bytes; synthetic_makeup.json lists every file's identity, sample and style).

Contents (names as in the real releases, so the DataModules' default keys apply):
{contents}

Label maps: one channel, one id per pixel, from the render's geometry (no parser):
{ids}
"Image left" is the side of the face on the left of the picture; 14 is never used. Glasses are not used
(no class for them); beards and moles count as face skin.

Makeup styles (each made-up image takes the next, jittered): {", ".join(s.name for s in STYLES)}.
"""


def _check_settings(settings: dict[str, int]) -> None:
    """Raise ``ValueError`` naming the first bad setting (before anything is written)."""
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{key} must be an integer, got {value!r}")
    if not MIN_SIZE <= settings["image_size"] <= MAX_SIZE:
        raise ValueError(f"image_size must be in [{MIN_SIZE}, {MAX_SIZE}], got {settings['image_size']}")
    if settings["seed"] < 0:
        raise ValueError(f"seed must be >= 0, got {settings['seed']}")
    for key in ("non_makeup", "makeup", "sources", "references"):
        if settings[key] < 1:
            raise ValueError(f"{key} must be >= 1, got {settings[key]}")
    if settings["identities"] < 2:
        raise ValueError(f"identities must be >= 2 (1:N ranking needs two), got {settings['identities']}")


def _prepare_root(root: Path, settings: dict[str, int], faces: list[_Face], force: bool) -> bool:
    """Check that ``root`` may receive this data; True when it resumes a run with the same settings.

    A root holding another run's info file, or other files, is refused unless ``force``; the folders the
    DataModules list (sources, references, 1:N) must never hold images this run does not write.
    """
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} exists and is not a directory")
    info = root / INFO_FILE
    resume = False
    if info.is_file():
        try:
            previous = json.loads(info.read_text()).get("settings")
        except (OSError, ValueError, AttributeError):
            previous = None
        resume = previous == settings
        if not resume and not force:
            raise ValueError(
                f"{root} holds synthetic makeup data made with other settings ({previous}); choose a new "
                "root or pass force=True (--force) to write over it"
            )
    elif root.is_dir() and any(root.iterdir()) and not force:
        raise ValueError(f"{root} is not empty; choose a new directory or pass force=True (--force)")
    planned = {face.path for face in faces}
    for folder in (SOURCE_DIR, REFERENCE_DIR, ONE_TO_N_DIR):
        base = root / TEST_DIR / folder
        if not base.is_dir():
            continue
        extra = sorted(
            path.relative_to(root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
        )
        extra = [path for path in extra if path not in planned]
        if extra:
            raise ValueError(
                f"{base} holds {len(extra)} image(s) this run does not write (e.g. {', '.join(extra[:3])}); "
                "the DataModules would read them too: remove them or choose a new root"
            )
    return resume


@dataclass(frozen=True)
class SyntheticMakeupData:
    """Where the written data is: the roots and folder names the makeup-transfer DataModules take."""

    root: Path
    mt_dataset: Path
    dataset_test: Path
    source_dir: str
    reference_dir: str
    one_to_n_dir: str
    mt_target: Path
    test_target: Path
    readme: Path
    info: Path
    written: int
    kept: int

    def datamodule_keys(self) -> dict[str, dict[str, str]]:
        """The keys (``root``, folders) of ``mt_makeup``, ``makeup_pairs`` and ``one_to_n`` for this data."""
        test = str(self.dataset_test)
        return {
            "mt_makeup": {"root": str(self.mt_dataset)},
            "makeup_pairs": {
                "root": test,
                "source_dir": self.source_dir,
                "reference_dir": self.reference_dir,
            },
            "one_to_n": {"root": test, "image_dir": self.one_to_n_dir, "reference_dir": self.reference_dir},
        }


def write_synthetic_makeup_data(
    root: str | Path,
    image_size: int = 64,
    non_makeup: int = 64,
    makeup: int = 32,
    sources: int = 16,
    references: int = 4,
    identities: int = 24,
    seed: int = 0,
    progress: bool = True,
    force: bool = False,
) -> SyntheticMakeupData:
    """Write the synthetic MT-Dataset, ``Dataset-test`` and 1:N set under ``root`` (module docstring).

    ``non_makeup`` / ``makeup``: MT-Dataset images; ``sources`` / ``references``: the test folders;
    ``identities``: 1:N identities (2 images each). Resumes a run with the same settings (present files are
    kept); ``force`` writes over another run's or other files. Raises ``ValueError`` on bad arguments.
    """
    settings = {
        "image_size": image_size,
        "non_makeup": non_makeup,
        "makeup": makeup,
        "sources": sources,
        "references": references,
        "identities": identities,
        "seed": seed,
    }
    _check_settings(settings)
    settings = {key: int(value) for key, value in settings.items()}
    root = Path(root).expanduser()
    faces = _plan(settings)
    resume = _prepare_root(root, settings, faces, force)
    root.mkdir(parents=True, exist_ok=True)
    counts = {role: sum(face.role == role for face in faces) for role in IDENTITY_BASES}
    info: dict[str, Any] = {
        "synthetic": True,
        "note": "procedural faces with colour-blend makeup; not real data, never report results on it",
        "settings": settings,
        "counts": counts,
        "label_ids": dict(enumerate(PARSING_LABELS)),
        "complete": False,
        "files": [face.record() for face in faces],
    }
    _write_bytes(root / INFO_FILE, (json.dumps(info, indent=1) + "\n").encode())
    size = settings["image_size"]
    written = kept = 0
    from tqdm import tqdm

    with tqdm(total=len(faces), unit="image", desc="synthetic makeup data", disable=not progress) as bar:
        for face in faces:
            paths = [face.path] + ([face.labels] if face.labels else [])
            if resume and all((root / path).is_file() for path in paths):
                kept += 1
            else:
                _, image, labels = render_makeup_face(seed, face.identity, face.sample, size, face.style)
                _write_bytes(root / face.path, _encode(image, face.path))
                if face.labels:
                    _write_bytes(root / face.labels, _encode(labels, face.labels))
                written += 1
            bar.update()
    for name, role in (("non-makeup.txt", "non_makeup"), ("makeup.txt", "makeup")):
        prefix = f"{MT_DIR}/images/"
        listed = [face.path.removeprefix(prefix) for face in faces if face.role == role]
        _write_bytes(root / MT_DIR / name, _text(listed))
    _write_bytes(root / README_FILE, _readme(settings, counts).encode())
    info["complete"] = True
    _write_bytes(root / INFO_FILE, (json.dumps(info, indent=1) + "\n").encode())
    return SyntheticMakeupData(
        root=root,
        mt_dataset=root / MT_DIR,
        dataset_test=root / TEST_DIR,
        source_dir=SOURCE_DIR,
        reference_dir=REFERENCE_DIR,
        one_to_n_dir=ONE_TO_N_DIR,
        mt_target=root / MT_DIR / MT_TARGET,
        test_target=root / TEST_DIR / TEST_TARGET,
        readme=root / README_FILE,
        info=root / INFO_FILE,
        written=written,
        kept=kept,
    )


# --- command line ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m src.preprocess.synthetic_makeup",
        description="Write small synthetic makeup-transfer data (MT-Dataset, Dataset-test and a 1:N set in "
        "their as-downloaded layouts) from procedural faces: not real data.",
    )
    parser.add_argument(
        "--root", type=Path, required=True, help="folder to create (e.g. data/synthetic_makeup)"
    )
    parser.add_argument("--image-size", type=int, default=64, help="side of every image in px (default 64)")
    parser.add_argument(
        "--non-makeup", type=int, default=64, help="MT-Dataset non-makeup images (default 64)"
    )
    parser.add_argument("--makeup", type=int, default=32, help="MT-Dataset makeup images (default 32)")
    parser.add_argument("--sources", type=int, default=16, help="Dataset-test sources (default 16)")
    parser.add_argument("--references", type=int, default=4, help="Dataset-test references (default 4)")
    parser.add_argument(
        "--identities", type=int, default=24, help="1:N identities, 2 images each (default 24)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="write over another run's or other files")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; 0, or 2 for bad arguments."""
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        data = write_synthetic_makeup_data(
            args.root,
            image_size=args.image_size,
            non_makeup=args.non_makeup,
            makeup=args.makeup,
            sources=args.sources,
            references=args.references,
            identities=args.identities,
            seed=args.seed,
            progress=args.progress,
            force=args.force,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {data.written} synthetic image(s) (kept {data.kept} present) under {data.root} in "
        f"{time.perf_counter() - start:.1f} s: MT-Dataset at {data.mt_dataset}, Dataset-test at "
        f"{data.dataset_test} (not real data: see {data.readme})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
