"""The web portal's REST API and pages with FastAPI's test client: every endpoint, every kind of bad upload,
passwords, tokens, CORS, the bounded worker pool, metadata stripping and per-request scratch folders.

Methods that need no training (blur, ...) are served as they are; a keyed reversible method, a slow method
and a detector are tiny fakes registered for this module (a monkeypatched ``METHODS``), since which trained
methods exist depends on the papers. A real reversible method, when one is registered, is checked too.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from torch import Tensor

from src.datamodules.components.synthetic_face_renderer import render_synthetic_face
from src.inference.inputs import InputLimits
from src.inference.methods import DetectionMethod, FaceCrop, ProtectionMethod
from src.papers.registry import METHODS, MethodEntry, discover
from src.serving.catalog import Catalog, UnknownMethodError, find_run_checkpoints
from src.serving.portal import PortalSettings, create_app
from src.serving.portal.__main__ import main as portal_main
from src.serving.portal.__main__ import parse_args, settings_from_args
from src.serving.portal.security import redact_url
from src.serving.portal.server import running
from src.serving.portal.settings import ExposureError, check_exposure, is_loopback
from src.serving.video import VideoWriter, read_video_frames
from src.utils.checkpoint_files import CHECKPOINT_FORMAT, RECORD_KEY, installed_lightning_version

PAPER = "obfuscation_baselines"  # fakes join a registered paper (the registry checks it)
SIZE = 160
PASSWORD = "correct horse battery staple"
TOKEN = "test-token-0123456789abcdef"


# --------------------------------------------------------------------------------------------- fakes


def _key(password: str, size: int) -> Tensor:
    """A per-pixel offset (multiples of 1/255) drawn from the password."""
    seed = int.from_bytes(hashlib.sha256(password.encode()).digest()[:8], "little")
    return torch.randint(0, 256, (3, size, size), generator=torch.Generator().manual_seed(seed)).float()


class KeyedShift(ProtectionMethod):
    """Reversible and keyed: adds a password-derived offset modulo 256 (exact at the method's face size)."""

    reversible = True
    needs_password = True

    def __init__(self) -> None:
        super().__init__("fake_keyed", PAPER, SIZE, crop=FaceCrop(feather=0.0))

    def _shift(self, faces: Tensor, password: str | None, sign: int) -> Tensor:
        assert password
        levels = (faces * 255).round() + sign * _key(password, faces.shape[-1])
        return torch.remainder(levels, 256) / 255

    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        return self._shift(faces, password, 1)

    def recover_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        return self._shift(faces, password, -1)


class SlowInvert(ProtectionMethod):
    """Inverts faces after waiting for :data:`RELEASE` (fills the worker pool); notes the scratch folders."""

    RELEASE = threading.Event()
    STARTED = threading.Event()
    seen: list[list[str]] = []  # noqa: RUF012
    scratch_root: Path | None = None

    def __init__(self) -> None:
        super().__init__("fake_slow", PAPER, 32)

    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        if self.scratch_root is not None:
            self.seen.append(sorted(p.name for p in self.scratch_root.rglob("*")))
        SlowInvert.STARTED.set()
        SlowInvert.RELEASE.wait(20)
        return 1 - faces


class MeanDetector(DetectionMethod):
    """Fake probability = mean brightness of the face crop."""

    def __init__(self) -> None:
        super().__init__("fake_detector", PAPER, 32)

    def detect_faces(self, faces: Tensor) -> Tensor:
        return faces.mean(dim=(1, 2, 3))


FAKES = {"fake_keyed": KeyedShift, "fake_slow": SlowInvert, "fake_detector": MeanDetector}


def _entry(name: str) -> MethodEntry:
    cls = FAKES[name]
    kind = "detect" if issubclass(cls, DetectionMethod) else "protect"
    keyed = getattr(cls, "needs_password", False)
    return MethodEntry(
        name,
        PAPER,
        kind,
        lambda checkpoint, device="cpu", **_: cls(),
        f"test fake {name}",
        False,
        reversible=getattr(cls, "reversible", False),
        needs_password=keyed,
    )


@pytest.fixture(scope="module")
def catalog() -> Iterator[Catalog]:
    """The real untrained methods plus the fakes, shared by the module (one face detector)."""
    discover()
    with pytest.MonkeyPatch.context() as patch:
        for name in FAKES:
            patch.setitem(METHODS, name, _entry(name))
        yield Catalog()


@contextmanager
def client(catalog: Catalog, **settings: Any) -> Iterator[TestClient]:
    app = create_app(PortalSettings(catalog=catalog, **settings))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def api(catalog: Catalog, tmp_path: Path) -> Iterator[TestClient]:
    with client(catalog, temp_dir=tmp_path / "scratch") as test_client:
        yield test_client


# --------------------------------------------------------------------------------------------- inputs


def photo(identity: int = 1) -> np.ndarray:
    """A SyntheticFaces photo; MTCNN finds the face of identity 1 and none in identity 0."""
    return render_synthetic_face(0, identity, 0, SIZE)


def encoded(image: np.ndarray, fmt: str = "PNG", exif: bool = False) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, Any] = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "SecretCam"  # Make
        data[0x0131] = "TrackerSoft 1.0"  # Software
        options["exif"] = data.tobytes()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def upload(data: bytes, name: str = "photo.png", **fields: str) -> dict[str, Any]:
    return {"files": {"file": (name, data, "application/octet-stream")}, "data": fields}


