"""``python -m src.cli protect|recover|detect``: folders in, outputs mirrored, every failure listed, passwords
only from the environment."""

from __future__ import annotations

import csv
import hashlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from torch import Tensor

from src.cli import cli_main
from src.datamodules.components.synthetic_face_renderer import render_synthetic_face
from src.inference.faces import FaceRegion, crop_faces, paste_faces
from src.inference.inputs import as_image, from_tensor, to_tensor
from src.inference.methods import DetectionMethod, FaceCrop, ProtectionMethod
from src.papers.registry import METHODS, MethodEntry
from src.sdk import load
from src.serving.video import VideoWriter
from tests.helpers import run_cli

SECRET = "tr0ub4dor&3"


class Negative(ProtectionMethod):
    """A keyed, reversible stand-in: an affine negative whose contrast the password picks (exactly invertible
    before rounding, and linear, so resizing does not get in the way)."""

    reversible = True
    needs_password = True

    def _contrast(self, password: str | None) -> float:
        return 0.5 + 0.4 * hashlib.sha256((password or "").encode()).digest()[0] / 255

    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        return 0.5 + self._contrast(password) * (0.5 - faces)

    def recover_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        return (0.5 - (faces - 0.5) / self._contrast(password)).clamp(0, 1)


def _build(checkpoint: Any, device: Any = "cpu", **options: Any) -> Negative:
    return Negative("negative", "obfuscation_baselines", 64, crop=FaceCrop(scale=1.5, feather=0.0))


