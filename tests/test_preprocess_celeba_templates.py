"""PRO-Face multi-template alignment: ``src.face.pose_templates`` and ``src.preprocess.celeba_templates``.

The miniature in-the-wild CelebA has faces whose 5 landmarks are a known pose template under a known
similarity (rounded to CelebA's integer coordinates), with coloured dots on the landmarks, so the winning
template, the matrix and where the dots land in the 224-px output are all known.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from src.face import pose_templates as pt
from src.face.pose_templates import (
    FRONTAL,
    POSE_NAMES,
    POSE_TEMPLATES_112,
    best_pose_template,
    best_pose_templates,
    pose_templates,
)
from src.preprocess import celeba_templates as ct
from src.preprocess.celeba_templates import main
from tests.fixtures_datasets import make_celeba, write_text

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CRLF = "\r\n"
DOTS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)], np.uint8)  # RGB
LANDMARK_HEADER = (
    "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
    "leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
)


# ------------------------------------------------------------------------------------------ pose templates


def _reference(landmarks: np.ndarray, size: int = 224) -> tuple[int, np.ndarray, np.ndarray]:
    """insightface's estimate_norm loop with skimage's SimilarityTransform (the independent reference)."""
    best, best_matrix, errors = 0, None, []
    for index, template in enumerate(POSE_TEMPLATES_112 * (size / 112)):
        matrix = SimilarityTransform.from_estimate(landmarks, template).params[:2]
        moved = np.c_[landmarks, np.ones(5)] @ matrix.T
        errors.append(float(np.sqrt(((moved - template) ** 2).sum(1)).sum()))
        if errors[-1] < errors[best] or best_matrix is None:
            best, best_matrix = index, matrix
    return best, best_matrix, np.array(errors)


def _similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    """A ``2×3`` similarity ``x → s·R(θ)·x + t``."""
    c, s = scale * math.cos(math.radians(degrees)), scale * math.sin(math.radians(degrees))
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_templates_constants() -> None:
    assert POSE_NAMES == ct.POSE_NAMES and FRONTAL == ct.FRONTAL == POSE_NAMES.index("frontal")
    assert POSE_TEMPLATES_112.shape == (5, 5, 2)
    np.testing.assert_allclose(pose_templates(224), 2 * POSE_TEMPLATES_112)
    np.testing.assert_allclose(pose_templates(112)[2, 2], [56.0, 68.493])
    # left / right templates mirror each other (eyes and mouth corners swap sides) about x = 56.2065
    # (±0.001: the published constants are rounded)
    mirror = POSE_TEMPLATES_112[::-1][:, [1, 0, 2, 4, 3]] * [-1, 1] + [112.413, 0]
    np.testing.assert_allclose(np.delete(mirror, 2, 0), np.delete(POSE_TEMPLATES_112, 2, 0), atol=1.5e-3)


def test_best_template_matches_skimage() -> None:
    rng = np.random.default_rng(0)
    faces = [rng.uniform(0, 400, (5, 2)) for _ in range(40)]  # arbitrary point sets, reflections included
    for k in range(80):  # noisy templates under random similarities: every pose wins some
        template = POSE_TEMPLATES_112[k % 5] * 2 + rng.normal(0, 3, (5, 2))
        warp = _similarity(rng.uniform(0.3, 4), rng.uniform(-60, 60), rng.uniform(-100, 500, 2))
        faces.append(_apply(warp, template))
    index, matrices, errors = best_pose_templates(np.stack(faces))
    assert set(index.tolist()) == set(range(5))
    for face, i, matrix, error in zip(faces, index, matrices, errors, strict=True):
        ref_index, ref_matrix, ref_errors = _reference(face)
        assert i == ref_index
        np.testing.assert_allclose(matrix, ref_matrix, atol=1e-6)
        np.testing.assert_allclose(error, ref_errors, atol=1e-6)
        one = best_pose_template(face)
        assert one[0] == i
        np.testing.assert_allclose(one[1], matrix, atol=1e-12)
        np.testing.assert_allclose(one[2], error, atol=1e-12)


def test_exact_template_and_ties(monkeypatch: pytest.MonkeyPatch) -> None:
    warp = _similarity(1.7, 12.0, (40.0, -8.0))  # output → image
    for pose in range(5):
        index, matrix, errors = best_pose_template(_apply(warp, pose_templates(224)[pose]), size=224)
        assert index == pose and errors[pose] < 1e-9 and np.all(np.delete(errors, pose) > 1.0)
        inverse = cv2.invertAffineTransform(warp)
        np.testing.assert_allclose(matrix, inverse, atol=1e-9)
    index, _, errors = best_pose_template(_apply(warp, pose_templates(112)[0]), size=112)
    assert index == 0 and errors[0] < 1e-9
    # equal errors: the lowest index wins, as in insightface's strict "<"
    tied = POSE_TEMPLATES_112.copy()
    tied[3] = tied[1]
    monkeypatch.setattr(pt, "POSE_TEMPLATES_112", tied)
    index, _, errors = best_pose_template(_apply(warp, tied[1] * 2))
    assert errors[1] == errors[3] and index == 1
    with pytest.raises(ValueError, match=r"\[5, 2\]"):
        best_pose_template(np.zeros((4, 2)))
    assert best_pose_templates(np.zeros((0, 5, 2)))[1].shape == (0, 2, 3)


# ---------------------------------------------------------------------------------------- miniature CelebA

IMAGE_SIZE = (360, 440)  # width, height
# file: (partition or None, pose or None (no landmark line), output → image (scale, degrees), kind)
FACES = {
    "000001.jpg": (0, 2, (1.3, 10.0), "face"),
    "000002.jpg": (0, 0, (1.5, -6.0), "face"),
    "000003.jpg": (1, 2, (0.9, 0.0), "face"),
    "000004.jpg": (1, 3, (1.1, 4.0), "face"),
    "000005.jpg": (2, 2, (1.2, -12.0), "face"),
    "000006.jpg": (2, 4, (1.0, 3.0), "face"),
    "000007.jpg": (0, 2, (1.0, 0.0), "missing"),
    "000008.jpg": (1, 1, (1.2, 0.0), "garbage"),
    "000009.jpg": (2, None, (1.0, 0.0), "face"),
    "000010.jpg": (None, 2, (1.1, -3.0), "face"),
}
EXPECTED_POSES = {
    name: pose for name, (_, pose, _, kind) in FACES.items() if kind == "face" and pose is not None
}
EXPECTED_FAILURES = {"000007.jpg": "missing", "000008.jpg": "unreadable", "000009.jpg": "no_landmarks"}


def _landmarks(face: tuple) -> np.ndarray:
    """Integer landmarks: the pose template (224) under the face's similarity, centred in the image."""
    _, pose, (scale, degrees), _ = face
    warp = _similarity(scale, degrees, (0.0, 0.0))
    warp[:, 2] = np.array(IMAGE_SIZE) / 2 - _apply(warp, np.array([[112.0, 112.0]]))[0]
    return np.rint(_apply(warp, pose_templates(224)[pose if pose is not None else 2])).astype(int)


