"""``python -m src.preprocess.align``: outputs, failures, the invariant, resuming, workers, usage errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from src.preprocess.align import main

POINT_COLUMNS = [
    f"{n}_{a}" for n in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right") for a in "xy"
]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXPECTED_FAILURES = {
    "broken.jpg": "unreadable",
    "sub/empty.png": "unreadable",
    "notes.txt": "not_image",
    "noise.png": "no_face",
    "sub/flat.png": "no_face",
    "sub/deeper/two.png": "multiple_faces",
}
EXPECTED_ALIGNED = {"face.png": "face.png", "sub/face_flip.jpg": "sub/face_flip.png"}


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Faces (one nested, JPEG), two faces side by side, noise, flat, corrupt, empty and non-image files."""
    root = tmp_path / "in"
    head = data.astronaut()[0:256, 96:352]
    _write(root / "face.png", head)
    _write(root / "sub" / "face_flip.jpg", head[:, ::-1])
    _write(root / "sub" / "deeper" / "two.png", np.concatenate([head, head[:, ::-1]], axis=1))
    _write(root / "noise.png", np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8))
    _write(root / "sub" / "flat.png", np.full((96, 128, 3), 128, np.uint8))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (root / "sub" / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _snapshot(out: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in out.rglob("*")
        if p.is_file()
    }


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([*args, "--no-progress", "--threads", "1"])
    return code, capsys.readouterr().out


def test_end_to_end_and_resume(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, printed = _run([str(tree), str(out)], capsys)
    assert code == 0
    assert "8 input files -> 2 aligned, 6 failed" in printed and "processed 8" in printed

    aligned, failures = _rows(out / "landmarks.csv"), _rows(out / "failures.csv")
    assert {r["file"]: r["output"] for r in aligned} == EXPECTED_ALIGNED
    assert {r["file"]: r["reason"] for r in failures} == EXPECTED_FAILURES
    # The invariant: every input file is in exactly one manifest.
    inputs = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}
    assert {r["file"] for r in aligned} | {r["file"] for r in failures} == inputs
    assert not {r["file"] for r in aligned} & {r["file"] for r in failures}
    assert [r["file"] for r in aligned] == sorted(r["file"] for r in aligned)

    for row in aligned:
        crop = cv2.imread(str(out / row["output"]))
        assert crop.shape == (112, 112, 3)
        points = np.array([float(row[k]) for k in POINT_COLUMNS]).reshape(5, 2)
        matrix = np.array([float(row[f"m{r}{c}"]) for r in range(2) for c in range(3)]).reshape(2, 3)
        warped = points @ matrix[:, :2].T + matrix[:, 2]
        assert np.abs(warped[:2] - [[38.3, 51.7], [73.5, 51.5]]).max() < 6  # eyes near the ArcFace eyes
        assert float(row["score"]) > 0.99 and row["n_faces"] == "1" and row["source"] == "mtcnn"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["input_files"] == 8 and summary["counts"]["aligned"] == 2
    assert summary["counts"]["failures_by_reason"] == {
        "unreadable": 2,
        "not_image": 1,
        "no_face": 2,
        "multiple_faces": 1,
        "error": 0,
    }

    # A second run does no work and leaves every output byte (and mtime) as it was.
    before = _snapshot(out)
    code, printed = _run([str(tree), str(out)], capsys)
    assert code == 0 and "processed 0, skipped 8" in printed
    assert _snapshot(out) == before

    # A lost crop and a half-written manifest line are redone once, without duplicate rows.
    (out / "sub" / "face_flip.png").unlink()
    with (out / "failures.csv").open("a") as handle:
        handle.write("noise.png,no_f")
    code, printed = _run([str(tree), str(out)], capsys)
    assert code == 0 and "processed 1, skipped 7" in printed
    after = _snapshot(out)
    for name in ("landmarks.csv", "failures.csv", "summary.json", "sub/face_flip.png", "face.png"):
        assert after[name][0] == before[name][0], name

    # A changed input is redone; a deleted one leaves the manifests.
    _write(tree / "noise.png", np.full((64, 64, 3), 7, np.uint8))
    (tree / "notes.txt").unlink()
    code, printed = _run([str(tree), str(out)], capsys)
    assert code == 0 and "processed 1, skipped 6" in printed
    assert {r["file"] for r in _rows(out / "failures.csv")} == set(EXPECTED_FAILURES) - {"notes.txt"}


def test_workers_and_largest_face(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = [str(tree), str(out), "--workers", "2", "--multi-face", "largest", "--template", "ffhq128"]
    args += ["--detector", "hog", "--upsample", "0", "--dlib-landmarks", "5"]  # light models: quick start-up
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "8 input files -> 3 aligned, 5 failed" in captured.out
    assert "align:" in captured.err  # the tqdm progress bar
    aligned = {r["file"]: r for r in _rows(out / "landmarks.csv")}
    assert set(aligned) == {*EXPECTED_ALIGNED, "sub/deeper/two.png"}
    assert aligned["sub/deeper/two.png"]["n_faces"] == "2"
    assert cv2.imread(str(out / "sub" / "deeper" / "two.png")).shape == (128, 128, 3)
    assert json.loads((out / "summary.json").read_text())["counts"]["aligned_with_several_faces"] == 1


def test_module_entry_point() -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "src.preprocess.align", "--help"]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--multi-face" in result.stdout and "arcface112" in result.stdout


def test_hog_detector_and_usage_errors(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, printed = _run(
        [str(tree), str(out), "--detector", "hog", "--upsample", "0", "--dlib-landmarks", "5"], capsys
    )
    assert code == 0 and "2 aligned" in printed
    assert {r["source"] for r in _rows(out / "landmarks.csv")} == {"dlib_hog+dlib5(mouth estimated)"}
    # MTCNN boxes + dlib's 5-point predictor for the dlib chip.
    code, printed = _run([str(tree), str(tmp_path / "chips"), "--template", "dlib150"], capsys)
    assert code == 0 and "2 aligned" in printed
    assert cv2.imread(str(tmp_path / "chips" / "face.png")).shape == (150, 150, 3)
    # Other settings into the same folder: refused, nothing touched.
    before = _snapshot(out)
    code = main([str(tree), str(out), "--detector", "mtcnn", "--no-progress"])
    assert code == 2 and "other settings" in capsys.readouterr().err
    assert _snapshot(out) == before
    assert main([str(tmp_path / "missing"), str(tmp_path / "o2"), "--no-progress"]) == 2
    assert main([str(tree), str(tree / "inside"), "--no-progress"]) == 2
    assert main([str(tree), str(tmp_path / "o4"), "--device", "nodevice", "--no-progress"]) == 2
    assert "failed to start" in capsys.readouterr().err
    for bad in (["--template", "nope"], ["--workers", "0"], ["--detector", "retina"]):
        with pytest.raises(SystemExit) as exit_info:
            main([str(tree), str(tmp_path / "o3"), *bad])
        assert exit_info.value.code == 2
