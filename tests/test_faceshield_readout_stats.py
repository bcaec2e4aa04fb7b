"""FaceShield readout statistics: accumulation, file format, loader round trip and the CLI."""

from __future__ import annotations

import csv
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.papers.faceshield import key_mapping as km
from src.papers.faceshield.networks.encoder import FaceShieldEncoder, encoder_input
from src.papers.faceshield.networks.readout import RAW_KEYS, ReadoutStatistics
from src.papers.faceshield.readout_stats import (
    accumulate_readout_statistics,
    compute_readout_files,
    load_face,
    main,
    save_readout_statistics,
)

SIZE = 32
PREPROCESS = partial(encoder_input, size=SIZE)


@pytest.fixture(scope="module")
def encoder() -> FaceShieldEncoder:
    torch.manual_seed(0)
    return FaceShieldEncoder(input_size=SIZE)


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(6, 3, 512, 512, generator=generator) * 2 - 1


def direct_statistics(encoder: FaceShieldEncoder, faces: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """m, Σx², nonzero counts of f0 … f10 over all faces at once, one image per forward, in float64."""
    with torch.no_grad():
        per_image = [encoder(PREPROCESS(face[None]))[1][:11] for face in faces]
    out = []
    for i in range(11):
        x = torch.cat([features[i] for features in per_image]).double()
        out.append({"m": x.mean(0), "s": (x**2).sum(0), "nonzero": (x.abs() > 0.01).sum(0)})
    return out


def test_statistics_equal_a_direct_computation(encoder: FaceShieldEncoder, faces: torch.Tensor) -> None:
    stats = accumulate_readout_statistics(encoder, faces.split(4), PREPROCESS)
    expected = direct_statistics(encoder, faces)
    assert sorted(stats) == list(range(11))
    for i, raw in stats.items():
        assert set(raw) == set(RAW_KEYS) and int(raw["n_samples"]) == 6
        assert raw["m"].shape == expected[i]["m"].shape and raw["m"].dtype == torch.float32
        assert torch.allclose(raw["m"].double(), expected[i]["m"], rtol=1e-6, atol=1e-6)
        assert torch.allclose(raw["s"].double(), expected[i]["s"], rtol=1e-6, atol=1e-6)
        assert torch.equal(raw["neuron_nonzero"], expected[i]["nonzero"])
    assert int(stats[0]["neuron_nonzero"].max()) > 0


def test_batch_size_does_not_change_the_files(
    encoder: FaceShieldEncoder, faces: torch.Tensor, tmp_path: Path
) -> None:
    ones = save_readout_statistics(
        accumulate_readout_statistics(encoder, faces.split(1), PREPROCESS), tmp_path / "a"
    )
    mixed = save_readout_statistics(
        accumulate_readout_statistics(encoder, faces.split([4, 2]), PREPROCESS), tmp_path / "b"
    )
    assert [p.name for p in ones] == [f"readout_layer{i}.pth" for i in range(11)]
    for a, b in zip(ones, mixed, strict=True):
        raw_a, raw_b = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
        assert set(raw_a) == set(RAW_KEYS)
        assert torch.allclose(raw_a["m"], raw_b["m"], rtol=1e-6, atol=1e-6)
        assert torch.allclose(raw_a["s"], raw_b["s"], rtol=1e-6, atol=1e-6)
        assert torch.equal(raw_a["neuron_nonzero"], raw_b["neuron_nonzero"])
        assert torch.equal(raw_a["n_samples"], raw_b["n_samples"])


def test_files_load_into_readout_statistics(
    encoder: FaceShieldEncoder, faces: torch.Tensor, tmp_path: Path
) -> None:
    paths = save_readout_statistics(accumulate_readout_statistics(encoder, [faces], PREPROCESS), tmp_path)
    statistics = ReadoutStatistics(input_size=SIZE)
    km.load_readout_statistics(statistics, paths)
    expected = direct_statistics(encoder, faces)
    for layer, exp in zip(statistics.layers, expected, strict=True):
        assert torch.allclose(layer.mean.double(), exp["m"], rtol=1e-5, atol=1e-6)
        assert torch.allclose(layer.std.double(), (exp["s"] / 5).sqrt(), rtol=1e-5, atol=1e-6)
        assert torch.equal(layer.active, exp["nonzero"].double() / 6 > 0.01)


def write_png(path: Path, size: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def test_cli_folder_lists_failures_and_uses_the_rest(encoder: FaceShieldEncoder, tmp_path: Path) -> None:
    images, out = tmp_path / "faces", tmp_path / "out"
    write_png(images / "a.png", 512, 0)
    write_png(images / "sub" / "b.png", 512, 1)
    write_png(images / "sub" / "deeper" / "c.png", 256, 2)  # resized to 512 like the original
    (images / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (images / "notes.txt").write_text("hello")
    summary = compute_readout_files(encoder, images, out, batch_size=2, progress=False, preprocess=PREPROCESS)
    with open(out / "failures.csv", newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"sub/broken.png", "notes.txt"}
    assert rows["sub/broken.png"]["reason"] == "unreadable" and rows["sub/broken.png"]["detail"]
    assert rows["notes.txt"]["reason"] == "not_image"
    assert summary["images_used"] == 3 and summary["failures"] == 2
    assert json.loads((out / "summary.json").read_text())["images_used"] == 3
    used = torch.stack([load_face(images / p) for p in ("a.png", "sub/b.png", "sub/deeper/c.png")])
    assert used.shape == (3, 3, 512, 512) and used.min() >= -1 and used.max() <= 1
    expected = accumulate_readout_statistics(encoder, [used], PREPROCESS)
    for i in range(11):
        raw = torch.load(out / f"readout_layer{i}.pth", weights_only=True)
        assert int(raw["n_samples"]) == 3
        assert torch.allclose(raw["m"], expected[i]["m"], rtol=1e-6, atol=1e-6)


def test_too_few_images_is_an_error_with_failures_written(encoder: FaceShieldEncoder, tmp_path: Path) -> None:
    images, out = tmp_path / "faces", tmp_path / "out"
    write_png(images / "only.png", 512, 0)
    (images / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(ValueError, match="1 usable image"):
        compute_readout_files(encoder, images, out, progress=False, preprocess=PREPROCESS)
    assert "bad.jpg" in (out / "failures.csv").read_text()
    assert not (out / "readout_layer0.pth").exists()


def test_missing_encoder_weights_give_the_manifest_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "weights"
    monkeypatch.setenv("PROFACE_WEIGHTS", str(weights))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    images, out = tmp_path / "faces", tmp_path / "out"
    write_png(images / "a.png", 512, 0)
    assert main([str(images), str(out)]) == 2
    message = capsys.readouterr().err
    assert str(weights / "faceshield_model_128_ir_se50.pth") in message
    assert "python -m src.weights pin faceshield-encoder128" in message
    assert main([str(images), str(out), "--encoder-weights", str(tmp_path / "none.pth")]) == 2
    assert "FaceShield checkpoint not found" in capsys.readouterr().err
    assert not out.exists()