def _face_image(points: np.ndarray, seed: int) -> np.ndarray:
    """A smooth background with a coloured disc on each landmark (RGB)."""
    width, height = IMAGE_SIZE
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 90 + 40 * np.sin(xx / 37.0 + rng.uniform(0, 6)) * np.cos(yy / 29.0)
    image = np.repeat(base[..., None], 3, axis=2).astype(np.uint8)
    for point, colour in zip(points, DOTS, strict=True):
        cv2.circle(image, (int(point[0]), int(point[1])), 6, tuple(int(c) for c in colour), -1)
    return image


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 98])


def _write_lists(root: Path, layout: str, faces: dict) -> None:
    anno, evaluation = ("Anno/", "Eval/") if layout == "official" else ("", "")
    marks = [n for n, face in faces.items() if face[1] is not None]
    write_text(
        root / f"{anno}list_landmarks_celeba.txt",
        [
            str(len(marks)),
            LANDMARK_HEADER,
            *(f"{n} " + " ".join(f"{v:4d}" for v in _landmarks(faces[n]).ravel()) for n in marks),
        ],
        CRLF,
    )
    write_text(
        root / f"{evaluation}list_eval_partition.txt",
        [f"{n} {face[0]}" for n, face in faces.items() if face[0] is not None],
        CRLF,
    )


