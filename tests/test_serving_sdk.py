"""The SDK's shared parts: inputs decoded by content within limits, metadata-free outputs, face squares cut
and pasted back exactly, batching and videos (with the obfuscation baselines, which need no checkpoint)."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.datamodules.components.synthetic_face_renderer import render_synthetic_face
from src.inference.faces import FaceRegion, crop_faces, exact_region, paste_faces, square_region
from src.inference.inputs import as_image, as_images, decode_image, encode_image, to_tensor
from src.inference.methods import FaceCrop
from src.sdk import InputError, InputLimits, load
from src.serving.video import VideoWriter, read_video_frames

SIZE = 160


def face(identity: int = 1, size: int = SIZE) -> np.ndarray:
    return render_synthetic_face(0, identity, 0, size)


def jpeg_with_exif(image: np.ndarray, orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (48.0, 51.0, 24.0)}  # GPS latitude
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", exif=exif, quality=95)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ inputs


def test_images_are_decoded_by_content_not_by_name(tmp_path: Path) -> None:
    png = encode_image(face())
    misnamed = tmp_path / "photo.jpg"
    misnamed.write_bytes(png)
    assert np.array_equal(as_image(misnamed), face())  # PNG content under a .jpg name: fine
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    with pytest.raises(InputError, match=r"notes\.jpg: not an image"):
        as_image(text)
    with pytest.raises(InputError, match="corrupt image"):
        decode_image(png[: len(png) // 2], "half.png")
    with pytest.raises(InputError, match="the file is empty"):
        decode_image(b"", "empty.png")
    gif = io.BytesIO()
    Image.fromarray(face()).save(gif, format="GIF")
    with pytest.raises(InputError, match="a GIF image is not accepted"):
        decode_image(gif.getvalue(), "anim.gif")


def test_limits_refuse_large_files_and_pixel_counts_before_decoding() -> None:
    data = encode_image(face())
    with pytest.raises(InputError, match="bytes is more than the limit of 100 bytes"):
        decode_image(data, "a.png", InputLimits(max_bytes=100))
    with pytest.raises(InputError, match=r"160x160 = 25,600 pixels is more than the limit of 10,000"):
        decode_image(data, "a.png", InputLimits(max_pixels=10_000))
    with pytest.raises(InputError, match="smaller than 16 pixels"):
        as_image(np.zeros((8, 40, 3), np.uint8))


def test_exif_orientation_is_applied_and_no_metadata_survives() -> None:
    image = face()
    rotated = decode_image(jpeg_with_exif(image, orientation=6), "phone.jpg")  # 6: rotate 90° clockwise
    assert rotated.shape == image.shape
    assert np.abs(rotated.astype(int) - np.rot90(image, k=-1).astype(int)).mean() < 3  # JPEG loss only
    for fmt in ("PNG", "JPEG"):
        reopened = Image.open(io.BytesIO(encode_image(rotated, fmt)))
        assert not reopened.getexif(), fmt
        assert not {"exif", "icc_profile", "dpi", "comment"} & set(reopened.info), (fmt, reopened.info)


def test_every_input_kind_gives_the_same_pixels(tmp_path: Path) -> None:
    image = face()
    path = tmp_path / "a.png"
    path.write_bytes(encode_image(image))
    tensor = to_tensor(image)
    kinds = [path, str(path), path.read_bytes(), Image.fromarray(image), image, image / 255.0, tensor]
    for kind in kinds:
        assert np.array_equal(as_image(kind), image), type(kind)
    assert len(as_images(torch.stack([tensor, tensor]))) == 2
    with pytest.raises(InputError, match=r"must be \[H, W, 3\]"):
        as_image(np.zeros((20, 20, 5), np.uint8))
    with pytest.raises(InputError, match=r"float image must hold finite values in \[0, 1\]"):
        as_image(np.full((20, 20, 3), 2.0))
    with pytest.raises(InputError, match="cannot read a dict"):
        as_image({})


# ------------------------------------------------------------------------------------------------- faces


def _reference_cut(image: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
    """The square by NumPy's edge padding, an independent path to the same pixels."""
    pad = side
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return padded[top + pad : top + pad + side, left + pad : left + pad + side]


@pytest.mark.parametrize(
    "left, top", [(40, 30), (-12, 5), (100, 120)]
)  # inside, off the left, off the corner
def test_crop_equals_an_edge_padded_slice(left: int, top: int) -> None:
    image = face()
    region = FaceRegion((0, 0, 1, 1), 1.0, left, top, 64)
    crop = crop_faces(to_tensor(image), [region], 64)[0]
    expected = to_tensor(_reference_cut(image, left, top, 64))
    assert torch.allclose(crop, expected, atol=1e-6)


