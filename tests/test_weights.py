"""The weights manifest: schema, resolve/verify (missing, mismatch, prefix-only), local pins for files without
a published digest, fetch via file://, the CLI.

No test touches the network: downloads use ``file://`` URLs to temporary files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from src.weights import (
    ChecksumMismatchError,
    MissingWeightsError,
    UnpinnedWeightsError,
    WeightsError,
    core,
    fetch,
    load_manifest,
    load_pins,
    manifest_paths,
    pin,
    pins_path,
    resolve,
    verify,
)
from src.weights.__main__ import main as cli_main
from src.weights.core import _REQUIRED

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROFACE_RELEASE = Path("/work/shared/fixtures/proface_release")
PROFACE_COMMIT = "791e815e9fa57d5841e7e2be9454de27dad78ebb"


@pytest.fixture
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Empty weights dir and torch home; returns (weights_dir, torch hub checkpoints dir)."""
    weights = tmp_path / "weights"
    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("PROFACE_WEIGHTS", str(weights))
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return weights, torch_home / "hub" / "checkpoints"


def _entry(name: str, data: bytes, **overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": name,
        "file": f"{name}.bin",
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha256_complete": True,
        "size_bytes": len(data),
        "source": "none",
        "url": "https://example.invalid/none",
        "url_is_file": True,
        "licence": "test",
        "papers": [],
        "used_by": [],
        "description": "test entry",
    }
    entry.update(overrides)
    return entry


def _write_manifest(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "weights": entries}), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------
# The shipped manifest
# ----------------------------------------------------------------------------------------------------


def test_a_paper_fragment_may_not_reuse_a_shared_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fragment that repeats a shared entry's name is refused, naming both files."""
    shared = manifest_paths()[0]
    name = yaml.safe_load(shared.read_text())["weights"][0]["name"]
    fragment = tmp_path / "weights.yaml"
    item = dict(yaml.safe_load(shared.read_text())["weights"][0], file="another.pth")
    fragment.write_text(yaml.safe_dump({"version": 1, "weights": [item]}))
    monkeypatch.setattr(core, "fragment_paths", lambda: [fragment])
    with pytest.raises(WeightsError, match=f"duplicate entry name '{name}'.*{shared.name}"):
        load_manifest()


def test_manifest_schema_and_required_entries() -> None:
    manifest = load_manifest()
    paths = manifest_paths()
    assert paths[0] == PROJECT_ROOT / "src" / "weights" / "manifest.yaml" and len(paths) > 1
    raw = [item for path in paths for item in yaml.safe_load(path.read_text())["weights"]]
    assert len(raw) == len(manifest)
    for item in raw:
        assert set(_REQUIRED) <= set(item), item["name"]
        for key in ("name", "file", "sha256", "url", "licence", "description"):
            assert str(item[key]).strip(), (item["name"], key)
        assert isinstance(item["papers"], list)
        assert item["size_bytes"] is None or item["size_bytes"] > 0
        if item["sha256"] is None:  # no published digest: must be pinned locally, never marked complete
            assert item["sha256_complete"] is False and item["url_is_file"] is False, item["name"]
    expected = {
        "lpips-alex-backbone": "alexnet-owt-7be5be79.pth",
        "lpips-vgg-backbone": "vgg16-397923af.pth",
        "lpips-squeeze-backbone": "squeezenet1_1-b8a52dc0.pth",
        "dlib-face-recognition-resnet": "dlib_face_recognition_resnet_model_v1.dat",
        "dlib-shape-predictor-5": "shape_predictor_5_face_landmarks.dat",
        "dlib-shape-predictor-68": "shape_predictor_68_face_landmarks.dat",
        "dlib-mmod-face-detector": "mmod_human_face_detector.dat",
    }
    for name, file in expected.items():
        assert manifest[name].file == file
    for net in ("alex", "vgg", "squeeze"):
        assert manifest[f"lpips-{net}-lin-v0.1"].package_path == f"weights/v0.1/{net}.pth"