def make_wild_celeba(root: Path, layout: str = "official", faces: dict | None = None) -> Path:
    """In-the-wild CelebA: ``Img/img_celeba/`` + ``Anno/`` + ``Eval/`` (official) or all flat."""
    faces = faces or FACES
    image_dir = root / ("Img/img_celeba" if layout == "official" else "img_celeba")
    image_dir.mkdir(parents=True, exist_ok=True)
    for seed, (name, (_, _, _, kind)) in enumerate(faces.items()):
        if kind == "face":
            _write_rgb(image_dir / name, _face_image(_landmarks(faces[name]), seed))
        elif kind == "garbage":
            (image_dir / name).write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    _write_lists(root, layout, faces)
    return image_dir


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def _snapshot(out: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in out.rglob("*")
        if p.is_file()
    }


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([*args, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _frontal(out: Path) -> dict[str, set[str]]:
    return {
        part: {p.name for p in (out / f"{part}_frontal").iterdir()} for part in ("train", "valid", "test")
    }


def test_end_to_end_limit_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "celeba"
    image_dir = make_wild_celeba(root)
    out = root / "proface224"  # inside the CelebA root, as datamodule.image_dir wants it

    code, printed, _ = _run([str(root), str(out), "--limit", "4"], capsys)
    assert code == 0 and "processed 4" in printed
    assert sorted(_rows(out / "poses.csv")) == [f"00000{i}.jpg" for i in range(1, 5)]
    assert not json.loads((out / "summary.json").read_text())["counts"]["complete"]

    code, printed, _ = _run([str(root), str(out)], capsys)
    assert code == 0
    assert "10 listed images -> 7 aligned, 3 failed" in printed and "processed 6, skipped 4" in printed

    poses, failures = _rows(out / "poses.csv"), _rows(out / "failures.csv")
    assert set(poses) | set(failures) == set(FACES) and not set(poses) & set(failures)
    assert {n: r["reason"] for n, r in failures.items()} == EXPECTED_FAILURES
    assert str(image_dir / "000007.jpg") in failures["000007.jpg"]["detail"]
    assert failures["000009.jpg"]["partition"] == "test" and failures["000009.jpg"]["left_eye_x"] == ""
    assert {n: int(r["pose"]) for n, r in poses.items()} == EXPECTED_POSES
    assert poses["000010.jpg"]["partition"] == "none" and poses["000003.jpg"]["partition"] == "valid"

    for name, row in poses.items():
        points = _landmarks(FACES[name])
        assert [int(row[c]) for c in ct.POINT_COLUMNS] == points.ravel().tolist()
        pose = EXPECTED_POSES[name]
        assert row["pose_name"] == POSE_NAMES[pose] and row["output"] == f"images/{name}"
        ref_index, ref_matrix, ref_errors = _reference(points.astype(float))
        assert ref_index == pose
        matrix = np.array([float(row[c]) for c in ct.MATRIX_COLUMNS]).reshape(2, 3)
        np.testing.assert_allclose(matrix, ref_matrix, rtol=1e-7, atol=1e-6)
        errors = np.array([float(row[c]) for c in ct.ERROR_COLUMNS])
        np.testing.assert_allclose(errors, ref_errors, atol=1e-4)
        assert errors[pose] < 3.0 and np.all(np.delete(errors, pose) > errors[pose] + 5)

        crop = cv2.imread(str(out / row["output"]))[..., ::-1]
        assert crop.shape == (224, 224, 3)
        source = cv2.imread(str(image_dir / name))
        expected = cv2.warpAffine(source, ref_matrix, (224, 224), flags=cv2.INTER_LINEAR)[..., ::-1]
        assert np.abs(crop.astype(int) - expected).mean() < 2.0  # JPEG q95
        for point, colour in zip(pose_templates(224)[pose], DOTS, strict=True):  # the dots land on T
            x, y = np.rint(point).astype(int)
            assert np.abs(crop[y, x].astype(int) - colour).max() < 60, (name, point)

    assert _frontal(out) == {"train": {"000001.jpg"}, "valid": {"000003.jpg"}, "test": {"000005.jpg"}}
    for part, name in (("train", "000001.jpg"), ("valid", "000003.jpg"), ("test", "000005.jpg")):
        linked = out / f"{part}_frontal" / name
        assert (
            os.path.samefile(linked, out / "images" / name)
            or linked.read_bytes() == (out / "images" / name).read_bytes()
        )
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(poses)

    summary = json.loads((out / "summary.json").read_text())
    counts = summary["counts"]
    assert counts["complete"] and counts["aligned"] == 7 and counts["failed"] == 3
    assert counts["by_pose"] == {
        "left_profile": 1,
        "left": 0,
        "frontal": 4,
        "right": 1,
        "right_profile": 1,
    }
    assert counts["frontal"] == {"train_frontal": 1, "valid_frontal": 1, "test_frontal": 1}
    assert counts["by_partition"]["none"]["aligned"] == 1
    assert counts["by_partition"]["test"] == {
        "aligned": 2,
        "failed": 1,
        "by_pose": {"left_profile": 0, "left": 0, "frontal": 1, "right": 0, "right_profile": 1},
    }
    assert counts["failures_by_reason"]["missing"] == 1 and counts["not_in_landmark_file"] == 1
    assert summary["settings"]["size"] == 224 and summary["settings"]["jpeg_quality"] == 95

    # Resume: nothing to do, nothing touched.
    before = _snapshot(out)
    code, printed, _ = _run([str(root), str(out)], capsys)
    assert code == 0 and "processed 0, skipped 10" in printed and "0 frontal link change(s)" in printed
    assert _snapshot(out) == before

    # A new partition only moves the link; a fixed image and a changed one are redone (links follow).
    faces = {**FACES, "000001.jpg": (1, *FACES["000001.jpg"][1:])}
    _write_lists(root, "official", faces)
    _write_rgb(image_dir / "000008.jpg", _face_image(_landmarks(FACES["000008.jpg"]), 99))
    _write_rgb(image_dir / "000003.jpg", _face_image(_landmarks(FACES["000003.jpg"]), 77))
    code, printed, _ = _run([str(root), str(out)], capsys)
    assert code == 0 and "processed 2, skipped 8" in printed
    poses, failures = _rows(out / "poses.csv"), _rows(out / "failures.csv")
    assert poses["000008.jpg"]["pose_name"] == "left" and "000008.jpg" not in failures
    assert poses["000001.jpg"]["partition"] == "valid"
    assert _frontal(out) == {"train": set(), "valid": {"000001.jpg", "000003.jpg"}, "test": {"000005.jpg"}}
    assert (out / "valid_frontal" / "000003.jpg").read_bytes() == (out / "images" / "000003.jpg").read_bytes()

    # Other settings need a new OUT_DIR.
    code, _, err = _run([str(root), str(out), "--jpeg-quality", "90"], capsys)
    assert code == 2 and "jpeg_quality" in err


def test_layout_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # only the aligned images: the error names the folders tried and suggests --source aligned
    root = tmp_path / "aligned_only"
    make_celeba(root, "flat", images_per_identity=1)
    code, _, err = _run([str(root), str(tmp_path / "out1")], capsys)
    assert code == 2
    assert str(root / "Img/img_celeba") in err and str(root / "img_celeba") in err
    assert "--source aligned" in err
    # OUT_DIR inside the image folder; a missing root
    root = tmp_path / "wild"
    make_wild_celeba(root, faces={"000001.jpg": FACES["000001.jpg"]})
    code, _, err = _run([str(root), str(root / "Img/img_celeba/out")], capsys)
    assert code == 2 and "inside the image folder" in err
    code, _, err = _run([str(tmp_path / "nowhere"), str(tmp_path / "out3")], capsys)
    assert code == 2 and "CelebA root not found" in err and "nowhere" in err
    # no landmark list: the error names the file looked for
    (root / "Anno/list_landmarks_celeba.txt").unlink()
    code, _, err = _run([str(root), str(tmp_path / "out2")], capsys)
    assert code == 2 and str(root / "Anno/list_landmarks_celeba.txt") in err
    # the image folder is there but holds none of the listed images
    _write_lists(root, "official", {"000123.jpg": FACES["000001.jpg"]})
    code, _, err = _run([str(root), str(tmp_path / "out4")], capsys)
    assert code == 2 and str(root / "Img/img_celeba/000123.jpg") in err


def test_flat_layout_workers_and_aligned_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faces = {n: FACES[n] for n in ("000001.jpg", "000002.jpg", "000004.jpg", "000005.jpg")}
    root = tmp_path / "flat"
    make_wild_celeba(root, "flat", faces)
    one, two = tmp_path / "one", tmp_path / "two"
    assert _run([str(root), str(one)], capsys)[0] == 0
    assert _run([str(root), str(two), "--workers", "2"], capsys)[0] == 0
    assert (one / "poses.csv").read_text() == (two / "poses.csv").read_text()
    for name in faces:
        assert (one / "images" / name).read_bytes() == (two / "images" / name).read_bytes()
    assert _frontal(two) == {"train": {"000001.jpg"}, "valid": set(), "test": {"000005.jpg"}}

    # --source aligned: the official 178×218 crops with their aligned landmarks (an approximation)
    aligned_root = tmp_path / "aligned"
    info = make_celeba(aligned_root, "flat", images_per_identity=1)
    out = tmp_path / "from_aligned"
    code, printed, _ = _run([str(aligned_root), str(out), "--source", "aligned", "--size", "112"], capsys)
    assert code == 0 and "8 listed images -> 8 aligned, 0 failed" in printed
    poses = _rows(out / "poses.csv")
    assert set(poses) == set(info["files"])
    expected_pose, _, _ = best_pose_template(
        np.array([[69, 109], [106, 113], [77, 142], [73, 152], [108, 154]])
    )
    assert {int(r["pose"]) for r in poses.values()} == {expected_pose}
    assert cv2.imread(str(out / "images" / info["files"][0])).shape == (112, 112, 3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["source"] == "aligned"
    assert summary["inputs"]["image_dir"] == str(aligned_root / "img_align_celeba")


def test_help_subprocess() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "src.preprocess.celeba_templates", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--source" in result.stdout and "valid_frontal" in result.stdout
