"""``python -m src.papers.faceshield.predict``: outputs, failures, privacy records, randomness, usage errors.

The networks are untrained (``--random-networks --width 32 --image-size 256``); the face is skimage's
astronaut, the one real face available offline (as in ``tests/test_face_detection_alignment.py``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from src.face.alignment import ARCFACE_112
from src.face.detection import build_detector
from src.papers.faceshield import predict as P
from src.papers.faceshield.networks.encoder import ENCODER_CROP

FAST = ["--random-networks", "--width", "32", "--image-size", "256", "--no-progress"]
EXPECTED_FAILURES = {"broken.jpg": "unreadable", "sub/flat.png": "no_face"}


def _photo() -> np.ndarray:
    """The astronaut's head and shoulders, 256 × 256 (MTCNN is 4× faster than on the whole picture)."""
    return np.ascontiguousarray(data.astronaut()[:256, 96:352])


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return image[..., ::-1]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / P.RECORDS_JSONL).read_text().splitlines()]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A face photo, an image without a face (a flat colour) and a corrupt .jpg."""
    root = tmp_path_factory.mktemp("photos")
    _write(root / "face.png", _photo())
    _write(root / "sub" / "flat.png", np.full((96, 128, 3), (90, 140, 200), np.uint8))
    (root / "broken.jpg").write_bytes(np.random.default_rng(1).bytes(600))
    return root


@pytest.fixture(scope="module")
def repo_run(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    """The authors' sampler, one release, no seed (secret CSPRNG noise)."""
    out = tmp_path_factory.mktemp("repo") / "out"
    return P.main([str(tree), str(out), *FAST]), out


SEEDED = ["--sampler", "purkayastha", "--releases-per-face", "3", "--seed", "5", "--epsilon", "30"]


@pytest.fixture(scope="module")
def purkayastha_run(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    """The certified sampler, three releases of each face, a public seed; progress lines on."""
    out = tmp_path_factory.mktemp("purk") / "out"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = P.main([str(tree), str(out), *FAST[:-1], *SEEDED, "--log-every", "1"])
    return code, out, stderr.getvalue()


@pytest.fixture(scope="module")
def astronaut_face() -> P.AlignedFace:
    aligned = P.detect_and_align(build_detector("mtcnn"), _photo(), 256)
    assert aligned is not None
    return aligned


def test_protected_photo_changes_the_face_only(repo_run: tuple[int, Path], tree: Path) -> None:
    code, out = repo_run
    assert code == 0
    original, protected = _read(tree / "face.png"), _read(out / "face.png")
    assert protected.shape == original.shape
    (line,) = _records(out)
    x1, y1, x2, y2 = (round(v) for v in line["face_box"])
    inside = np.abs(protected[y1:y2, x1:x2].astype(int) - original[y1:y2, x1:x2]).mean()
    assert inside > 5.0
    for rows, cols in ((slice(0, 40), slice(0, 40)), (slice(-40, None), slice(-40, None))):
        np.testing.assert_array_equal(protected[rows, cols], original[rows, cols])
    changed = np.nonzero(np.any(protected != original, axis=-1))
    assert changed[0].min() >= y1 - 40 and changed[0].max() <= y2 + 40  # nothing changed far from the face
    assert _read(out / "faces" / "face.png").shape == (256, 256, 3)


def test_failures_list_every_input_not_protected(repo_run: tuple[int, Path]) -> None:
    _, out = repo_run
    with (out / P.FAILURES_CSV).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["file"]: row["reason"] for row in rows} == EXPECTED_FAILURES
    assert all(row["detail"] for row in rows)
    summary = json.loads((out / P.SUMMARY_JSON).read_text())
    assert summary["counts"]["inputs"] == 3 and summary["counts"]["protected"] == 1
    assert summary["counts"]["failures_by_reason"] == {
        "unreadable": 1,
        "not_image": 0,
        "no_face": 1,
        "error": 0,
    }
    assert summary["networks"] == P.RANDOM_NETWORKS


def test_secret_randomness_and_uncertified_repo_sampler(repo_run: tuple[int, Path]) -> None:
    _, out = repo_run
    (line,) = _records(out)
    assert line["file"] == "face.png" and line["sampler"] == "faceshield_repo" and line["certified"] is False
    assert line["release_index"] == 0 and line["releases_of_this_face"] == 1
    assert line["record"]["certified"] is False and line["record"]["epsilon_certified"] is None
    assert line["composed_record"]["releases_k"] == 1
    assert line["blend"] in P.BLENDS and line["networks"] == P.RANDOM_NETWORKS
    assert 0.0 <= line["theta"] <= math.pi
    for rng in (line["record"]["rng"], line["composed_record"]["rng"]):
        assert rng["secret"] is True and rng["seed"] is None
    summary = json.loads((out / P.SUMMARY_JSON).read_text())
    assert summary["certified"] is False
    assert summary["randomness"]["secret"] is True and summary["randomness"]["seed"] is None
    assert "CSPRNG" in summary["randomness"]["provenance"]


