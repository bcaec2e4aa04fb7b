"""Readout statistics of FaceShield's encoder over a folder of aligned faces (``readout_layer{0..10}.pth``).

Per neuron of each of the first 11 encoder maps ``f0`` … ``f10`` this accumulates, in float64, the
original file's four entries: ``m`` (mean), ``s`` (the *uncentred* Σx², as the original stores it),
``neuron_nonzero`` (count of |x| > 0.01) and ``n_samples``. The files load unchanged through
:func:`src.papers.faceshield.key_mapping.load_readout_statistics` (std = sqrt(s / (n − 1)), see
``docs/papers/faceshield.md``, "Readout statistics").

CLI::

    python -m src.papers.faceshield.readout_stats IMAGE_DIR OUT_DIR [--encoder-weights manifest|PATH]
        [--batch-size N] [--limit N] [--device cpu] [--log-every N]

Writes ``readout_layer{i}.pth``, ``failures.csv`` (``file``, ``reason``, ``detail``; every file under
``IMAGE_DIR`` that was not used) and ``summary.json`` into ``OUT_DIR``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from src.datamodules.components.layout import IMAGE_EXTENSIONS
from src.papers.faceshield.networks.encoder import FaceShieldEncoder, encoder_input
from src.papers.faceshield.networks.readout import RAW_KEYS, READOUT_CHANNELS
from src.preprocess.align import list_inputs
from src.weights import WeightsError

NUM_READOUT_LAYERS = len(READOUT_CHANNELS)
NONZERO_THRESHOLD = 0.01
FAILURE_COLUMNS = ("file", "reason", "detail")
FACE_SIZE = 512


class ReadoutAccumulator:
    """Running float64 Σx, Σx², nonzero counts and the sample count of the first 11 feature maps."""

    def __init__(self, num_layers: int = NUM_READOUT_LAYERS) -> None:
        self.num_layers = num_layers
        self.n_samples = 0
        self.sums: list[Tensor] = []
        self.squares: list[Tensor] = []
        self.nonzero: list[Tensor] = []

    def update(self, features: list[Tensor]) -> None:
        """Add one batch of feature maps ``[B, C, H, W]`` (only the first ``num_layers`` are used)."""
        if len(features) < self.num_layers:
            raise ValueError(f"expected at least {self.num_layers} feature maps, got {len(features)}")
        first = not self.sums
        for i, f in enumerate(features[: self.num_layers]):
            x = f.detach().to(torch.float64)
            total, square = x.sum(0), (x * x).sum(0)
            count = (f.detach().abs() > NONZERO_THRESHOLD).sum(0, dtype=torch.int64)
            if first:
                self.sums.append(total)
                self.squares.append(square)
                self.nonzero.append(count)
            else:
                self.sums[i] += total
                self.squares[i] += square
                self.nonzero[i] += count
        self.n_samples += features[0].shape[0]

    def result(self) -> dict[int, dict[str, Tensor]]:
        """Per layer, the original dict: float32 ``m``, ``s``; int64 ``neuron_nonzero``, ``n_samples``."""
        if self.n_samples == 0:
            raise ValueError("no images to accumulate statistics over")
        n = self.n_samples
        return {
            i: {
                "m": (self.sums[i] / n).float().cpu(),
                "s": self.squares[i].float().cpu(),
                "neuron_nonzero": self.nonzero[i].cpu(),
                "n_samples": torch.tensor(n, dtype=torch.int64),
            }
            for i in range(self.num_layers)
        }


@torch.no_grad()
def accumulate_readout_statistics(
    encoder: FaceShieldEncoder,
    images: Iterable[Tensor],
    preprocess: Callable[[Tensor], Tensor] | None = encoder_input,
) -> dict[int, dict[str, Tensor]]:
    """Statistics of ``encoder``'s maps f0 … f10 over batches of 512-px faces in [-1, 1].

    ``preprocess`` maps a batch to the encoder input (default: FaceShield's 37:475 crop resized to 128 px;
    ``None``: batches are already encoder inputs). Returns ``{layer: {m, s, neuron_nonzero, n_samples}}``.
    """
    accumulator = ReadoutAccumulator()
    device = next(encoder.parameters()).device
    for batch in images:
        x = batch.to(device=device, dtype=torch.float32)
        _, features = encoder(preprocess(x) if preprocess is not None else x)
        accumulator.update(features)
    return accumulator.result()


def save_readout_statistics(stats: dict[int, dict[str, Tensor]], out_dir: Path) -> list[Path]:
    """Write ``readout_layer{i}.pth`` (tensor-only dicts) into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in sorted(stats):
        path = out_dir / f"readout_layer{i}.pth"
        part = path.with_name(path.name + ".part")
        torch.save({key: stats[i][key] for key in RAW_KEYS}, part)
        os.replace(part, path)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------ images


