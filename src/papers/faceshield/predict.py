"""FaceShield ``predict``: protect every photo of a folder and record the privacy of every released image.

CLI::

    python -m src.papers.faceshield.predict IN_DIR OUT_DIR [--sampler faceshield_repo|purkayastha|vmf]
        [--epsilon 30] [--releases-per-face N] [--seed S] [--released | --random-networks | --checkpoint CKPT]
        [--image-size 512] [--width 1] [--device cpu] [--log-every N] [--no-progress]

Per photo (one photo at a time, as the original ``test.py``): read → MTCNN → the largest face → align onto
FaceShield's template → self-swap protection: extract and decode once, then ``N`` independent DP
perturbations of the face's restricted identity, each rendered by the generator → warp each protected face
back into the photo and blend it in → write.

* **Alignment.** FaceShield's MTCNN crop (``align_trans.warp_and_crop_face`` of the original): the ArcFace
  5-point reference of 112 px shrunk by 0.85 around its centre, then scaled to the face size (512 px), fitted
  by a least-squares similarity; border black. The encoder's 37:475 crop is then the ArcFace 112 box. The
  landmarks come from the project's MTCNN (facenet-pytorch, probability ≥ 0.9, faces from 20 px), not the
  original's own MTCNN port (faces from 64 px, retried with lower thresholds).
* **Paste back** (as the original): the protected crop and the rectangle mask rows 40:472, columns 80:455
  (scaled with the face size) are warped back with the inverse similarity and blended with
  ``cv2.seamlessClone(NORMAL_CLONE)``. OpenCV puts the centre of the mask's bounding box at the point given,
  so that point is the bounding-box centre of the warped mask: the face stays where it was taken from. (The
  original passes the warped crop centre, (255, 255) of the crop, which is not the rectangle's centre
  (267, 256), so the face moves by about 12 crop pixels sideways; reconstructed fix.) When seamlessClone
  fails, a feathered alpha blend of the warped mask is used instead; every record names the blend.

Outputs in ``OUT_DIR``: the protected photo at the input's relative path (its own format when OpenCV writes it
— png, jpg, bmp, webp, tif — else ``NAME.EXT.png``), the protected crop as ``faces/<relative stem>.png``
(``_r{i}`` before the suffix for release ``i`` = 0 … N−1 when ``--releases-per-face`` > 1),
``failures.csv`` (``file``, ``reason``, ``detail``: every input not protected), ``privacy_records.jsonl`` (one
line per released image) and ``summary.json``. Exit status 0, or 2 for usage errors, missing weights or a
bad checkpoint (one line on stderr).

Randomness: ``--seed S`` makes the DP noise reproducible (``DPPerturbator(seed=S)``) and therefore public in
every record; the network noise (IB and attribute noise) then comes from a seed derived from ``S``. Without
``--seed`` both come from the OS CSPRNG, the records say the randomness is secret and no seed is written
anywhere. The ε of the records covers the identity vector only (``docs/papers/faceshield.md``, "What the ε
does not cover"), and composition is per photo: several photos of one person compose further.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from src.datamodules.components.image_io import read_image_rgb
from src.face.alignment import ARCFACE_112, AlignmentTemplate, alignment_matrix, invert_affine, warp_image
from src.face.detection import FaceDetector, build_detector, largest_face
from src.metrics.privacy import secret_seed
from src.papers.faceshield.perturbator import DPP_SAMPLERS, DPPerturbator
from src.papers.faceshield.pipeline import (
    IMAGE_SIZE,
    FaceShieldExtractor,
    FaceShieldRenderer,
    from_faceshield,
    prepare,
    to_faceshield,
)
from src.preprocess.align import is_image_name, list_inputs
from src.preprocess.align import plan_outputs as plan_png_names
from src.utils.checkpoint_files import CheckpointError
from src.utils.checkpoints import load_network
from src.utils.console import progress_line
from src.weights import WeightsError

FAILURES_CSV, RECORDS_JSONL, SUMMARY_JSON, FACES_DIR = (
    "failures.csv",
    "privacy_records.jsonl",
    "summary.json",
    "faces",
)
FAILURE_COLUMNS = ("file", "reason", "detail")
FAILURE_REASONS = ("unreadable", "not_image", "no_face", "error")
TEMPLATE_ZOOM = 0.85  # the original's ``(ref - 56) * 0.85 + 56`` on the ArcFace 112 points
MASK_ROWS, MASK_COLS = (40, 472), (80, 455)  # the original's paste-back rectangle on the 512-px crop
WIDTHS = (1, 2, 4, 8, 16, 32)
IMAGE_SIZES = (512, 384, 256)
WRITABLE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
JPEG_QUALITY = 95
RELEASE_BATCH = 8  # releases of one face per generator pass
RANDOM_NETWORK_SEED = 0  # --random-networks: the same untrained weights every run
BLENDS = ("seamless_clone", "feathered_alpha")
RANDOM_NETWORKS = "random (untrained)"


class UsageError(Exception):
    """A problem with the command line, the folders, the weights or the checkpoint (exit status 2)."""


# ------------------------------------------------------------------------------------------- geometry


def faceshield_template(size: int = IMAGE_SIZE) -> AlignmentTemplate:
    """FaceShield's alignment template: ArcFace's 5 points shrunk by 0.85 around (56, 56), scaled to
    ``size``."""
    points = ((ARCFACE_112 - 56.0) * TEMPLATE_ZOOM + 56.0) * (size / 112.0)
    return AlignmentTemplate(f"faceshield{size}", "points", int(size), points, border="constant")


def clone_mask(size: int = IMAGE_SIZE) -> np.ndarray:
    """The paste-back mask of a ``size``-px crop: 255 on rows 40:472, columns 80:455 (scaled), else 0."""
    scale = size / IMAGE_SIZE
    mask = np.zeros((size, size), np.uint8)
    (r0, r1), (c0, c1) = ((round(a * scale), round(b * scale)) for a, b in (MASK_ROWS, MASK_COLS))
    mask[r0:r1, c0:c1] = 255
    return mask


@dataclass(frozen=True)
class AlignedFace:
    """The largest face of a photo, aligned: crop ``[S, S, 3]`` uint8 RGB and image → crop matrix."""

    crop: np.ndarray
    matrix: np.ndarray
    box: np.ndarray
    score: float
    n_faces: int


def detect_and_align(detector: FaceDetector, photo: np.ndarray, size: int) -> AlignedFace | None:
    """MTCNN on ``photo``; the largest face aligned onto :func:`faceshield_template` (None: no face)."""
    detections = detector.detect(photo)
    if not detections:
        return None
    face = largest_face(detections)
    template = faceshield_template(size)
    matrix = alignment_matrix(face.landmarks, template)
    crop = warp_image(photo, matrix, size, "constant", antialias=True)
    return AlignedFace(crop, matrix, face.box, face.score, len(detections))


def _seamless_centre(mask: np.ndarray) -> tuple[int, int]:
    """The point that keeps ``cv2.seamlessClone``'s patch in place: the centre of the mask's bounding box
    (OpenCV ignores the mask's 1-px border, so that border is cleared first)."""
    inner = mask.copy()
    inner[[0, -1], :] = 0
    inner[:, [0, -1]] = 0
    x, y, w, h = cv2.boundingRect(inner)
    return x + w // 2, y + h // 2


def feathered_blend(photo: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Alpha blend of ``face`` over ``photo``: alpha ramps linearly from 0 on the mask's edge to 1 at a
    depth of 8 % of its size (or at its centre, for a thin mask) and is 0 outside it."""
    inside = (mask > 127).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    feather = min(max(1.0, 0.08 * math.sqrt(float(inside.sum()))), max(float(depth.max()), 1.0))
    alpha = np.clip(depth / feather, 0.0, 1.0)[..., None]
    blended = alpha * face.astype(np.float32) + (1.0 - alpha) * photo.astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def paste_back(photo: np.ndarray, face: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, str]:
    """Warp the protected crop ``face`` back into ``photo`` (inverse of ``matrix``) and blend it over the
    paste-back rectangle; returns the photo and the blend used (``seamless_clone`` or ``feathered_alpha``).

    Raises ValueError when the rectangle misses the photo (nothing would be replaced).
    """
    height, width = photo.shape[:2]
    inverse = invert_affine(np.asarray(matrix, dtype=np.float64))
    warped = cv2.warpAffine(face, inverse, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)
    mask = cv2.warpAffine(
        clone_mask(face.shape[0]), inverse, (width, height), flags=cv2.INTER_NEAREST, borderValue=0
    )
    if not mask.any():
        raise ValueError("the paste-back rectangle lies outside the photo")
    try:
        # a copy: OpenCV's seamlessClone overwrites its mask argument (seen with OpenCV 5.1)
        blended = cv2.seamlessClone(warped, photo, mask.copy(), _seamless_centre(mask), cv2.NORMAL_CLONE)
        return np.ascontiguousarray(blended), BLENDS[0]
    except cv2.error:
        return feathered_blend(photo, warped, mask), BLENDS[1]


# ------------------------------------------------------------------------------------------- networks


@dataclass
class Networks:
    """The extractor and renderer in eval mode, and how they were obtained (for the records)."""

    extractor: FaceShieldExtractor
    renderer: FaceShieldRenderer
    description: str

    @property
    def image_size(self) -> int:
        return self.extractor.image_size


def build_networks(kind: str, checkpoint: Path | None, image_size: int, width: int, device: str) -> Networks:
    """``released`` (weights manifest), ``checkpoint`` (a Stage II Lightning checkpoint) or ``random``."""
    try:
        if kind == "checkpoint":
            extractor, renderer = load_network(checkpoint, "extractor"), load_network(checkpoint, "renderer")
            for name, net, cls in (
                ("extractor", extractor, FaceShieldExtractor),
                ("renderer", renderer, FaceShieldRenderer),
            ):
                if not isinstance(net, cls):
                    raise UsageError(
                        f"checkpoint {checkpoint}: model.{name} is a {type(net).__name__}, "
                        f"not a {cls.__name__}"
                    )
            description = f"checkpoint {checkpoint}"
        elif kind == "released":
            extractor = FaceShieldExtractor(released=["encoder", "se"])
            renderer = FaceShieldRenderer(released=["decoder", "generator"])
            description = "released (FaceShield weights from the weights manifest)"
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_NETWORK_SEED)
                extractor = FaceShieldExtractor(image_size=image_size)
                renderer = FaceShieldRenderer(width=width)
            description = RANDOM_NETWORKS
    except (WeightsError, CheckpointError, OSError, ValueError) as error:
        raise UsageError(str(error).replace("\n", " ")) from error
    extractor = extractor.to(device).eval().requires_grad_(False)
    renderer = renderer.to(device).eval().requires_grad_(False)
    return Networks(extractor, renderer, description)


# ----------------------------------------------------------------------------------------- randomness


@dataclass
class Noise:
    """The DP perturbator (its own generator: seeded or CSPRNG) and the network-noise generator."""

    perturbator: DPPerturbator
    generator: torch.Generator

    def describe(self) -> dict[str, Any]:
        """Provenance for the summary; the seed only when it is public (given on the command line)."""
        rng = self.perturbator.rng
        return {"secret": rng.secret, "provenance": rng.provenance, "seed": None if rng.secret else rng.seed}


def network_seed(seed: int | None) -> int:
    """The network-noise seed: derived from a public ``seed`` (a stream apart from the DP noise's), else
    63 fresh CSPRNG bits that are never stored."""
    if seed is None:
        return secret_seed()[0]
    return int(np.random.SeedSequence([seed, 1]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def make_noise(sampler: str, epsilon: float, seed: int | None, device: str) -> Noise:
    """The perturbator (``seed=None``: secret CSPRNG noise) and a network generator on ``device``."""
    perturbator = DPPerturbator(sampler, epsilon, seed=seed)
    generator = torch.Generator(device=torch.device(device)).manual_seed(network_seed(seed))
    return Noise(perturbator, generator)


# ------------------------------------------------------------------------------------------ protection


@torch.no_grad()
def protect_face(
    networks: Networks, noise: Noise, crop: np.ndarray, releases: int
) -> tuple[list[np.ndarray], list[float]]:
    """``releases`` protected versions of one aligned crop (uint8 RGB) and their DP angles θ.

    :func:`src.papers.faceshield.pipeline.prepare` extracts and decodes the face once (network noise from
    ``noise.generator``); then ``releases`` independent DP perturbations of its restricted identity ``zid``
    (the perturbator's own generator, so that the records can say the noise is secret) are each rendered.
    """
    device = next(networks.extractor.parameters()).device
    image = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float().div(255.0)
    image = to_faceshield(image.to(device), networks.image_size)
    prepared = prepare(networks.extractor, networks.renderer, image, noise.generator)
    attrs, lambda_maps = prepared.attrs, prepared.lambda_maps
    released = noise.perturbator(prepared.restricted.expand(releases, -1))
    faces: list[np.ndarray] = []
    for start in range(0, releases, RELEASE_BATCH):
        identity = released.output[start : start + RELEASE_BATCH]
        count = identity.shape[0]
        protected = networks.renderer.generate(identity, _repeat(attrs, count), _repeat(lambda_maps, count))
        faces.extend(_to_uint8(from_faceshield(protected)))
    return faces, [float(t) for t in released.theta.cpu()]


def _repeat(tensors: Sequence[Tensor | None], count: int) -> list[Tensor | None]:
    """Batch-1 maps as batches of ``count`` (views; ``None`` stays ``None``)."""
    return [t if t is None else t.expand(count, *t.shape[1:]) for t in tensors]


def _to_uint8(images: Tensor) -> list[np.ndarray]:
    """``[B, 3, S, S]`` in [0, 1] → ``B`` uint8 RGB arrays ``[S, S, 3]``."""
    array = images.mul(255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(a) for a in array]


# ---------------------------------------------------------------------------------------------- files


def write_image(rgb: np.ndarray, path: Path) -> None:
    """Encode by ``path``'s suffix (JPEG quality 95) and write atomically (temp file + rename)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(data.tobytes())
    os.replace(temp, path)


def _with_release(rel: str, index: int, releases: int) -> str:
    """``a/b.png`` → ``a/b_r{index}.png`` when there are several releases, unchanged otherwise."""
    if releases == 1:
        return rel
    path = Path(rel)
    return path.with_name(f"{path.stem}_r{index}{path.suffix}").as_posix()


def plan_outputs(images: Sequence[str], releases: int) -> dict[str, list[tuple[str, str]]]:
    """Per image input, per release: (protected photo, protected crop) paths relative to OUT_DIR.

    Raises :class:`UsageError` when two outputs would share a name or hit a report file.
    """
    crop_names = plan_png_names(images, "png")
    plan: dict[str, list[tuple[str, str]]] = {}
    for rel in images:
        photo = rel if Path(rel).suffix.lower() in WRITABLE_SUFFIXES else rel + ".png"
        face = f"{FACES_DIR}/{crop_names[rel]}"
        plan[rel] = [
            (_with_release(photo, i, releases), _with_release(face, i, releases)) for i in range(releases)
        ]
    names = Counter(name for pairs in plan.values() for pair in pairs for name in pair)
    names.update((FAILURES_CSV, RECORDS_JSONL, SUMMARY_JSON))
    clashes = sorted(name for name, count in names.items() if count > 1)
    if clashes:
        raise UsageError(f"output names collide ({', '.join(clashes[:5])}); rename those inputs")
    return plan


def check_folders(in_dir: Path, out_dir: Path) -> None:
    """Usage errors: IN_DIR missing or not a folder, folders nested, OUT_DIR a file or already used."""
    if not in_dir.is_dir():
        raise UsageError(f"input folder not found or not a folder: {in_dir}")
    source, target = in_dir.resolve(), out_dir.resolve()
    if target == source or source in target.parents:
        raise UsageError(f"OUT_DIR {out_dir} is inside IN_DIR {in_dir}; choose an output folder outside it")
    if target in source.parents:
        raise UsageError(f"IN_DIR {in_dir} is inside OUT_DIR {out_dir}; choose an output folder outside it")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"OUT_DIR exists and is not a folder: {out_dir}")
    if (out_dir / RECORDS_JSONL).exists():
        raise UsageError(
            f"{out_dir / RECORDS_JSONL} exists from an earlier run (its releases must stay recorded); "
            "use a new OUT_DIR"
        )


# ------------------------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class Settings:
    """One predict run."""

    in_dir: Path
    out_dir: Path
    sampler: str = "faceshield_repo"
    epsilon: float = 30.0
    releases: int = 1
    seed: int | None = None
    networks: str = "released"
    checkpoint: Path | None = None
    image_size: int = IMAGE_SIZE
    width: int = 1
    device: str = "cpu"
    log_every: int = 10
    progress: bool = True


class Progress:
    """One line on stderr every ``every`` files and at the end (``src.utils.console.progress_line``)."""

    def __init__(self, total: int, every: int, enabled: bool) -> None:
        self.total, self.every, self.enabled = total, every, enabled
        self.start = time.monotonic()

    def update(self, done: int, counts: Counter) -> None:
        if not self.enabled or (done % self.every and done != self.total):
            return
        extra = {"protected": counts["protected"], "failed": counts["failed"]}
        line = progress_line("predict", done, self.total, done, time.monotonic() - self.start, extra)
        print(line, file=sys.stderr, flush=True)


class Run:
    """One run's settings, networks, noise, detector, output plan, privacy records and blend counts."""

    def __init__(self, settings: Settings, networks: Networks, noise: Noise, plan: dict) -> None:
        self.settings, self.networks, self.noise, self.plan = settings, networks, noise, plan
        self.detector = build_detector("mtcnn", device=settings.device)
        self.record = noise.perturbator.privacy_record(releases=1)
        self.composed = noise.perturbator.privacy_record(releases=settings.releases)
        self.blends: Counter = Counter()

    def process(self, rel: str) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """One input file → (record lines, None) when protected, or ([], failure row); never raises."""
        if rel not in self.plan:
            return [], self._failure(rel, "not_image", f"extension {Path(rel).suffix or '(none)'}")
        try:
            photo = read_image_rgb(self.settings.in_dir / rel)  # OSError/ValueError
        except (OSError, ValueError) as error:
            return [], self._failure(rel, "unreadable", f"{type(error).__name__}: {error}")
        written: list[Path] = []
        try:
            aligned = detect_and_align(self.detector, photo, self.networks.image_size)
            if aligned is None:
                return [], self._failure(rel, "no_face", "MTCNN found no face above its score threshold")
            faces, thetas = protect_face(self.networks, self.noise, aligned.crop, self.settings.releases)
            lines = []
            for index, (face, theta) in enumerate(zip(faces, thetas, strict=True)):
                pasted, blend = paste_back(photo, face, aligned.matrix)
                photo_rel, face_rel = self.plan[rel][index]
                for image, name in ((pasted, photo_rel), (face, face_rel)):
                    write_image(image, self.settings.out_dir / name)
                    written.append(self.settings.out_dir / name)
                lines.append(self._line(rel, index, theta, blend, photo_rel, face_rel, aligned))
            self.blends.update(line["blend"] for line in lines)
            return lines, None
        except Exception as error:  # one bad file must not stop the run; it is reported, nothing left behind
            for path in written:
                path.unlink(missing_ok=True)
            return [], self._failure(rel, "error", f"{type(error).__name__}: {error}")

    def _line(
        self, rel: str, index: int, theta: float, blend: str, photo: str, face: str, aligned: AlignedFace
    ) -> dict[str, Any]:
        """The privacy record line of one released image."""
        return {
            "file": rel,
            "output": photo,
            "face": face,
            "sampler": self.settings.sampler,
            "epsilon": self.settings.epsilon,
            "certified": self.record.certified,
            "record": self.record.to_dict(),
            "theta": theta,
            "release_index": index,
            "releases_of_this_face": self.settings.releases,
            "composed_record": self.composed.to_dict(),
            "blend": blend,
            "networks": self.networks.description,
            "faces_found": aligned.n_faces,
            "face_box": [round(float(v), 2) for v in aligned.box],
        }

    @staticmethod
    def _failure(rel: str, reason: str, detail: str) -> dict[str, str]:
        return {"file": rel, "reason": reason, "detail": detail.replace("\n", " ")[:300]}


def run_predict(settings: Settings) -> dict[str, Any]:
    """Protect every image under ``settings.in_dir`` into ``settings.out_dir``; returns the summary."""
    started = time.monotonic()
    check_folders(settings.in_dir, settings.out_dir)
    inputs = list_inputs(settings.in_dir)
    plan = plan_outputs([rel for rel in inputs if is_image_name(rel)], settings.releases)
    networks = build_networks(
        settings.networks, settings.checkpoint, settings.image_size, settings.width, settings.device
    )
    if networks.description == RANDOM_NETWORKS:
        print(
            "WARNING: --random-networks: UNTRAINED networks; the outputs are NOT protected faces "
            "(tests and plumbing only)",
            file=sys.stderr,
            flush=True,
        )
    if settings.sampler == "faceshield_repo":
        print(
            f"NOTE: sampler faceshield_repo (the authors'): ε = {settings.epsilon:g} is NOMINAL, "
            "NOT CERTIFIED "
            "(no differential-privacy guarantee; docs/papers/faceshield.md, 'Choosing an ε'); "
            "--sampler purkayastha gives certified ε-LDP",
            file=sys.stderr,
            flush=True,
        )
    noise = make_noise(settings.sampler, settings.epsilon, settings.seed, settings.device)
    run = Run(settings, networks, noise, plan)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter()
    failures: list[dict[str, str]] = []
    protected: set[str] = set()
    progress = Progress(len(inputs), settings.log_every, settings.progress)
    with open(settings.out_dir / RECORDS_JSONL, "x") as records:
        for done, rel in enumerate(inputs, 1):
            lines, failure = run.process(rel)
            if failure is None:
                records.writelines(json.dumps(line) + "\n" for line in lines)
                records.flush()
                protected.add(rel)
                counts["protected"] += 1
            else:
                failures.append(failure)
                counts["failed"] += 1
            progress.update(done, counts)
    _write_failures(settings.out_dir / FAILURES_CSV, failures)
    failed = {row["file"] for row in failures}
    if protected | failed != set(inputs) or protected & failed:
        raise RuntimeError("predict: an input file is neither protected nor listed in failures.csv")
    summary = _summary(settings, run, inputs, protected, failures, time.monotonic() - started)
    (settings.out_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _write_failures(path: Path, failures: list[dict[str, str]]) -> None:
    """``failures.csv``, sorted by file."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FAILURE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(failures, key=lambda row: row["file"]))


def _summary(
    settings: Settings, run: Run, inputs: list[str], protected: set[str], failures: list, seconds: float
) -> dict[str, Any]:
    """``summary.json``: counts, the DP settings and records, the randomness (no secret seed), networks."""
    reasons = Counter(row["reason"] for row in failures)
    return {
        "in_dir": str(settings.in_dir),
        "out_dir": str(settings.out_dir),
        "counts": {
            "inputs": len(inputs),
            "protected": len(protected),
            "released_images": len(protected) * settings.releases,
            "failed": len(failures),
            "failures_by_reason": {reason: reasons.get(reason, 0) for reason in FAILURE_REASONS},
        },
        "sampler": settings.sampler,
        "epsilon": settings.epsilon,
        "certified": run.record.certified,
        "releases_per_face": settings.releases,
        "composed_record_per_face": run.composed.to_dict(),
        "composition_note": (
            "composition is per photo; photos of the same person in IN_DIR are further releases of one "
            "identity and compose on top of this"
        ),
        "randomness": run.noise.describe(),
        "networks": run.networks.description,
        "image_size": run.networks.image_size,
        "device": settings.device,
        "blends": {blend: run.blends.get(blend, 0) for blend in BLENDS},
        "outputs": {"failures": FAILURES_CSV, "records": RECORDS_JSONL, "faces": FACES_DIR + "/"},
        "seconds": round(seconds, 2),
    }


# ------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m src.papers.faceshield.predict",
        description="Protect every face photo under IN_DIR with FaceShield (largest face, pasted back) into "
        "OUT_DIR, with privacy_records.jsonl (one line per released image), failures.csv and summary.json.",
    )
    parser.add_argument("in_dir", type=Path, help="folder of photos (searched recursively)")
    parser.add_argument("out_dir", type=Path, help="output folder (created; must not hold an earlier run)")
    parser.add_argument("--sampler", default="faceshield_repo", help=f"DP sampler: {', '.join(DPP_SAMPLERS)}")
    parser.add_argument("--epsilon", type=float, default=30.0, help="ε of one release (default 30)")
    parser.add_argument(
        "--releases-per-face", dest="releases", type=int, default=1, help="independent releases per face"
    )
    parser.add_argument("--seed", type=int, default=None, help="public seed (default: secret CSPRNG noise)")
    nets = parser.add_mutually_exclusive_group()
    nets.add_argument(
        "--released",
        dest="networks",
        action="store_const",
        const="released",
        default="released",
        help="FaceShield's released weights from the weights manifest (default)",
    )
    nets.add_argument(
        "--random-networks",
        dest="networks",
        action="store_const",
        const="random",
        help="untrained networks (tests and plumbing only)",
    )
    nets.add_argument("--checkpoint", type=Path, default=None, help="a Stage II Lightning checkpoint")
    parser.add_argument(
        "--image-size", type=int, default=None, help="face size, --random-networks only: 512, 384, 256"
    )
    parser.add_argument(
        "--width", type=int, default=None, help="channel divisor, --random-networks only: 1 … 32"
    )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--log-every", type=int, default=10, help="files per progress line (default 10)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress lines")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Validated :class:`Settings`; :class:`UsageError` naming the problem."""
    if args.sampler not in DPP_SAMPLERS:
        raise UsageError(f"unknown sampler {args.sampler!r}; choose one of {', '.join(DPP_SAMPLERS)}")
    if not math.isfinite(args.epsilon) or args.epsilon <= 0:
        raise UsageError(f"--epsilon must be a finite number > 0, got {args.epsilon}")
    if args.releases < 1:
        raise UsageError(f"--releases-per-face must be >= 1, got {args.releases}")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if args.log_every < 1:
        raise UsageError(f"--log-every must be >= 1, got {args.log_every}")
    kind = "checkpoint" if args.checkpoint is not None else args.networks
    if kind != "random" and (args.image_size is not None or args.width is not None):
        raise UsageError("--image-size and --width apply to --random-networks only")
    image_size = IMAGE_SIZE if args.image_size is None else args.image_size
    width = 1 if args.width is None else args.width
    if image_size not in IMAGE_SIZES:
        raise UsageError(f"--image-size must be one of {IMAGE_SIZES}, got {image_size}")
    if width not in WIDTHS:
        raise UsageError(f"--width must be one of {WIDTHS}, got {width}")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise UsageError(f"checkpoint not found: {args.checkpoint}")
    return Settings(
        in_dir=args.in_dir,
        out_dir=args.out_dir,
        sampler=args.sampler,
        epsilon=float(args.epsilon),
        releases=args.releases,
        seed=args.seed,
        networks=kind,
        checkpoint=args.checkpoint,
        image_size=image_size,
        width=width,
        device=args.device,
        log_every=args.log_every,
        progress=args.progress,
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0, or 2 for usage errors, missing weights or a bad checkpoint."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse's own errors (and --help) as a return value
        return int(exit_.code or 0)
    try:
        summary = run_predict(settings_from_args(args))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = summary["counts"]
    print(
        f"predict: {counts['inputs']} input files -> {counts['protected']} protected "
        f"({counts['released_images']} images released), {counts['failed']} failed; outputs in "
        f"{summary['out_dir']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