def test_manifest_recognizer_and_proface_entries() -> None:
    """PRO-Face's recognizers, the IR-SE-50s of TreB1eN/InfoSwap and the 20 released PRO-Face embedders."""
    manifest = load_manifest()
    unpinned = {
        "proface-mobilefacenet-casia": "CASIA_WebFace_MobileFaceNet_Iter_64000_net.pth",
        "proface-ir50-casia": "CASIA_WebFace_ResNet50_IR_Iter_64000_net.pth",
        "proface-ir-se50-casia": "CASIA_WebFace_SEResNet50_IR_Iter_64000_net.pth",
        "proface-iresnet100": "iresnet100.pt",
        "treb1en-ir-se50": "model_ir_se50.pth",
        "infoswap-ir-se50-128": "model_128_ir_se50.pth",
    }
    for name, file in unpinned.items():  # shared through cloud folders or on request: no published digest
        entry = manifest[name]
        assert (entry.file, entry.sha256, entry.sha256_complete, entry.size_bytes) == (
            file,
            None,
            False,
            None,
        )
        assert entry.papers and not entry.url_is_file
    facenet = manifest["facenet-vggface2"]
    assert facenet.file == "20180402-114759-vggface2.pt" and facenet.url.endswith("/v2.2.9/" + facenet.file)
    assert facenet.sha256_complete and facenet.size_bytes == 111_898_327 and "proface" in facenet.papers
    embedders = {name: entry for name, entry in manifest.items() if name.startswith("proface-embedder-")}
    assert len(embedders) == 20
    for entry in embedders.values():
        assert entry.sha256_complete and entry.size_bytes == 1_098_217 and entry.papers == ("proface",)
        assert entry.url_is_file and entry.url == (
            f"https://raw.githubusercontent.com/lixionga/ProFace/{PROFACE_COMMIT}/FacePrivacy/PRO-Face/"
            f"checkpoints/{entry.file}"
        )
    blur = manifest["proface-embedder-blur-iresnet50"]
    assert blur.file == "blur_31_2_8_IResNet50_ep13_BEST.pth"
    assert blur.sha256 == "a63015e436d189c0d9ba697601aff70415fc71b176f6e9c480179e7c8ce3d76b"
    pixelate = manifest["proface-embedder-pixelate-iresnet50"]
    assert pixelate.sha256 == "d10e58788065dd4f59201882e94bfb49cee4bc7367a3d30e4e8d130b64dc0259"


@pytest.mark.skipif(not PROFACE_RELEASE.is_dir(), reason="PRO-Face release fixtures not available")
def test_proface_release_fixtures_verify(isolated_dirs: tuple[Path, Path]) -> None:
    """The two released embedders in shared/fixtures verify against their manifest entries."""
    weights, _ = isolated_dirs
    weights.mkdir()
    for name in ("proface-embedder-blur-iresnet50", "proface-embedder-pixelate-iresnet50"):
        entry = load_manifest()[name]
        (weights / entry.file).symlink_to(PROFACE_RELEASE / entry.file)
        assert verify(name) == weights / entry.file


def test_torchvision_digests_start_with_the_hash_in_their_file_name() -> None:
    """torchvision names its files ``<arch>-<first hex digits of the sha256>.pth``."""
    for entry in load_manifest().values():
        if entry.source == "torch_hub":
            prefix = re.search(r"-([0-9a-f]{8,})\.pth$", entry.file)
            assert prefix is not None, entry.file
            assert entry.sha256.startswith(prefix.group(1)), entry.name
            assert entry.url.endswith("/" + entry.file)


def test_package_shipped_files_verify() -> None:
    """Every package-shipped file of an installed package matches its manifest sha256 and size."""
    checked = 0
    for entry in load_manifest().values():
        if entry.source != "package" or importlib.util.find_spec(entry.package) is None:
            continue
        path = verify(entry.name)
        assert path.name == Path(entry.package_path).name
        checked += 1
    assert checked >= 6  # lpips heads at least
    # located without importing: face_recognition_models' __init__ needs the removed pkg_resources
    assert "face_recognition_models" not in sys.modules