def data_url_bytes(url: str) -> bytes:
    head, payload = url.split(",", 1)
    assert head.endswith(";base64")
    return base64.b64decode(payload)


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def make_video(path: Path, frames: int = 3) -> Path:
    with VideoWriter(path, 5) as writer:
        for index in range(frames):
            writer.write(render_synthetic_face(0, 1, index, SIZE))
    return path


# --------------------------------------------------------------------------------------------- listing, pages


def test_methods_health_and_one_method(api: TestClient) -> None:
    listing = api.get("/api/methods").json()
    methods = {m["id"]: m for m in listing["methods"]}
    assert {"blur", "pixelate", "fake_keyed", "fake_detector"} <= set(methods)
    assert methods["blur"]["kind"] == "protect" and not methods["blur"]["trained"]
    assert methods["fake_detector"]["kind"] == "detect"
    assert listing["limits"]["max_bytes"] == InputLimits().max_bytes
    keyed = api.get("/api/methods/fake_keyed").json()
    assert keyed["loaded"] and keyed["needs_password"] and keyed["reversible"]
    blur = api.get("/api/methods/blur").json()
    assert blur["face_size"] == 128 and not blur["needs_password"] and not blur["reversible"]
    missing = api.get("/api/methods/no_such_method")
    assert missing.status_code == 404 and "unknown method 'no_such_method'" in missing.json()["error"]
    health = api.get("/api/health").json()
    assert health["status"] == "ok" and health["methods"] == len(methods) and health["loaded"] >= 2
    assert health["pool"] == {"workers": 2, "queue": 4, "running": 0, "waiting": 0}
    assert api.get("/api/nothing").json() == {"error": "Not Found"}


