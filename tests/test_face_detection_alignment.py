"""Face detection (MTCNN, dlib HOG/MMOD), landmark reduction and alignment (cv2 vs kornia vs references).

The one real face offline is ``skimage.data.astronaut()``; references are skimage's SimilarityTransform
(Umeyama), PIL's QUAD transform (the FFHQ recipe's own warp), ``dlib.get_face_chip`` and a re-detection on the
aligned crop.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.transform import SimilarityTransform

from src.face import alignment as A
from src.face.detection import DlibHOGDetector, DlibMMODDetector, MTCNNDetector, check_image, largest_face
from src.face.landmarks import landmarks5_from_dlib5, landmarks5_from_dlib68

# dlib HOG's box on the astronaut (measured with dlib's get_frontal_face_detector), xyxy, exclusive x2, y2.
ASTRONAUT_FACE = np.array([175.0, 76.0, 266.0, 167.0])
HEAD = (slice(0, 256), slice(96, 352))  # a 256² crop around the head


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """MTCNN is ~10× slower with 2 threads on a busy 2-core machine; restore afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def mtcnn() -> MTCNNDetector:
    return MTCNNDetector()


@pytest.fixture(scope="module")
def mtcnn_face(mtcnn: MTCNNDetector, astronaut: np.ndarray):
    faces = mtcnn.detect(astronaut)
    assert len(faces) == 1
    return faces[0]


@pytest.fixture(scope="module")
def hog_face(astronaut: np.ndarray):
    faces = DlibHOGDetector().detect(astronaut)  # upsample 1, min_score 0.5, 68-point landmarks
    assert len(faces) == 1, [(f.box, f.score) for f in faces]
    return faces[0]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    return float(inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter))


def _check_order(points: np.ndarray) -> None:
    """Our order: image-left eye, image-right eye, nose, image-left mouth, image-right mouth (upright
    face)."""
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


# ------------------------------------------------------------------------------------------------- detection


def test_mtcnn_finds_the_astronaut(mtcnn_face) -> None:
    assert mtcnn_face.score > 0.99 and mtcnn_face.source == "mtcnn"
    assert _iou(mtcnn_face.box, ASTRONAUT_FACE) > 0.5
    assert mtcnn_face.landmarks.shape == (5, 2) and mtcnn_face.landmarks.dtype == np.float64
    _check_order(mtcnn_face.landmarks)


def test_hog_finds_the_astronaut_and_agrees_with_mtcnn(hog_face, mtcnn_face) -> None:
    np.testing.assert_allclose(hog_face.box, ASTRONAUT_FACE, atol=1)
    assert hog_face.landmarks68.shape == (68, 2) and hog_face.dlib5.shape == (5, 2)
    assert not hog_face.mouth_estimated
    _check_order(hog_face.landmarks)
    distance = np.linalg.norm(hog_face.landmarks - mtcnn_face.landmarks, axis=1)
    assert distance.max() < 3.0, distance  # measured 0.5–2.0 px on a ~90 px face
    assert distance.mean() < 2.0, distance


def test_dlib_five_point_mapping(hog_face) -> None:
    # dlib's 5-point order: image-right eye corners, image-left eye corners, nose base.
    dlib5 = hog_face.dlib5
    assert dlib5[0, 0] > dlib5[1, 0] > dlib5[4, 0] > dlib5[3, 0] > dlib5[2, 0]
    ours = landmarks5_from_dlib5(dlib5)
    _check_order(ours)
    eyes = np.linalg.norm(ours[:2] - hog_face.landmarks[:2], axis=1)
    assert eyes.max() < 2.0, eyes  # corner midpoints vs the 6-point eye centres
    assert np.linalg.norm(ours[2] - hog_face.landmarks[2]) < 10  # nose base vs nose tip
    assert np.linalg.norm(ours[3:] - hog_face.landmarks[3:], axis=1).max() < 20  # estimated mouth (rough)