def load_face(path: Path) -> Tensor:
    """An image as ``[3, 512, 512]`` in [-1, 1] (resized to 512 px when needed, as the original does)."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    if rgb.size != (FACE_SIZE, FACE_SIZE):
        rgb = rgb.resize((FACE_SIZE, FACE_SIZE), Image.BILINEAR)
    data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return data.view(FACE_SIZE, FACE_SIZE, 3).permute(2, 0, 1).float().div(127.5).sub(1.0)


@dataclass
class FaceBatches:
    """Batches of faces from ``files``; unreadable and non-image files go to ``failures``."""

    image_dir: Path
    files: list[str]
    batch_size: int
    limit: int | None = None
    failures: list[dict[str, str]] = field(default_factory=list)
    used: int = 0

    def __iter__(self) -> Iterator[Tensor]:
        batch: list[Tensor] = []
        for rel in self.files:
            if self.limit is not None and self.used + len(batch) >= self.limit:
                break
            if Path(rel).suffix.lower() not in IMAGE_EXTENSIONS:
                self.failures.append({"file": rel, "reason": "not_image", "detail": "extension"})
                continue
            try:
                batch.append(load_face(self.image_dir / rel))
            except Exception as error:  # any decoder error: the file is reported, never silently skipped
                self.failures.append(
                    {"file": rel, "reason": "unreadable", "detail": f"{type(error).__name__}: {error}"}
                )
                continue
            if len(batch) == self.batch_size:
                self.used += len(batch)
                yield torch.stack(batch)
                batch = []
        if batch:
            self.used += len(batch)
            yield torch.stack(batch)


class _Progress:
    """A tqdm bar on a TTY, otherwise one line every ``every`` batches (and at the end)."""

    def __init__(self, batches: Iterable[Tensor], total: int, every: int, enabled: bool) -> None:
        self.batches, self.total, self.every, self.enabled = batches, total, every, enabled

    def __iter__(self) -> Iterator[Tensor]:
        if self.enabled and sys.stderr.isatty():
            from tqdm import tqdm

            with tqdm(total=self.total, unit="img", desc="readout") as bar:
                for batch in self.batches:
                    yield batch
                    bar.update(batch.shape[0])
            return
        start, done = time.monotonic(), 0
        for index, batch in enumerate(self.batches, 1):
            yield batch
            done += batch.shape[0]
            if self.enabled and index % self.every == 0:
                rate = done / max(time.monotonic() - start, 1e-9)
                print(f"readout: {done}/{self.total} images, {rate:.1f} img/s", file=sys.stderr, flush=True)
        if self.enabled:
            print(f"readout: done, {done} images", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------- run


def load_encoder(weights: str, device: str) -> FaceShieldEncoder:
    """The 128-px encoder with released (``manifest``) or original-format (a path) weights."""
    from src.papers.faceshield import key_mapping as km

    encoder = FaceShieldEncoder()
    if weights == "manifest":
        km.load_released(encoder)
    else:
        km.load_original_encoder(encoder, weights)
    return encoder.to(device)


def compute_readout_files(
    encoder: FaceShieldEncoder,
    image_dir: Path,
    out_dir: Path,
    batch_size: int = 32,
    limit: int | None = None,
    log_every: int = 50,
    progress: bool = True,
    preprocess: Callable[[Tensor], Tensor] | None = encoder_input,
) -> dict:
    """Statistics of every readable image under ``image_dir`` into ``out_dir``; returns the summary."""
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    out_root = out_dir.resolve()
    files = [  # an OUT_DIR inside IMAGE_DIR is not an input
        rel for rel in list_inputs(image_dir) if not (image_dir / rel).resolve().is_relative_to(out_root)
    ]
    source = FaceBatches(image_dir, files, batch_size, limit)
    total = min(len(files), limit) if limit is not None else len(files)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        stats = accumulate_readout_statistics(
            encoder, _Progress(source, total, log_every, progress), preprocess
        )
    finally:  # the failures are written even when no image could be used
        with open(out_dir / "failures.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, FAILURE_COLUMNS)
            writer.writeheader()
            writer.writerows(source.failures)
    if source.used < 2:
        raise ValueError(
            f"{source.used} usable image under {image_dir}; need at least 2 (std divides by n - 1); "
            f"see {out_dir / 'failures.csv'}"
        )
    paths = save_readout_statistics(stats, out_dir)
    summary = {
        "image_dir": str(image_dir),
        "images_used": source.used,
        "failures": len(source.failures),
        "files": [path.name for path in paths],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m src.papers.faceshield.readout_stats",
        description="Accumulate FaceShield's readout statistics (readout_layer{0..10}.pth) over a folder of "
        "aligned 512-px faces; unusable files are listed in OUT_DIR/failures.csv.",
    )
    parser.add_argument("image_dir", type=Path, help="folder of aligned 512-px faces (searched recursively)")
    parser.add_argument("out_dir", type=Path, help="output folder (created)")
    parser.add_argument(
        "--encoder-weights",
        default="manifest",
        help="'manifest' (faceshield-encoder128 from the weights manifest) or a model_128_ir_se50.pth path",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="use at most N images (sorted order)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--log-every", type=int, default=50, help="batches per progress line when not a TTY")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress output")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0, or 2 for usage errors and missing weights or images."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("batch_size", "log_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.limit is not None and args.limit < 2:
        parser.error(f"--limit must be >= 2, got {args.limit}")
    try:
        encoder = load_encoder(args.encoder_weights, args.device)
        summary = compute_readout_files(
            encoder, args.image_dir, args.out_dir, args.batch_size, args.limit, args.log_every, args.progress
        )
    except (WeightsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