def test_paste_back_touches_only_the_face_square_and_round_trips() -> None:
    image = to_tensor(face())
    region = FaceRegion((0, 0, 1, 1), 1.0, 40, 30, 64)
    crop = crop_faces(image, [region], 64)
    assert torch.allclose(paste_faces(image, crop, [region], feather=0.1), image, atol=1e-6)  # identity
    pasted = paste_faces(image, torch.zeros_like(crop), [region], feather=0.1)
    outside = torch.ones(image.shape[1:], dtype=torch.bool)
    outside[30:94, 40:104] = False
    assert torch.equal(pasted[:, outside], image[:, outside])
    assert pasted[:, 62, 72].abs().max() == 0  # the centre is the pasted face
    assert 0 < pasted[:, 30, 72].mean() < image[:, 30, 72].mean()  # the feathered edge mixes both


@pytest.mark.parametrize("left, top, side", [(40, 30, 70), (-20, 100, 130), (0, 0, -1)])
def test_exact_squares_give_the_pasted_face_back_pixel_for_pixel(left: int, top: int, side: int) -> None:
    image = to_tensor(face())
    region = FaceRegion((0, 0, 1, 1), 1.0, left, top, side)
    fitted = exact_region(region, SIZE, SIZE, 32)
    assert fitted is not None and fitted.side % 32 == 0 and fitted.side > 0
    assert 0 <= fitted.left <= SIZE - fitted.side and 0 <= fitted.top <= SIZE - fitted.side
    produced = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    produced = produced.mul(255).round().div(255)  # as a method's output saved to 8 bits
    pasted = paste_faces(image, produced, [fitted], feather=0.2, exact=True)
    assert torch.allclose(crop_faces(pasted, [fitted], 32, exact=True), produced, atol=1e-6)
    expected = torch.nn.functional.avg_pool2d(image[None], fitted.side // 32)  # independent reduction
    start = (fitted.top // (fitted.side // 32), fitted.left // (fitted.side // 32))
    if fitted.left % (fitted.side // 32) == 0 and fitted.top % (fitted.side // 32) == 0:
        window = expected[0, :, start[0] : start[0] + 32, start[1] : start[1] + 32]
        assert torch.allclose(crop_faces(image, [fitted], 32, exact=True)[0], window, atol=1e-6)
    assert exact_region(region, 20, 20, 32) is None  # smaller than the method's input: resized instead


def test_square_region_follows_the_crop_settings() -> None:
    class Detection:
        box = np.array([50.0, 40.0, 90.0, 100.0])  # 40 wide, 60 high: larger side 60
        score = 0.99
        landmarks = np.zeros((5, 2))

    region = square_region(Detection(), FaceCrop(scale=1.5, shift=-0.1))  # type: ignore[arg-type]
    assert region.side == 90
    assert (region.left, region.top) == (25, 70 - 6 - 45)


# --------------------------------------------------------------------------------------------------- SDK


def test_batches_keep_order_and_report_each_face() -> None:
    pixelate = load("pixelate", batch_size=1)
    images = [face(1), face(3)]
    results = pixelate.protect(images)
    assert [r.source for r in results] == ["image 0", "image 1"]
    for image, result in zip(images, results, strict=True):
        assert len(result.faces) == 1 and result.faces[0].score > 0.9
        again = pixelate.protect(image, regions=[result.faces])[0]
        assert np.array_equal(again.image, result.image)  # the same squares, deterministic obfuscation


def test_noise_is_fresh_on_every_call() -> None:
    noise = load("noise")
    first, second = (noise.protect(face(), faces="whole")[0].image for _ in range(2))
    assert not np.array_equal(first, second)


def test_video_is_protected_frame_by_frame(tmp_path: Path) -> None:
    source, target = tmp_path / "clip.mp4", tmp_path / "out" / "clip.mp4"
    with VideoWriter(source, Fraction(10)) as writer:
        writer.write(face(1))
        writer.write(np.full((SIZE, SIZE, 3), 90, np.uint8))  # a frame without a face
        writer.write(face(2))
    progress: list[int] = []
    result = load("mask").protect_video(source, target, progress=progress.append)
    assert (result.frames, result.frames_without_face, progress) == (3, [1], [1, 2, 3])
    frames = list(read_video_frames(target))
    originals = list(read_video_frames(source))
    assert len(frames) == 3
    assert np.abs(frames[0].astype(int) - originals[0].astype(int)).mean() > 10  # masked
    assert np.abs(frames[1].astype(int) - originals[1].astype(int)).mean() < 2  # untouched (codec noise)
    with pytest.raises(InputError, match="more than 2 frames"):
        load("mask", limits=InputLimits(max_frames=2)).protect_video(source, tmp_path / "x.mp4")