def test_landmarks_68_to_5_reduction() -> None:
    points = np.random.default_rng(0).uniform(0, 100, (3, 68, 2))
    five = landmarks5_from_dlib68(points)
    np.testing.assert_allclose(five[:, 0], points[:, 36:42].mean(1))
    np.testing.assert_allclose(five[:, 1], points[:, 42:48].mean(1))
    np.testing.assert_allclose(five[:, 2:], points[:, [30, 48, 54]])
    np.testing.assert_allclose(landmarks5_from_dlib68(torch.from_numpy(points)).numpy(), five)


def test_mmod_finds_the_astronaut(astronaut: np.ndarray, mtcnn_face) -> None:
    head = astronaut[HEAD]
    faces = DlibMMODDetector(landmarks="5").detect(head)  # 256² crop: ~1.5 s on CPU
    assert len(faces) == 1 and faces[0].mouth_estimated
    offset = np.array([HEAD[1].start, HEAD[0].start])
    assert _iou(faces[0].box + np.tile(offset, 2), ASTRONAUT_FACE) > 0.5
    eyes = np.linalg.norm(faces[0].landmarks[:2] + offset - mtcnn_face.landmarks[:2], axis=1)
    assert eyes.max() < 3.0, eyes


def test_no_face_and_batches(mtcnn: MTCNNDetector, astronaut: np.ndarray, mtcnn_face) -> None:
    head = np.ascontiguousarray(astronaut[HEAD])
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    flat = np.full((100, 150, 3), 128, np.uint8)
    results = mtcnn.detect_batch([head, noise, astronaut, flat, head[:, ::-1]])
    assert [len(r) for r in results] == [1, 0, 1, 0, 1]
    # Batched (equal sizes stacked) and single-image detection agree.
    np.testing.assert_allclose(results[2][0].landmarks, mtcnn_face.landmarks, atol=0.05)
    single = mtcnn.detect(head)[0]
    np.testing.assert_allclose(results[0][0].landmarks, single.landmarks, atol=0.05)
    assert mtcnn.detect_batch([]) == []
    assert largest_face(results[0] + results[2]) is results[2][0]


def test_bad_images_are_rejected(mtcnn: MTCNNDetector) -> None:
    with pytest.raises(ValueError, match="uint8"):
        mtcnn.detect(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        mtcnn.detect(np.zeros((32, 32), np.uint8))
    with pytest.raises(TypeError):
        check_image(torch.zeros(32, 32, 3))


# ------------------------------------------------------------------------------------------------- alignment


def _random_similarity(rng: np.random.Generator) -> np.ndarray:
    angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.3, 3.0)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[cos, -sin, rng.uniform(-50, 50)], [sin, cos, rng.uniform(-50, 50)]])


def test_similarity_matches_skimage_umeyama() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 200, (4, 5, 2))
    dst = np.stack([A.transform_points(s, _random_similarity(rng)) for s in src]) + rng.normal(
        0, 2, (4, 5, 2)
    )
    batched = A.estimate_similarity(src, dst).numpy()
    for i in range(4):
        reference = SimilarityTransform.from_estimate(src[i], dst[i])
        assert reference
        np.testing.assert_allclose(batched[i], reference.params[:2], atol=1e-9)
        np.testing.assert_allclose(A.estimate_similarity(src[i], dst[i])[0].numpy(), batched[i])


@pytest.mark.parametrize("name", ["arcface112", "arcface224", "ffhq5pt512"])
def test_landmarks_land_on_the_template(name: str) -> None:
    template = A.get_template(name)
    rng = np.random.default_rng(2)
    landmarks = A.transform_points(template.points, A.invert_affine(_random_similarity(rng)))
    matrix = A.alignment_matrix(landmarks, template)
    error = np.linalg.norm(A.transform_points(landmarks, matrix) - template.points, axis=1)
    assert error.max() < 1e-6  # "within 1 px", exactly for a similarity-transformed template
    assert A.fit_rmse(landmarks, matrix, template) < 1e-6