@pytest.fixture
def negative(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = MethodEntry("negative", "obfuscation_baselines", "protect", _build, "test stand-in", False)
    monkeypatch.setitem(METHODS, "negative", entry)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(render_synthetic_face(0, 1, 0, 160)).save(folder / "a.jpg", quality=95)
    Image.fromarray(render_synthetic_face(0, 2, 0, 160)).save(folder / "sub" / "b.png")
    Image.fromarray(np.full((100, 100, 3), 128, np.uint8)).save(folder / "blank.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "notes.txt").write_text("hello")
    return folder


def test_folder_run_writes_every_output_and_lists_every_failure(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    code = cli_main(["protect", str(photos), str(out), "--method", "pixelate", "--no-progress"])
    assert code == 3
    assert (out / "a.jpg").is_file() and (out / "sub" / "b.png").is_file()
    assert json.loads((out / "a.jpg.faces.json").read_text())["faces"][0]["side"] > 0
    with (out / "failures.csv").open() as handle:
        failures = {Path(row["file"]).name: row["reason"] for row in csv.DictReader(handle)}
    assert set(failures) == {"blank.png", "broken.jpg", "notes.txt"}
    assert "no face found" in failures["blank.png"] and "corrupt image" in failures["broken.jpg"]
    err = capsys.readouterr()
    assert "protect: 2 of 5 input(s) done" in err.out and "3 input(s) failed" in err.err


def test_passwords_never_come_from_the_command_line(photos: Path, tmp_path: Path, negative: None) -> None:
    args = ["protect", str(photos / "a.jpg"), str(tmp_path / "o.png"), "--method", "negative"]
    assert cli_main([*args, "--password", SECRET]) == 2
    assert cli_main([*args, f"--password={SECRET}"]) == 2


def test_protect_then_recover_with_the_password_from_the_environment(
    photos: Path,
    tmp_path: Path,
    negative: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    protected, recovered = tmp_path / "p.png", tmp_path / "r.png"
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert cli_main(["protect", str(photos / "sub" / "b.png"), str(protected), "--method", "negative"]) == 2
    assert "needs a password: set $PROFACE_PASSWORD" in capsys.readouterr().err
    monkeypatch.setenv("MY_PASSWORD", SECRET)
    common = ["--method", "negative", "--password-env", "MY_PASSWORD", "--no-progress"]
    assert cli_main(["protect", str(photos / "sub" / "b.png"), str(protected), *common]) == 0
    # recover reads the faces file protect wrote next to its output: exactly the protected square
    assert cli_main(["recover", str(protected), str(recovered), *common]) == 0
    original, back = as_image(photos / "sub" / "b.png"), as_image(recovered)
    # a reversible method's square is pixel-exact (2 x 64 px here): recovery gives the face back at the
    # method's resolution, losing only the 8-bit rounding of the protected image
    square = json.loads((tmp_path / "p.png.faces.json").read_text())["faces"][0]
    region = FaceRegion((0, 0, 1, 1), 1.0, square["left"], square["top"], square["side"])
    assert region.side == 128
    image = to_tensor(original)
    at_method_size = paste_faces(
        image, crop_faces(image, [region], 64, exact=True), [region], 0.0, exact=True
    )
    error = np.abs(back.astype(int) - from_tensor(at_method_size).astype(int))
    assert error.max() <= 2, f"recovery error: mean {error.mean():.2f}, max {error.max()}"
    monkeypatch.setenv("MY_PASSWORD", "not the password")
    assert cli_main(["recover", str(protected), str(tmp_path / "w.png"), *common]) == 0
    assert np.abs(as_image(tmp_path / "w.png").astype(int) - original.astype(int)).mean() > 5
    assert SECRET not in capsys.readouterr().out


def test_wrong_kind_of_method_and_unknown_method_are_usage_errors(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert cli_main(["detect", str(photos / "a.jpg"), str(tmp_path / "d.csv"), "--method", "blur"]) == 2
    assert "detect needs a forgery detector" in capsys.readouterr().err
    assert cli_main(["recover", str(photos / "a.jpg"), str(tmp_path / "r.png"), "--method", "blur"]) == 3
    assert "not reversible" in (tmp_path / "failures.csv").read_text()
    assert cli_main(["protect", str(photos / "a.jpg"), str(tmp_path / "x.png"), "--method", "nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err


def test_the_module_entry_point_lists_methods() -> None:
    output = run_cli("src.cli", ["methods"])
    assert "blur" in output and "dp_pix" in output


class Brightness(DetectionMethod):
    """A stand-in detector: the face's mean brightness as its fake probability (independent of the CLI)."""

    def detect_faces(self, faces: Tensor) -> Tensor:
        return faces.mean(dim=(1, 2, 3))


def test_detect_writes_one_row_per_face_and_a_video_score(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = lambda checkpoint, device="cpu", **options: Brightness("brightness", "obfuscation_baselines", 64)  # noqa: E731
    entry = MethodEntry("brightness", "obfuscation_baselines", "detect", build, "test stand-in", False)
    monkeypatch.setitem(METHODS, "brightness", entry)
    clip = photos / "clip.mp4"
    with VideoWriter(clip, Fraction(5)) as writer:
        for identity in (1, 2):
            writer.write(render_synthetic_face(0, identity, 0, 160))
    out = tmp_path / "scores.csv"
    code = cli_main(["detect", str(photos), str(out), "--method", "brightness", "--no-progress"])
    assert code == 3  # broken.jpg and notes.txt fail; the blank image is scored as "no face"
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    by_file = {}
    for row in rows:
        by_file.setdefault(Path(row["file"]).name, []).append(row)
    assert set(by_file) == {"a.jpg", "b.png", "blank.png", "clip.mp4"}
    assert by_file["blank.png"][0]["score"] == ""  # no face: no score, but listed
    video = [row for row in by_file["clip.mp4"] if row["face"] == "video"]
    frames = [float(row["score"]) for row in by_file["clip.mp4"] if row["face"] == "0"]
    assert len(frames) == 2 and float(video[0]["score"]) == pytest.approx(sum(frames) / 2, abs=1e-5)
    direct = load("brightness").detect(photos / "a.jpg")[0].score  # the SDK on the same file
    assert float(by_file["a.jpg"][0]["score"]) == pytest.approx(direct, abs=1e-6)