# ----------------------------------------------------------------------------------------------------
# Schema errors
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "xyz"}, "hexadecimal"),
        ({"sha256": None}, "sha256 is null (unknown), so sha256_complete must be false"),
        ({"sha256": 12}, "field 'sha256' must be str or null"),
        ({"size_bytes": "12"}, "field 'size_bytes' must be int or null"),
        ({"size_bytes": True}, "field 'size_bytes' must be int or null"),
        ({"sha256": "ab" * 10}, "not 64"),
        ({"sha256_complete": False, "sha256": "abc"}, "8 to 63"),
        ({"size_bytes": 0}, "size_bytes"),
        ({"source": "internet"}, "source must be"),
        ({"source": "package"}, "package, package_path, pip"),
        ({"file": "a/b.bin"}, "plain file name"),
        ({"papers": "proface"}, "'papers' must be list"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_manifest_schema_errors(tmp_path: Path, change: dict[str, object], message: str) -> None:
    path = _write_manifest(tmp_path / "m.yaml", [_entry("a", b"x", **change)])
    with pytest.raises(WeightsError, match=re.escape(message)) as info:
        load_manifest(path)
    assert str(path) in str(info.value)


def test_manifest_missing_field_and_duplicates(tmp_path: Path) -> None:
    entry = _entry("a", b"x")
    del entry["licence"]
    with pytest.raises(WeightsError, match="missing field.*licence"):
        load_manifest(_write_manifest(tmp_path / "m1.yaml", [entry]))
    with pytest.raises(WeightsError, match="duplicate entry name 'a'"):
        load_manifest(_write_manifest(tmp_path / "m2.yaml", [_entry("a", b"x"), _entry("a", b"y")]))
    with pytest.raises(WeightsError, match="same file name"):
        load_manifest(
            _write_manifest(tmp_path / "m3.yaml", [_entry("a", b"x"), _entry("b", b"y", file="a.bin")])
        )


# ----------------------------------------------------------------------------------------------------
# resolve / verify
# ----------------------------------------------------------------------------------------------------


def test_missing_backbone_error_names_file_sha_path_and_command(isolated_dirs: tuple[Path, Path]) -> None:
    weights, hub = isolated_dirs
    entry = load_manifest()["lpips-alex-backbone"]
    with pytest.raises(MissingWeightsError) as info:
        resolve("lpips-alex-backbone")
    message = str(info.value)
    assert "alexnet-owt-7be5be79.pth" in message
    assert entry.sha256 in message and len(entry.sha256) == 64
    assert str(weights / entry.file) in message
    assert str(hub / entry.file) in message
    assert "python -m src.weights fetch lpips-alex-backbone" in message
    assert isinstance(info.value, FileNotFoundError)


def test_wrong_file_is_refused_with_both_checksums(isolated_dirs: tuple[Path, Path]) -> None:
    _, hub = isolated_dirs
    entry = load_manifest()["lpips-squeeze-backbone"]
    hub.mkdir(parents=True)
    fake = hub / entry.file
    fake.write_bytes(b"not squeezenet")
    with pytest.raises(ChecksumMismatchError) as info:
        resolve("lpips-squeeze-backbone")
    message = str(info.value)
    assert str(fake) in message
    assert entry.sha256 in message
    assert hashlib.sha256(b"not squeezenet").hexdigest() in message


def test_search_order_cache_and_verify(isolated_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    weights, hub = isolated_dirs
    data = b"weights-bytes" * 100
    manifest = load_manifest(
        _write_manifest(tmp_path / "m.yaml", [_entry("hubbed", data, source="torch_hub")])
    )
    hub.mkdir(parents=True)
    (hub / "hubbed.bin").write_bytes(data)
    assert resolve("hubbed", manifest) == hub / "hubbed.bin"
    weights.mkdir()
    (weights / "hubbed.bin").write_bytes(data)
    assert resolve("hubbed", manifest) == weights / "hubbed.bin"  # the weights dir comes first
    assert verify("hubbed", manifest) == weights / "hubbed.bin"
    # same size, different content: verify always re-hashes and refuses, even after a cached resolve
    (weights / "hubbed.bin").write_bytes(data[::-1])
    with pytest.raises(ChecksumMismatchError):
        verify("hubbed", manifest)
    # a corrupt file in the weights dir is refused, not skipped in favour of the good hub copy
    with pytest.raises(ChecksumMismatchError):
        resolve("hubbed", manifest)
    with pytest.raises(WeightsError, match="unknown weights name 'nope'"):
        resolve("nope", manifest)


def test_prefix_only_digest_and_size(isolated_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    weights, _ = isolated_dirs
    data = b"prefix-test"
    digest = hashlib.sha256(data).hexdigest()
    entries = [
        _entry("prefix", data, sha256=digest[:8], sha256_complete=False),
        _entry("badprefix", data, sha256="0" * 8, sha256_complete=False),
        _entry("badsize", data, size_bytes=len(data) + 1),
    ]
    manifest = load_manifest(_write_manifest(tmp_path / "m.yaml", entries))
    weights.mkdir()
    for entry in entries:
        (weights / str(entry["file"])).write_bytes(data)
    assert verify("prefix", manifest) == weights / "prefix.bin"
    with pytest.raises(ChecksumMismatchError, match=r"00000000…\(prefix only\)"):
        verify("badprefix", manifest)
    with pytest.raises(ChecksumMismatchError, match=f"{len(data) + 1} bytes"):
        verify("badsize", manifest)


# ----------------------------------------------------------------------------------------------------
# fetch (file:// only)
# ----------------------------------------------------------------------------------------------------


def test_fetch_from_file_url(isolated_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    weights, _ = isolated_dirs
    data = bytes(range(256)) * 5000  # > 1 MiB: several chunks
    source = tmp_path / "upstream.bin"
    source.write_bytes(data)
    entries = [
        _entry("good", data, url=source.as_uri()),
        _entry("wrong", data[:-1] + b"\x00", url=source.as_uri()),
        _entry("offline", data, url=(tmp_path / "absent.bin").as_uri()),
        _entry("pkg", data, source="package", package="no_such_pkg", package_path="w.bin", pip="nopkg==1.0"),
    ]
    entries[3]["url_is_file"] = False
    manifest = load_manifest(_write_manifest(tmp_path / "m.yaml", entries))

    path = fetch("good", manifest)
    assert path == weights / "good.bin" and path.read_bytes() == data
    source.unlink()
    assert fetch("good", manifest) == path  # already present: nothing downloaded
    source.write_bytes(data)

    with pytest.raises(ChecksumMismatchError, match="refusing the download"):
        fetch("wrong", manifest)
    assert not (weights / "wrong.bin").exists()
    assert not list(weights.glob("*.part"))

    with pytest.raises(WeightsError, match="could not download") as info:
        fetch("offline", manifest)
    assert str(weights / "offline.bin") in str(info.value)

    with pytest.raises(WeightsError, match="pip install nopkg==1.0"):
        fetch("pkg", manifest)


# ----------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------


def test_cli_list_verify_fetch(
    isolated_dirs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights, _ = isolated_dirs
    data = b"cli-data"
    source = tmp_path / "src.bin"
    source.write_bytes(data)
    manifest = _write_manifest(
        tmp_path / "m.yaml", [_entry("one", data, url=source.as_uri()), _entry("two", b"other")]
    )

    assert cli_main(["list"]) == 0
    out = capsys.readouterr().out
    for name in load_manifest():
        assert name in out
    assert "missing" in out  # the torchvision backbones are absent in the isolated dirs

    assert cli_main(["--manifest", str(manifest), "verify"]) == 1
    out = capsys.readouterr().out
    assert "MISSING   one" in out and "MISSING   two" in out and "0 of 2 verified" in out

    assert cli_main(["--manifest", str(manifest), "fetch", "one"]) == 0
    assert (weights / "one.bin").read_bytes() == data
    assert cli_main(["--manifest", str(manifest), "verify", "one"]) == 0
    assert "OK        one" in capsys.readouterr().out

    (tmp_path / "bad.yaml").write_text("weights: 3\n")
    assert cli_main(["--manifest", str(tmp_path / "bad.yaml"), "list"]) == 2


def test_cli_module_entry_point(isolated_dirs: tuple[Path, Path]) -> None:
    """``python -m src.weights list`` runs as a module (one subprocess)."""
    result = subprocess.run(
        [sys.executable, "-m", "src.weights", "list"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "lpips-alex-backbone" in result.stdout and "alexnet-owt-7be5be79.pth" not in result.stderr


# ----------------------------------------------------------------------------------------------------
# Local pins (files without a published sha256)
# ----------------------------------------------------------------------------------------------------


def _unpublished(name: str, **overrides: object) -> dict[str, object]:
    """An entry whose digest and size are not published."""
    fields: dict[str, object] = {
        "sha256": None,
        "sha256_complete": False,
        "size_bytes": None,
        "url_is_file": False,
    }
    return _entry(name, b"", **{**fields, **overrides})


def test_unpublished_digest_is_refused_until_pinned(isolated_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    weights, _ = isolated_dirs
    manifest = load_manifest(_write_manifest(tmp_path / "m.yaml", [_unpublished("cloud")]))
    entry = manifest["cloud"]
    assert entry.sha256_display == "unknown (no published sha256)" and entry.size_display == "size unknown"

    with pytest.raises(MissingWeightsError) as info:  # absent: where to put it and how to pin it
        resolve("cloud", manifest)
    assert str(weights / "cloud.bin") in str(info.value)
    assert "python -m src.weights pin cloud --file <downloaded file>" in str(info.value)

    weights.mkdir()
    path = weights / "cloud.bin"
    path.write_bytes(b"my checked copy")
    for check in (resolve, verify):  # present but unpinned: refused, naming the exact command
        with pytest.raises(UnpinnedWeightsError) as info:
            check("cloud", manifest)
        assert f"`python -m src.weights pin cloud --file {path}`" in str(info.value)
    with pytest.raises(WeightsError, match=r"no published sha256.*python -m src\.weights pin cloud"):
        fetch("cloud", manifest)

    record = pin("cloud", manifest=manifest)  # default: the file resolve() finds
    digest = hashlib.sha256(b"my checked copy").hexdigest()
    assert (record.sha256, record.size_bytes, record.file) == (digest, 15, "cloud.bin")
    assert record.pinned_from == str(path.resolve())
    assert load_pins() == {"cloud": record} and pins_path() == weights / "pins.yaml"
    assert resolve("cloud", manifest) == path and verify("cloud", manifest) == path

    path.write_bytes(b"my checked cop!")  # same size, other content
    with pytest.raises(ChecksumMismatchError) as info:
        verify("cloud", manifest)
    message = str(info.value)
    assert "does not match its local pin" in message and digest in message
    assert f"`python -m src.weights pin cloud --file {path} --replace`" in message
    with pytest.raises(WeightsError, match="already pinned to sha256"):
        pin("cloud", manifest=manifest)
    assert (
        pin("cloud", manifest=manifest, replace=True).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    )
    assert verify("cloud", manifest) == path


def test_pin_copies_a_file_from_elsewhere(isolated_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    weights, _ = isolated_dirs
    manifest = load_manifest(_write_manifest(tmp_path / "m.yaml", [_unpublished("cloud")]))
    download = tmp_path / "Iter_64000_net.pth"
    download.write_bytes(b"downloaded")
    with pytest.raises(MissingWeightsError, match=r"cannot pin weights 'cloud': no file cloud\.bin"):
        pin("cloud", manifest=manifest)
    with pytest.raises(MissingWeightsError, match="is not a file"):
        pin("cloud", tmp_path / "absent.pth", manifest=manifest)
    pin("cloud", download, manifest=manifest)
    assert (weights / "cloud.bin").read_bytes() == b"downloaded" and download.exists()
    assert not list(weights.glob("*.part"))
    assert resolve("cloud", manifest) == weights / "cloud.bin"
    other = tmp_path / "other.pth"
    other.write_bytes(b"another file")
    with pytest.raises(WeightsError, match="a different file already exists at"):
        pin("cloud", other, manifest=manifest, replace=True)
    assert (weights / "cloud.bin").read_bytes() == b"downloaded"


def test_pin_respects_what_the_manifest_knows(isolated_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    weights, _ = isolated_dirs
    data = b"prefix-known"
    digest = hashlib.sha256(data).hexdigest()
    entries = [
        _entry("complete", data),
        _entry("prefixed", data, sha256=digest[:10], sha256_complete=False),
        _unpublished("sized", size_bytes=3),
    ]
    manifest = load_manifest(_write_manifest(tmp_path / "m.yaml", entries))
    weights.mkdir()
    for name in ("complete", "prefixed", "sized"):
        (weights / f"{name}.bin").write_bytes(data)
    with pytest.raises(WeightsError, match=r"has a published sha256.*python -m src\.weights verify complete"):
        pin("complete", manifest=manifest)
    with pytest.raises(ChecksumMismatchError, match=r"refusing to pin .* \(3 bytes\)"):
        pin("sized", manifest=manifest)
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(b"not the prefix")
    (weights / "prefixed.bin").unlink()
    with pytest.raises(ChecksumMismatchError, match=f"expects sha256 {digest[:10]}…"):
        pin("prefixed", wrong, manifest=manifest)
    (weights / "prefixed.bin").write_bytes(data)
    assert pin("prefixed", manifest=manifest).sha256 == digest  # prefix-only digest + pin: full check
    assert verify("prefixed", manifest) == weights / "prefixed.bin"


def test_pins_file_errors_and_stale_pins(isolated_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    weights, _ = isolated_dirs
    weights.mkdir()
    (weights / "pins.yaml").write_text("pins: [1, 2]\n")
    with pytest.raises(WeightsError, match="expected a mapping with a 'pins' mapping"):
        load_pins()
    (weights / "pins.yaml").write_text("pins:\n  cloud: {file: cloud.bin, sha256: abc}\n")
    with pytest.raises(WeightsError, match=r"pin 'cloud'.*size_bytes"):
        load_pins()
    (weights / "pins.yaml").write_text("")
    assert load_pins() == {}
    manifest = load_manifest(_write_manifest(tmp_path / "m.yaml", [_unpublished("cloud")]))
    (weights / "cloud.bin").write_bytes(b"x")
    pin("cloud", manifest=manifest)
    renamed = load_manifest(_write_manifest(tmp_path / "m2.yaml", [_unpublished("cloud", file="cloud2.bin")]))
    (weights / "cloud2.bin").write_bytes(b"x")
    with pytest.raises(WeightsError, match=r"contradicts the manifest: it was made for file 'cloud\.bin'"):
        resolve("cloud", renamed)


def test_fetch_checks_a_download_against_the_pin(isolated_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    weights, _ = isolated_dirs
    source = tmp_path / "upstream.bin"
    source.write_bytes(b"upstream bytes")
    manifest = load_manifest(
        _write_manifest(tmp_path / "m.yaml", [_unpublished("dl", url=source.as_uri(), url_is_file=True)])
    )
    with pytest.raises(WeightsError, match="could not be verified"):
        fetch("dl", manifest)
    pin("dl", source, manifest=manifest)
    (weights / "dl.bin").unlink()
    assert fetch("dl", manifest).read_bytes() == b"upstream bytes"
    (weights / "dl.bin").unlink()
    source.write_bytes(b"changed upstream")
    with pytest.raises(ChecksumMismatchError, match="refusing the download"):
        fetch("dl", manifest)
    assert not (weights / "dl.bin").exists()


def test_cli_pin_list_verify(
    isolated_dirs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights, _ = isolated_dirs
    manifest = _write_manifest(tmp_path / "m.yaml", [_unpublished("cloud"), _entry("plain", b"p")])
    download = tmp_path / "copy.bin"
    download.write_bytes(b"cloud-bytes")
    assert cli_main(["--manifest", str(manifest), "list"]) == 0
    assert "unpinned(none published)" in capsys.readouterr().out
    weights.mkdir()
    (weights / "cloud.bin").write_bytes(b"cloud-bytes")
    assert cli_main(["--manifest", str(manifest), "verify", "cloud"]) == 1
    assert "UNPINNED  cloud" in capsys.readouterr().out
    (weights / "cloud.bin").unlink()
    assert cli_main(["--manifest", str(manifest), "pin", "cloud", "--file", str(download)]) == 0
    out = capsys.readouterr().out
    assert "PINNED    cloud" in out and hashlib.sha256(b"cloud-bytes").hexdigest() in out
    assert cli_main(["--manifest", str(manifest), "verify", "cloud"]) == 0
    assert cli_main(["--manifest", str(manifest), "list"]) == 0
    out = capsys.readouterr().out
    assert "pinned:" + hashlib.sha256(b"cloud-bytes").hexdigest()[:12] in out and "11 B" in out
    assert cli_main(["--manifest", str(manifest), "pin", "plain"]) == 1
    assert "FAILED    plain" in capsys.readouterr().out


def test_resolve_spec_reads_manifest_names_and_paths(tmp_path: Path) -> None:
    from src.weights import resolve, resolve_spec

    assert resolve_spec("manifest:dlib-face-recognition-resnet") == resolve("dlib-face-recognition-resnet")
    assert resolve_spec(str(tmp_path / "mine.pth")) == tmp_path / "mine.pth"