def test_aligned_crop_redetects_at_the_warped_landmarks(mtcnn: MTCNNDetector, astronaut, mtcnn_face) -> None:
    """Pixel convention end to end: MTCNN on the aligned crop finds the points where the matrix sends them."""
    for name in ("arcface112", "ffhq256"):
        crop, matrix = A.align_image(astronaut, mtcnn_face.landmarks, name)
        assert crop.shape == (A.get_template(name).size,) * 2 + (3,) and crop.dtype == np.uint8
        again = mtcnn.detect(crop)
        assert len(again) == 1
        distance = np.linalg.norm(
            again[0].landmarks - A.transform_points(mtcnn_face.landmarks, matrix), axis=1
        )
        assert distance.max() < 2.5 and distance.mean() < 1.5, (name, distance)  # measured ≤ 1.9 / ≤ 1.0
    # A real face fits the ArcFace template only up to its own shape (smile, pose): the least-squares
    # residual.
    matrix = A.alignment_matrix(mtcnn_face.landmarks, "arcface112")
    reference = SimilarityTransform.from_estimate(mtcnn_face.landmarks, A.ARCFACE_112)
    np.testing.assert_allclose(matrix, reference.params[:2], atol=1e-9)
    assert A.fit_rmse(mtcnn_face.landmarks, matrix, "arcface112") < 8


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255


def _kornia_vs_cv2(images: list[np.ndarray], landmarks: list[np.ndarray], template: str) -> float:
    crops, matrices = A.align_batch(
        torch.stack([_to_tensor(i) for i in images]), np.stack(landmarks), template
    )
    worst = 0.0
    for image, points, crop, matrix in zip(images, landmarks, crops, matrices, strict=True):
        reference, reference_matrix = A.align_image(image, points, template)
        np.testing.assert_allclose(matrix.numpy(), reference_matrix, atol=1e-9)
        diff = np.abs(crop.permute(1, 2, 0).numpy() * 255 - reference)
        assert diff.mean() < 0.35, (template, diff.mean())
        worst = max(worst, float(diff.max()))
    return worst


def test_kornia_and_cv2_alignment_agree(astronaut, mtcnn_face, hog_face) -> None:
    shifted = mtcnn_face.landmarks + np.array([3.0, -2.0])
    for template in ("arcface112", "arcface224", "ffhq256", "ffhq5pt512"):
        worst = _kornia_vs_cv2([astronaut, astronaut], [mtcnn_face.landmarks, shifted], template)
        assert worst <= 1.0, (template, worst)  # measured 0.5: cv2's uint8 rounding only
    assert _kornia_vs_cv2([astronaut], [hog_face.dlib5], "dlib150") <= 1.0
    # The quad leaves a tight crop: reflect border (FFHQ's default here) in both paths.
    tight = astronaut[60:200, 150:290]
    assert _kornia_vs_cv2([tight], [mtcnn_face.landmarks - [150, 60]], "ffhq256") <= 1.0
    # A 4× larger photo: both paths box-shrink by the same factor before warping.
    big = np.ascontiguousarray(np.repeat(np.repeat(astronaut, 4, 0), 4, 1))
    big_points = mtcnn_face.landmarks * 4 + 1.5
    assert A.shrink_factor(A.alignment_matrix(big_points, "arcface112")) >= 2
    assert _kornia_vs_cv2([big], [big_points], "arcface112") <= 1.0
    # List input (different sizes) goes image by image.
    crops, _ = A.align_batch(
        [_to_tensor(astronaut), _to_tensor(tight)], [shifted, shifted - [150, 60]], "arcface112"
    )
    assert crops.shape == (2, 3, 112, 112)