def test_pages_are_self_contained(api: TestClient) -> None:
    for path, marker in (("/", 'id="protect"'), ("/detect", 'id="detect"')):
        page = api.get(path)
        assert page.status_code == 200 and marker in page.text and 'id="method"' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
    for asset in ("portal.js", "protect.js", "detect.js", "portal.css"):
        assert api.get(f"/static/{asset}").status_code == 200
    spec = api.get("/openapi.json").json()
    assert {"/api/protect", "/api/recover", "/api/detect", "/api/methods", "/api/health"} <= set(
        spec["paths"]
    )
    body = spec["paths"]["/api/protect"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["file"]["format"] == "binary" and "password" in body["properties"]
    assert api.get("/docs").status_code == 200


# --------------------------------------------------------------------------------------------- protect


def test_protect_returns_json_data_url_and_file(api: TestClient) -> None:
    image = photo()
    answer = api.post("/api/protect", **upload(encoded(image), method="blur"))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["media_type"] == "image/png" and result["filename"] == "photo_protect.png"
    assert result["privacy"]["method"] == "blur" and len(result["faces"]) == 1
    protected = decoded(data_url_bytes(result["data_url"]))
    assert protected.shape == image.shape and np.abs(protected.astype(int) - image).mean() > 1
    raw = api.post("/api/protect?download=1", **upload(encoded(image), method="blur"))
    assert raw.headers["content-type"] == "image/png" and raw.content.startswith(b"\x89PNG")
    assert "attachment" in raw.headers["content-disposition"]
    assert json.loads(raw.headers["x-privacy-record"])["faces"][0]["side"] > 0
    accept = api.post("/api/protect", headers={"Accept": "image/*"}, **upload(encoded(image), method="blur"))
    assert accept.headers["content-type"] == "image/png"
    assert answer.headers["cache-control"] == "no-store"


def test_jpeg_answer_has_no_exif(api: TestClient) -> None:
    jpeg = encoded(photo(), "JPEG", exif=True)
    assert Image.open(io.BytesIO(jpeg)).getexif()[0x010F] == "SecretCam"
    result = api.post("/api/protect", **upload(jpeg, "holiday.jpg", method="pixelate")).json()
    assert result["media_type"] == "image/jpeg"
    raw = api.post("/api/protect?download=1", **upload(jpeg, "holiday.jpg", method="pixelate")).content
    for data in (data_url_bytes(result["data_url"]), raw):
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG" and not image.getexif() and "exif" not in image.info
        assert b"Exif" not in data and b"SecretCam" not in data and b"TrackerSoft" not in data


def test_protect_and_detect_video(api: TestClient, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4").read_bytes()
    result = api.post("/api/protect", **upload(video, "clip.mp4", method="blur")).json()
    assert result["kind"] == "video" and result["media_type"] == "video/mp4" and result["frames"] == 3
    out = tmp_path / "out.mp4"
    out.write_bytes(data_url_bytes(result["data_url"]))
    assert len(list(read_video_frames(out))) == 3
    raw = api.post("/api/protect?download=1", **upload(video, "clip.mp4", method="blur"))
    assert raw.headers["content-type"] == "video/mp4" and raw.content[4:8] == b"ftyp"
    detection = api.post("/api/detect", **upload(video, "clip.mp4", method="fake_detector")).json()
    assert detection["kind"] == "video" and detection["frames"] == 3 and len(detection["per_frame"]) == 3
    assert 0 <= detection["score"] <= 1 and "tmp" not in json.dumps(detection)


def test_detect_image_scores_each_face(api: TestClient) -> None:
    answer = api.post("/api/detect", **upload(encoded(photo()), method="fake_detector")).json()
    assert answer["kind"] == "image" and (answer["width"], answer["height"]) == (SIZE, SIZE)
    (face,) = answer["faces"]
    assert (
        len(face["box"]) == 4
        and 0 <= face["fake_probability"] <= 1
        and answer["score"] == pytest.approx(face["fake_probability"], abs=1e-6)
    )
    empty = api.post("/api/detect", **upload(encoded(photo(0)), method="fake_detector")).json()
    assert empty["faces"] == [] and empty["score"] is None
    wrong = api.post("/api/detect", **upload(encoded(photo()), method="blur"))
    assert wrong.status_code == 400 and "/api/protect" in wrong.json()["error"]


# --------------------------------------------------------------------------------------------- bad uploads


def test_bad_uploads_are_named(api: TestClient, catalog: Catalog, tmp_path: Path) -> None:
    png = encoded(photo())
    jpeg = encoded(photo(), "JPEG")
    cases = [
        (
            upload(b"this is a text file, not a photo\n", "photo.jpg", method="blur"),
            422,
            "not an image or a video",
        ),
        (upload(jpeg[: len(jpeg) // 2], "cut.jpg", method="blur"), 422, "corrupt image"),
        (upload(encoded(photo(0)), "nobody.png", method="blur"), 422, "no face found"),
        (upload(encoded(np.full((SIZE, SIZE, 3), 90, np.uint8)), method="blur"), 422, "no face found"),
        (upload(b"", "empty.png", method="blur"), 422, "empty"),
        (upload(png, method="no_such_method"), 404, "unknown method"),
        (upload(png), 422, "no method"),
        (upload(png, method="fake_detector"), 400, "/api/detect"),
        (upload(png, method="blur", faces="sideways"), 422, "faces must be one of"),
        (upload(png, method="blur", colour="red"), 422, "unexpected form field 'colour'"),
        (upload(png, method="blur", password="hunter2-secret"), 400, "takes no password"),
        (upload(png, method="fake_keyed"), 400, "needs a password"),
        (upload(png, method="blur", regions="[1, 2]"), 400, "regions"),
        ({"data": {"method": "blur"}}, 415, "multipart/form-data"),
        ({"json": {"method": "blur"}}, 415, "multipart/form-data"),
    ]
    for request, status, words in cases:
        answer = api.post("/api/protect", **request)
        assert answer.status_code == status, (words, answer.text)
        assert words in answer.json()["error"], answer.json()
    recover = api.post("/api/recover", **upload(png, method="blur"))
    assert recover.status_code == 400 and "not reversible" in recover.json()["error"]
    assert "hunter2-secret" not in json.dumps([api.get("/api/health").json()])
    assert not list((tmp_path / "scratch").iterdir())  # no failure left a file behind


def test_size_pixel_and_frame_limits(catalog: Catalog, tmp_path: Path) -> None:
    png = encoded(photo())
    with client(catalog, limits=InputLimits(max_bytes=len(png) - 1)) as small:
        answer = small.post("/api/protect", **upload(png, method="blur"))
        assert answer.status_code == 413 and "limit" in answer.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed body is counted
            yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
            for _ in range(20):
                yield b"\0" * 8192

        streamed = small.post(
            "/api/protect", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"}
        )
        assert streamed.status_code == 413, streamed.text
    with client(catalog, limits=InputLimits(max_pixels=SIZE * SIZE - 1)) as few:
        answer = few.post("/api/protect", **upload(png, method="blur"))
        assert answer.status_code == 413 and "pixels" in answer.json()["error"]
    video = make_video(tmp_path / "clip.mp4").read_bytes()
    with client(catalog, limits=InputLimits(max_frames=2)) as short:
        answer = short.post("/api/detect", **upload(video, "clip.mp4", method="fake_detector"))
        assert answer.status_code == 413 and "3 frames" in answer.json()["error"]


# --------------------------------------------------------------------------------------------- passwords


def _round_trip(api: TestClient, method: str, image: np.ndarray, password: str, faces: str) -> dict[str, Any]:
    protected = api.post(
        "/api/protect", **upload(encoded(image), method=method, password=password, faces=faces)
    )
    assert protected.status_code == 200, protected.text
    protected_bytes = data_url_bytes(protected.json()["data_url"])
    regions = json.dumps(protected.json()["faces"])
    right = api.post(
        "/api/recover",
        **upload(protected_bytes, "p.png", method=method, password=password, faces=faces, regions=regions),
    )
    wrong = api.post(
        "/api/recover",
        **upload(
            protected_bytes, "p.png", method=method, password="not the password", faces=faces, regions=regions
        ),
    )
    assert right.status_code == 200 and wrong.status_code == 200, (right.text, wrong.text)
    return {
        "protected": decoded(protected_bytes),
        "right": decoded(data_url_bytes(right.json()["data_url"])),
        "wrong": decoded(data_url_bytes(wrong.json()["data_url"])),
        "texts": protected.text + right.text + wrong.text,
    }


def test_wrong_password_recovers_a_different_image(api: TestClient) -> None:
    """A wrong password cannot be detected (by design): recovery answers with an image unlike the original."""
    image = photo()
    result = _round_trip(api, "fake_keyed", image, PASSWORD, "whole")
    assert np.abs(result["protected"].astype(int) - image).mean() > 20
    assert np.array_equal(result["right"], image)
    assert np.abs(result["wrong"].astype(int) - image).mean() > 20
    assert PASSWORD not in result["texts"]
    query = api.post(f"/api/recover?password={PASSWORD}", **upload(encoded(image), method="fake_keyed"))
    assert query.status_code == 400 and "never be sent in the URL" in query.json()["error"]


def _keyed_reversible(entry: MethodEntry) -> bool:
    """Whether the module that builds ``entry`` defines a reversible, password-keyed protection method (a
    cheap look, so that only such a method gets a tiny checkpoint built)."""
    module = sys.modules[entry.build.__module__]
    return any(
        isinstance(value, type)
        and issubclass(value, ProtectionMethod)
        and value.__module__ == module.__name__
        and value.reversible
        and value.needs_password
        for value in vars(module).values()
    )


def test_registered_reversible_method(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The same check with a real trained reversible method (tiny, untrained), when a paper registers one."""
    discover()
    keyed = sorted(
        name
        for name, entry in METHODS.items()
        if entry.needs_checkpoint and entry.kind == "protect" and _keyed_reversible(entry)
    )
    if not keyed:
        pytest.skip("no reversible, keyed trained method is registered (the fake one covers the API)")
    from tests.test_serving_methods import write_tiny_checkpoint

    name = keyed[0]
    try:
        ckpt = write_tiny_checkpoint(name, tmp_path, {})
    except Exception:  # its experiment leaves a recognizer checkpoint open: train the tiny one
        ckpt = write_tiny_checkpoint(name, tmp_path, request.getfixturevalue("required_values"))
    catalog = Catalog(checkpoints=[(name, ckpt)], untrained=False)
    (entry,) = catalog.entries()
    image = photo()
    with client(catalog) as api:
        assert api.get(f"/api/methods/{entry.id}").json()["reversible"]
        result = _round_trip(api, entry.id, image, PASSWORD, "whole")
    # untrained tiny networks recover nothing well: only that another password gives another image is checked
    assert not np.array_equal(result["wrong"], result["right"])
    assert PASSWORD not in result["texts"]
    assert ckpt.name in result["texts"] and str(tmp_path) not in result["texts"]  # no server path shown


def test_passwords_never_logged(api: TestClient, catalog: Catalog, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "s3cret-password-in-form"
    api.post("/api/protect", **upload(encoded(photo()), method="fake_keyed", password=secret, faces="whole"))
    api.post("/api/protect", **upload(b"junk", method="fake_keyed", password=secret))
    app = create_app(PortalSettings(catalog=catalog))
    with running(app, access_log=True, log_level="info") as url:
        answer = httpx.post(f"{url}/api/protect?password={secret}&x=1", files={"file": ("a.png", b"x")})
        assert answer.status_code == 400
        ok = httpx.post(
            f"{url}/api/protect",
            files={"file": ("a.png", encoded(photo()))},
            data={"method": "fake_keyed", "password": secret, "faces": "whole"},
        )
        assert ok.status_code == 200 and secret not in ok.text
    # the server's lines (the client's own httpx log shows the URL it was given: why passwords stay out of it)
    server = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "/api/protect?password=[redacted]&x=1" in server  # uvicorn's access line, redacted
    assert secret not in server
    assert (
        redact_url("GET /a?token=abc&password=p&keep=1")
        == "GET /a?token=[redacted]&password=[redacted]&keep=1"
    )


# --------------------------------------------------------------------------------------------- exposure


def test_tokens_guard_every_api_call(catalog: Catalog) -> None:
    with client(catalog, tokens=(TOKEN,)) as api:
        for path in ("/api/methods", "/api/health"):
            refused = api.get(path)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            assert "API token" in refused.json()["error"]
            wrong = api.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"})
            assert wrong.status_code == 401
            assert api.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        unauthorised = api.post("/api/protect", **upload(encoded(photo()), method="blur"))
        assert unauthorised.status_code == 401
        authorised = api.post(
            "/api/protect",
            headers={"Authorization": f"Bearer {TOKEN}"},
            **upload(encoded(photo()), method="blur"),
        )
        assert authorised.status_code == 200
        assert api.get("/").status_code == 200 and 'id="token"' in api.get("/").text


def test_public_host_needs_tokens(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    with pytest.raises(ExposureError, match="refusing to listen on 0.0.0.0"):
        create_app(PortalSettings(host="0.0.0.0", catalog=catalog))
    check_exposure(PortalSettings(host="0.0.0.0", tokens=(TOKEN,)))
    with pytest.raises(ExposureError, match="at least 16"):
        PortalSettings(tokens=("short",))
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self: pytest.fail("the server must not start"))
    assert portal_main(["--host", "0.0.0.0"]) == 2
    monkeypatch.setenv("PORTAL_TEST_TOKENS", f"{TOKEN}, other-token-0123456789")
    settings = settings_from_args(parse_args(["--host", "0.0.0.0", "--token-env", "PORTAL_TEST_TOKENS"]))
    assert settings.tokens == (TOKEN, "other-token-0123456789")
    check_exposure(settings)


def test_cors_closed_unless_configured(catalog: Catalog) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST"}
    with client(catalog) as api:
        assert "access-control-allow-origin" not in api.get("/api/methods", headers=origin).headers
        assert "access-control-allow-origin" not in api.options("/api/protect", headers=preflight).headers
    with client(catalog, cors_origins=("https://elsewhere.example",)) as api:
        allowed = api.get("/api/methods", headers=origin)
        assert allowed.headers["access-control-allow-origin"] == "https://elsewhere.example"


# --------------------------------------------------------------------------------------------- pool, scratch


def test_full_pool_answers_503_at_once(catalog: Catalog, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    SlowInvert.RELEASE.clear()
    SlowInvert.STARTED.clear()
    SlowInvert.seen.clear()
    SlowInvert.scratch_root = scratch
    answers: list[int] = []
    with client(catalog, workers=1, queue=1, temp_dir=scratch, retry_after_s=3) as api:
        body = upload(encoded(photo()), method="fake_slow", faces="whole")

        def call() -> None:
            answers.append(api.post("/api/protect", **body).status_code)

        threads = [threading.Thread(target=call) for _ in range(2)]
        threads[0].start()
        assert SlowInvert.STARTED.wait(20)
        threads[1].start()
        deadline = time.monotonic() + 20
        while api.get("/api/health").json()["pool"]["waiting"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        started = time.monotonic()
        refused = api.post("/api/protect", **body)
        assert time.monotonic() - started < 5
        assert refused.status_code == 503 and refused.headers["retry-after"] == "3"
        assert "busy" in refused.json()["error"]
        SlowInvert.RELEASE.set()
        for thread in threads:
            thread.join(30)
        assert answers == [200, 200]
        assert api.post("/api/protect", **body).status_code == 200  # slots were freed
        assert api.get("/api/health").json()["pool"]["waiting"] == 0
    SlowInvert.scratch_root = None
    # while the method ran, its upload was in a per-request folder; afterwards nothing is left
    assert any("upload" in names for names in SlowInvert.seen)
    assert all(any(name.startswith("lab-portal-") for name in names) for names in SlowInvert.seen)
    assert not list(scratch.iterdir())


# --------------------------------------------------------------------------------------------- catalog


class NotATensor:
    """Pickled into a checkpoint: the catalog must refuse it, never build it."""


def _checkpoint(path: Path, target: str, run_id: str, extra: dict[str, Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": CHECKPOINT_FORMAT,
        "config": {"model": {"_target_": target}},
        "experiment": "fake/experiment",
        "run_id": run_id,
        **(extra or {}),
    }
    torch.save(
        {
            "state_dict": {"w": torch.zeros(1)},
            "pytorch-lightning_version": installed_lightning_version(),
            "epoch": 0,
            "global_step": 0,
            RECORD_KEY: record,
        },
        path,
    )
    return path


def test_catalog_finds_run_checkpoints_without_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    papers = discover()
    target = papers[PAPER].target
    built: list[str] = []

    def loader(name: str, ckpt: Path | None = None, **_: Any) -> Any:
        built.append(name)
        from src.sdk import load

        return load("blur")

    entry = MethodEntry(
        "fake_trained", PAPER, "protect", lambda *a, **k: None, "fake trained", True, "fake/x"
    )
    monkeypatch.setitem(METHODS, "fake_trained", entry)
    runs = tmp_path / "runs"
    best = _checkpoint(runs / "exp/a/run-a/checkpoints/best-003.ckpt", target, "run-a")
    _checkpoint(runs / "exp/a/run-a/checkpoints/last.ckpt", target, "run-a")
    (runs / "exp/a/run-a/summary.json").write_text(json.dumps({"best_checkpoint": str(best)}))
    _checkpoint(runs / "exp/b/run-b/checkpoints/last.ckpt", target, "run-b")
    _checkpoint(runs / "exp/c/run-c/checkpoints/last.ckpt", "some.other.Module", "run-c")
    _checkpoint(runs / "exp/d/run-d/checkpoints/last.ckpt", target, "run-d", {"note": NotATensor()})
    _checkpoint(runs / "exp/e/run-e/wandb/checkpoints/last.ckpt", target, "run-e")
    explicit = _checkpoint(tmp_path / "mine.ckpt", target, "run-x")

    found = find_run_checkpoints(runs)
    assert best in found and runs / "exp/a/run-a/checkpoints/last.ckpt" not in found
    assert not any("wandb" in str(path) for path in found)
    catalog = Catalog(runs, [("fake_trained", explicit)], untrained=False, loader=loader)
    ids = [entry.id for entry in catalog]
    assert ids == ["fake_trained@run-x", "fake_trained@run-a", "fake_trained@run-b"]  # run-c/-d refused
    entry = catalog.entry("fake_trained@run-a")
    assert entry.checkpoint == best.resolve() and entry.label == "fake_trained · fake/experiment · run-a"
    assert catalog.traits(entry.id) == {"loaded": False, "needs_password": False, "reversible": False}
    assert built == []  # nothing built until first use
    assert catalog.load(entry.id) is catalog.load(entry.id) and built == ["fake_trained"]
    with pytest.raises(UnknownMethodError):
        catalog.entry("nope")
    with pytest.raises(ValueError, match="not one that method 'fake_trained' serves"):
        Catalog(checkpoints=[("fake_trained", runs / "exp/c/run-c/checkpoints/last.ckpt")], untrained=False)
    with pytest.raises(ValueError, match="unknown method"):
        Catalog(checkpoints=[("nope", explicit)])


def test_api_docs_load_nothing_from_outside(api: TestClient) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    scripts = re.findall(r'src="([^"]+)"', page.text)
    assert scripts and all(src.startswith("/static-offline-docs/") for src in scripts), scripts
    assert "cdn" not in page.text.lower()
    assert api.get(scripts[0]).status_code == 200  # the Swagger UI bundle itself, from the installed package
    assert "/api/protect" in api.get("/openapi.json").json()["paths"]