def test_repeated_releases_compose(purkayastha_run: tuple[int, Path, str], tree: Path) -> None:
    code, out, _ = purkayastha_run
    assert code == 0
    lines = _records(out)
    assert [line["release_index"] for line in lines] == [0, 1, 2]
    original = _read(tree / "face.png")
    faces = []
    for i, line in enumerate(lines):
        assert line["certified"] is True and line["releases_of_this_face"] == 3
        assert line["record"]["epsilon_certified"] == pytest.approx(30.0)
        assert line["composed_record"]["epsilon_certified"] == pytest.approx(90.0)
        assert line["composed_record"]["releases_k"] == 3
        assert line["record"]["rng"] == {"secret": False, "provenance": "deterministic seed 5", "seed": 5}
        assert line["output"] == f"face_r{i}.png" and line["face"] == f"faces/face_r{i}.png"
        assert _read(out / line["output"]).shape == original.shape
        faces.append(_read(out / line["face"]))
    assert not (out / "face.png").exists()
    assert len({line["theta"] for line in lines}) == 3  # independent perturbations
    assert not np.array_equal(faces[0], faces[1])
    summary = json.loads((out / P.SUMMARY_JSON).read_text())
    assert summary["randomness"] == {"secret": False, "provenance": "deterministic seed 5", "seed": 5}
    assert summary["counts"]["released_images"] == 3
    assert summary["composed_record_per_face"]["epsilon_certified"] == pytest.approx(90.0)


def test_seed_reproduces_the_releases(
    purkayastha_run: tuple[int, Path, str], tree: Path, tmp_path: Path
) -> None:
    _, first, _ = purkayastha_run
    again = tmp_path / "again"
    assert P.main([str(tree), str(again), *FAST, *SEEDED]) == 0
    assert [line["theta"] for line in _records(again)] == [line["theta"] for line in _records(first)]
    for i in range(3):
        np.testing.assert_array_equal(
            _read(again / f"faces/face_r{i}.png"), _read(first / f"faces/face_r{i}.png")
        )


def test_progress_lines_and_random_network_warning(purkayastha_run: tuple[int, Path, str]) -> None:
    _, _, stderr = purkayastha_run
    lines = stderr.strip().splitlines()
    assert lines[0].startswith("WARNING: --random-networks")
    progress = [line for line in lines if line.startswith("predict")]
    assert len(progress) == 3 and "step 3/3" in progress[-1] and "protected=1" in progress[-1]
    assert "failed=2" in progress[-1]


def test_aligned_crop_pastes_back_in_place(astronaut_face: P.AlignedFace) -> None:
    """Pasting the unprotected crop back changes almost nothing: the patch lands where it came from."""
    photo = _photo()
    pasted, blend = P.paste_back(photo, astronaut_face.crop, astronaut_face.matrix)
    assert blend == "seamless_clone"
    assert np.abs(pasted.astype(int) - photo).mean() < 0.5
    changed = np.any(pasted != photo, axis=-1)
    assert np.abs(pasted.astype(int) - photo)[changed].mean() < 5.0  # resampling only, no shift


def test_feathered_fallback_when_seamless_clone_fails(
    astronaut_face: P.AlignedFace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args, **kwargs):
        raise cv2.error("seamlessClone failed")

    monkeypatch.setattr(P.cv2, "seamlessClone", fail)
    photo = _photo()
    black = np.zeros_like(astronaut_face.crop)
    pasted, blend = P.paste_back(photo, black, astronaut_face.matrix)
    assert blend == "feathered_alpha"
    x1, y1, x2, y2 = (round(v) for v in astronaut_face.box)
    centre = pasted[(y1 + y2) // 2 - 5 : (y1 + y2) // 2 + 5, (x1 + x2) // 2 - 5 : (x1 + x2) // 2 + 5]
    assert centre.max() == 0  # fully replaced at the centre
    np.testing.assert_array_equal(pasted[:40, :40], photo[:40, :40])


def test_template_matches_the_encoder_crop() -> None:
    """FaceShield's template (ArcFace × 0.85) puts the ArcFace 112 box on the encoder's 37:475 crop."""
    points = P.faceshield_template(512).points
    start, stop = ENCODER_CROP
    np.testing.assert_allclose((points - start) * 112 / (stop - start), ARCFACE_112, atol=0.5)
    mask = P.clone_mask(256)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (20, 236, 40, 228)


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing_in", "input folder not found"),
        ("out_inside_in", "inside IN_DIR"),
        ("epsilon", "--epsilon"),
        ("sampler", "unknown sampler"),
        ("releases", "--releases-per-face"),
        ("size_with_released", "--random-networks only"),
        ("used_out", P.RECORDS_JSONL),
        ("checkpoint_missing", "checkpoint not found"),
        ("checkpoint_corrupt", "not a PyTorch checkpoint"),
    ],
)
def test_bad_arguments_exit_2(
    case: str,
    needle: str,
    tree: Path,
    repo_run: tuple[int, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(np.random.default_rng(2).bytes(300))
    argv = {
        "missing_in": [str(tmp_path / "missing"), str(out), *FAST],
        "out_inside_in": [str(tree), str(tree / "protected"), *FAST],
        "epsilon": [str(tree), str(out), *FAST, "--epsilon", "0"],
        "sampler": [str(tree), str(out), *FAST, "--sampler", "laplace"],
        "releases": [str(tree), str(out), *FAST, "--releases-per-face", "0"],
        "size_with_released": [str(tree), str(out), "--image-size", "256"],
        "used_out": [str(tree), str(repo_run[1]), *FAST],
        "checkpoint_missing": [str(tree), str(out), "--checkpoint", str(tmp_path / "none.ckpt")],
        "checkpoint_corrupt": [str(tree), str(out), "--checkpoint", str(corrupt)],
    }[case]
    assert P.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and len(err.splitlines()) == 1
    if case in ("missing_in", "out_inside_in"):
        assert str(Path(argv[0 if case == "missing_in" else 1])) in err
    assert not out.exists() and not (tree / "protected").exists()


def test_missing_released_weights_exit_2(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path / "no_weights"))
    assert P.main([str(tree), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert "not found" in err and str(tmp_path / "no_weights") in err