def test_ffhq_alignment_matches_pil_quad_reference(astronaut, mtcnn_face, hog_face) -> None:
    quad = A.ffhq_quad(mtcnn_face.landmarks)[0].numpy()
    # FFHQ's own warp: PIL QUAD of quad + 0.5 (no supersampling here: the face is upscaled).
    reference = Image.fromarray(astronaut).transform(
        (256, 256), Image.QUAD, (quad + 0.5).flatten(), Image.BILINEAR
    )
    ours, _ = A.align_image(astronaut, mtcnn_face.landmarks, "ffhq256")
    diff = np.abs(np.asarray(reference, dtype=np.float64) - ours)
    assert (
        ours.shape == (256, 256, 3) and diff.max() <= 1.0 and diff.mean() < 0.6
    )  # measured max 1, mean 0.49
    # The 68-point quad is the 5-point quad (eye centres and mouth corners are the same points).
    np.testing.assert_allclose(
        A.ffhq_quad(hog_face.landmarks68).numpy(), A.ffhq_quad(hog_face.landmarks).numpy(), atol=1e-9
    )


def test_ffhq_landmark_placement() -> None:
    # Symmetric frontal face: d_ee = (40, 0), d_em = (0, 40) → x = (80, 0), y = (0, 80), centre (120, 104).
    face = np.array([[100.0, 100.0], [140.0, 100.0], [120.0, 120.0], [105.0, 140.0], [135.0, 140.0]])
    size = 256
    warped = A.transform_points(face, A.alignment_matrix(face, f"ffhq{size}"))
    scale = size / 160.0  # quad side 2·|x| = 160 image px
    expected_eye_y = (100 - 24) * scale - 0.5  # top edge at y = 104 − 80 = 24, pixel centres at +0.5
    np.testing.assert_allclose(warped[:2, 1], expected_eye_y, atol=1e-9)
    np.testing.assert_allclose(warped[:2, 0], [(100 - 40) * scale - 0.5, (140 - 40) * scale - 0.5], atol=1e-9)
    np.testing.assert_allclose(warped[[0, 1], 0].mean(), (size - 1) / 2, atol=1e-9)  # centred horizontally
    # Rotating and scaling the face in the image does not move it in the output.
    similarity = np.array([[0.8, -0.9, 30.0], [0.9, 0.8, -12.0]])
    moved = A.transform_points(face, similarity)
    np.testing.assert_allclose(
        A.transform_points(moved, A.alignment_matrix(moved, "ffhq256")), warped, atol=1e-9
    )


def test_dlib_chip_matches_dlib(astronaut, hog_face) -> None:
    chip, _ = A.align_image(astronaut, hog_face.dlib5, "dlib150")
    reference = A.dlib_face_chip(astronaut, hog_face.dlib5, 150, 0.25)
    diff = np.abs(chip.astype(np.float64) - reference)
    assert chip.shape == reference.shape == (150, 150, 3)
    assert diff.max() <= 2 and diff.mean() < 0.75, (diff.max(), diff.mean())  # measured max 1, mean 0.49


def test_align_batch_is_differentiable(astronaut, mtcnn_face) -> None:
    images = _to_tensor(astronaut)[None].requires_grad_(True)
    for template in ("arcface112", "ffhq256"):
        landmarks = torch.tensor(mtcnn_face.landmarks[None], requires_grad=True)
        crops, _ = A.align_batch(images, landmarks, template)
        crops.mean().backward()
        assert images.grad is not None and images.grad.abs().sum() > 0
        assert landmarks.grad is not None and torch.isfinite(landmarks.grad).all()
        assert landmarks.grad.abs().sum() > 0
        images.grad = None


def test_templates() -> None:
    np.testing.assert_allclose(A.get_template("arcface112").points, A.ARCFACE_112)
    np.testing.assert_allclose(A.get_template("arcface224").points, A.ARCFACE_112 * 2)
    np.testing.assert_allclose(A.get_template("ffhq5pt256").points, A.FFHQ_5PT_512 / 2)
    assert A.get_template("ffhq256").kind == "ffhq" and A.get_template("ffhq").size == 1024
    assert A.get_template("dlib").size == 150 and A.get_template("dlib150").kind == "dlib_chip"
    assert A.get_template("arcface112", size=128).size == 128
    for bad in ("vggface112", "ffhq2", "arcface_112"):
        with pytest.raises(ValueError, match="template"):
            A.get_template(bad)
