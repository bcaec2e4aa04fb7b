"""The weights manifest: load it, find a weight file, check its sha256, fetch it where a network exists.

Every pretrained file the framework uses is listed, with its sha256, size, origin and licence, in
``manifest.yaml`` (next to this module: files several papers share) or in a paper's fragment
``src/papers/<paper>/weights.yaml`` (its own files). Code that needs a file calls :func:`resolve`, which
never downloads and never substitutes anything: it returns a verified path or raises an error that says what
is missing, where it must go and how to get it. Only the explicit :func:`fetch` (``python -m src.weights fetch
NAME``) touches the network.

Search order of :func:`resolve`: ``weights_dir()/<file>`` (``$PROFACE_WEIGHTS``, default
``<project>/weights``), then for ``source: torch_hub`` entries the torch hub cache
``$TORCH_HOME/hub/checkpoints/<file>``, then for ``source: package`` entries the file inside the installed
package (located with :func:`importlib.util.find_spec`, never imported). The first file that exists is
verified (size, then sha256); a mismatch is refused, not skipped, so a corrupt or foreign file is never
silently replaced by another one.

Files whose sha256 is not published anywhere (``sha256: null`` in the manifest, e.g. weights shared through
Baidu/OneDrive folders) cannot be checked against the manifest. They are refused until the user pins their
copy once with :func:`pin` (``python -m src.weights pin NAME [--file PATH]``), which records the file's
sha256 and size in ``weights_dir()/pins.yaml``; from then on :func:`resolve`/:func:`verify` check the file
against that pin. A pin says "this is the file I checked", not "this is the published file": the manifest's
own digest, where one is known, always wins (complete digests cannot be pinned; a prefix-only digest must
agree with the pin).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

__all__ = [
    "ChecksumMismatchError",
    "MissingWeightsError",
    "UnpinnedWeightsError",
    "WeightEntry",
    "WeightPin",
    "WeightsError",
    "candidate_paths",
    "fetch",
    "fetch_command",
    "fragment_paths",
    "load_manifest",
    "load_pins",
    "manifest_path",
    "manifest_paths",
    "pin",
    "pin_command",
    "pins_path",
    "resolve",
    "sha256_file",
    "torch_hub_checkpoints_dir",
    "verify",
    "verify_file",
    "weights_dir",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_WEIGHTS_DIR = "PROFACE_WEIGHTS"
SOURCES = ("torch_hub", "package", "none")
PINS_FILE = "pins.yaml"

_HEX = re.compile(r"^[0-9a-f]+$")
_NONE = type(None)
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "file": str,
    "sha256": (str, _NONE),  # null: no published digest (the file must be pinned locally)
    "sha256_complete": bool,
    "size_bytes": (int, _NONE),  # null: size not published
    "source": str,
    "url": str,
    "url_is_file": bool,
    "licence": str,
    "papers": list,
    "used_by": list,
    "description": str,
}
_PACKAGE_FIELDS = ("package", "package_path", "pip")
_OPTIONAL = set(_PACKAGE_FIELDS)
_CHUNK = 1 << 20

# (path, size, mtime_ns) -> sha256 of files already hashed in this process, so that building several metrics
# from one 500 MB backbone file hashes it once. verify() bypasses it.
_DIGEST_CACHE: dict[tuple[str, int, int], str] = {}


class WeightsError(RuntimeError):
    """Base class of every weights error (bad manifest, missing file, checksum mismatch, failed fetch)."""


class MissingWeightsError(WeightsError, FileNotFoundError):
    """A weight file is in none of the places :func:`resolve` looks."""


class ChecksumMismatchError(WeightsError):
    """A weight file exists but its size or sha256 differs from the manifest (or its pin): it is refused."""


class UnpinnedWeightsError(WeightsError):
    """A weight file without a published sha256 exists but was never pinned: it is refused until pinned."""


@dataclass(frozen=True)
class WeightEntry:
    """One manifest entry (see the field list at the top of ``manifest.yaml``)."""

    name: str
    file: str
    sha256: str | None
    sha256_complete: bool
    size_bytes: int | None
    source: str
    url: str
    url_is_file: bool
    licence: str
    papers: tuple[str, ...]
    used_by: tuple[str, ...]
    description: str
    package: str | None = None
    package_path: str | None = None
    pip: str | None = None

    @property
    def sha256_display(self) -> str:
        """The digest as written, marked ``…(prefix)`` when only the prefix is known, or that none is."""
        if self.sha256 is None:
            return "unknown (no published sha256)"
        return self.sha256 if self.sha256_complete else f"{self.sha256}…(prefix only)"

    @property
    def size_display(self) -> str:
        """``N bytes`` or that the size is not published."""
        return "size unknown" if self.size_bytes is None else f"{self.size_bytes} bytes"

    @property
    def pinnable(self) -> bool:
        """True without a full published digest: a local pin can (with no digest at all: must) add it."""
        return not self.sha256_complete


@dataclass(frozen=True)
class WeightPin:
    """A local pin (``pins.yaml``): the sha256 and size of the user's own copy of a weight file."""

    name: str
    file: str
    sha256: str
    size_bytes: int
    pinned_from: str
    pinned_at: str


def manifest_path() -> Path:
    """Path of the manifest of the weight files several papers share."""
    return Path(__file__).with_name("manifest.yaml")


def fragment_paths() -> list[Path]:
    """The papers' own manifest fragments, ``src/papers/<paper>/weights.yaml``, sorted.

    Found on disk (nothing is imported), so a paper adds its weight files without editing a shared file.
    """
    papers_dir = Path(__file__).resolve().parents[1] / "papers"
    return sorted(papers_dir.glob("*/weights.yaml"))


def manifest_paths() -> list[Path]:
    """Every file the default manifest is read from: the shared manifest, then each paper's fragment."""
    return [manifest_path(), *fragment_paths()]


def _entry_from_mapping(where: str, raw: object) -> WeightEntry:
    if not isinstance(raw, dict):
        raise WeightsError(f"{where}: each entry must be a mapping, got {type(raw).__name__}")
    label = f"{where} (entry {raw.get('name', '?')!r})"
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise WeightsError(f"{label}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - set(_REQUIRED) - _OPTIONAL)
    if unknown:
        raise WeightsError(f"{label}: unknown field(s) {', '.join(unknown)}")
    for key, kind in _REQUIRED.items():
        value = raw[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, _NONE))):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = " or ".join("null" if k is _NONE else k.__name__ for k in kinds)
            raise WeightsError(f"{label}: field '{key}' must be {names}, got {value!r}")
    for key in ("name", "file", "url", "licence", "description"):
        if not raw[key].strip():
            raise WeightsError(f"{label}: field '{key}' is empty")
    if "/" in raw["file"] or "\\" in raw["file"] or raw["file"] in (".", ".."):
        raise WeightsError(f"{label}: 'file' must be a plain file name, got {raw['file']!r}")
    digest = raw["sha256"].lower() if raw["sha256"] is not None else None
    if digest is None:
        if raw["sha256_complete"]:
            raise WeightsError(f"{label}: sha256 is null (unknown), so sha256_complete must be false")
    elif not _HEX.match(digest):
        raise WeightsError(f"{label}: sha256 must be hexadecimal, got {raw['sha256']!r}")
    elif raw["sha256_complete"] and len(digest) != 64:
        raise WeightsError(
            f"{label}: sha256_complete is true but the digest has {len(digest)} digits, not 64"
        )
    elif not raw["sha256_complete"] and not 8 <= len(digest) < 64:
        raise WeightsError(f"{label}: a prefix-only sha256 must have 8 to 63 digits, got {len(digest)}")
    if raw["size_bytes"] is not None and raw["size_bytes"] <= 0:
        raise WeightsError(
            f"{label}: size_bytes must be positive (or null if unknown), got {raw['size_bytes']}"
        )
    if raw["source"] not in SOURCES:
        raise WeightsError(f"{label}: source must be one of {', '.join(SOURCES)}, got {raw['source']!r}")
    if raw["source"] == "package":
        absent = [key for key in _PACKAGE_FIELDS if not isinstance(raw.get(key), str) or not raw[key]]
        if absent:
            raise WeightsError(f"{label}: source 'package' needs field(s) {', '.join(absent)}")
    for key in ("papers", "used_by"):
        if not all(isinstance(item, str) and item for item in raw[key]):
            raise WeightsError(f"{label}: '{key}' must be a list of non-empty strings")
    return WeightEntry(
        name=raw["name"],
        file=raw["file"],
        sha256=digest,
        sha256_complete=raw["sha256_complete"],
        size_bytes=raw["size_bytes"],
        source=raw["source"],
        url=raw["url"],
        url_is_file=raw["url_is_file"],
        licence=raw["licence"],
        papers=tuple(raw["papers"]),
        used_by=tuple(raw["used_by"]),
        description=raw["description"],
        package=raw.get("package"),
        package_path=raw.get("package_path"),
        pip=raw.get("pip"),
    )


def _read_manifest_file(path: Path) -> list[object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WeightsError(f"cannot read the weights manifest {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise WeightsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("weights"), list):
        raise WeightsError(f"{path}: expected a mapping with a 'weights' list")
    return data["weights"]


def load_manifest(path: str | os.PathLike[str] | None = None) -> dict[str, WeightEntry]:
    """Read and validate a manifest → ``{name: WeightEntry}``.

    Default: the shared ``manifest.yaml`` plus every paper's fragment (:func:`manifest_paths`); ``path``: that
    one file only. Raises :class:`WeightsError` naming the file and entry for a missing/unknown/ill-typed
    field, a malformed digest, or a name or file name used twice (in one file or across files).
    """
    paths = [Path(path)] if path is not None else manifest_paths()
    entries: dict[str, WeightEntry] = {}
    where: dict[str, Path] = {}
    files: dict[str, str] = {}
    for source in paths:
        for raw in _read_manifest_file(source):
            entry = _entry_from_mapping(str(source), raw)
            if entry.name in entries:
                raise WeightsError(
                    f"{source}: duplicate entry name {entry.name!r} (also in {where[entry.name]})"
                )
            if entry.file in files:
                raise WeightsError(
                    f"{source}: entries {files[entry.file]!r} and {entry.name!r} use the same file name "
                    f"{entry.file!r}"
                )
            entries[entry.name] = entry
            where[entry.name] = source
            files[entry.file] = entry.name
    return entries


def _get(name: str, manifest: Mapping[str, WeightEntry] | None) -> WeightEntry:
    manifest = load_manifest() if manifest is None else manifest
    if name not in manifest:
        raise WeightsError(f"unknown weights name {name!r}; known: {', '.join(sorted(manifest))}")
    return manifest[name]


def weights_dir() -> Path:
    """The project's weights folder: ``$PROFACE_WEIGHTS`` if set, else ``<project>/weights``."""
    value = os.environ.get(ENV_WEIGHTS_DIR)
    return Path(value).expanduser() if value else PROJECT_ROOT / "weights"


def torch_hub_checkpoints_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch's default when unset), where torchvision caches its weights."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _package_file(entry: WeightEntry) -> Path | None:
    """The file inside its installed package, located without importing the package; None if not installed."""
    assert entry.package is not None and entry.package_path is not None
    try:
        spec = importlib.util.find_spec(entry.package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations)))
    elif spec.origin:
        base = Path(spec.origin).parent
    else:
        return None
    return base / entry.package_path


def candidate_paths(entry: WeightEntry) -> list[Path]:
    """Every place :func:`resolve` looks for ``entry``, in order."""
    paths = [weights_dir() / entry.file]
    if entry.source == "torch_hub":
        paths.append(torch_hub_checkpoints_dir() / entry.file)
    elif entry.source == "package":
        package_file = _package_file(entry)
        if package_file is not None:
            paths.append(package_file)
    return paths


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _digest(path: Path, use_cache: bool) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if use_cache and key in _DIGEST_CACHE:
        return _DIGEST_CACHE[key]
    value = sha256_file(path)
    _DIGEST_CACHE[key] = value
    return value


def pins_path() -> Path:
    """The local pin file ``weights_dir()/pins.yaml`` (written by :func:`pin`; not part of the repository)."""
    return weights_dir() / PINS_FILE


def _pin_from_mapping(where: Path, name: object, raw: object) -> WeightPin:
    label = f"{where} (pin {name!r})"
    if not isinstance(name, str) or not isinstance(raw, dict):
        raise WeightsError(f"{label}: each pin must be a mapping under its weights name")
    fields = {"file": str, "sha256": str, "size_bytes": int, "pinned_from": str, "pinned_at": str}
    for key, kind in fields.items():
        if not isinstance(raw.get(key), kind) or isinstance(raw.get(key), bool):
            raise WeightsError(f"{label}: field '{key}' must be {kind.__name__}, got {raw.get(key)!r}")
    digest = raw["sha256"].lower()
    if len(digest) != 64 or not _HEX.match(digest):
        raise WeightsError(f"{label}: sha256 must be a full 64-digit hex digest, got {raw['sha256']!r}")
    if raw["size_bytes"] <= 0:
        raise WeightsError(f"{label}: size_bytes must be positive, got {raw['size_bytes']}")
    return WeightPin(name, raw["file"], digest, raw["size_bytes"], raw["pinned_from"], raw["pinned_at"])


def load_pins(path: str | os.PathLike[str] | None = None) -> dict[str, WeightPin]:
    """The local pins (default :func:`pins_path`) → ``{name: WeightPin}``; no file means no pins."""
    path = Path(path) if path is not None else pins_path()
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WeightsError(f"cannot read the weight pins {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise WeightsError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("pins") or {}, dict):
        raise WeightsError(f"{path}: expected a mapping with a 'pins' mapping (name -> pin)")
    return {name: _pin_from_mapping(path, name, raw) for name, raw in (data.get("pins") or {}).items()}


def _write_pins(pins: Mapping[str, WeightPin], path: Path) -> None:
    body = {
        "version": 1,
        "pins": {
            name: {
                "file": item.file,
                "sha256": item.sha256,
                "size_bytes": item.size_bytes,
                "pinned_from": item.pinned_from,
                "pinned_at": item.pinned_at,
            }
            for name, item in sorted(pins.items())
        },
    }
    header = (
        "# Local sha256 pins of weight files that have no published digest (src/weights/manifest.yaml,\n"
        "# sha256: null). Written by `python -m src.weights pin NAME [--file PATH]`; resolve()/verify\n"
        "# check the files against these. A pin records the copy you checked, not a published checksum.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(header + yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    os.replace(temporary, path)


def pin_command(entry: WeightEntry, path: str | os.PathLike[str] | None = None) -> str:
    """The exact command that pins ``entry`` (to the file at ``path`` when given)."""
    return f"python -m src.weights pin {entry.name}" + (f" --file {path}" if path is not None else "")


@dataclass(frozen=True)
class _Expected:
    """What a file must match: a full digest or a prefix (or nothing known), a size (or none), and whence."""

    sha256: str | None
    complete: bool
    size_bytes: int | None
    pinned: bool


def _expected(entry: WeightEntry, pins: Mapping[str, WeightPin] | None = None) -> _Expected:
    """The manifest's digest when complete, else the local pin (checked against what the manifest knows)."""
    if entry.sha256_complete:
        return _Expected(entry.sha256, True, entry.size_bytes, False)
    pins = load_pins() if pins is None else pins
    item = pins.get(entry.name)
    if item is None:
        return _Expected(entry.sha256, False, entry.size_bytes, False)
    contradiction = ""
    if item.file != entry.file:
        contradiction = f"it was made for file {item.file!r}, the manifest now names {entry.file!r}"
    elif entry.sha256 is not None and not item.sha256.startswith(entry.sha256):
        contradiction = f"its sha256 {item.sha256} does not start with the manifest's {entry.sha256}"
    elif entry.size_bytes is not None and item.size_bytes != entry.size_bytes:
        contradiction = f"its size {item.size_bytes} differs from the manifest's {entry.size_bytes} bytes"
    if contradiction:
        raise WeightsError(
            f"the local pin of weights '{entry.name}' in {pins_path()} contradicts the manifest: "
            f"{contradiction}. Re-pin the right file with `{pin_command(entry, '<path>')} --replace`."
        )
    return _Expected(item.sha256, True, item.size_bytes, True)


def _unpinned_error(entry: WeightEntry, path: Path) -> UnpinnedWeightsError:
    return UnpinnedWeightsError(
        f"refusing weights '{entry.name}': {path} has no published sha256 to be checked against and has not "
        f"been pinned. Make sure it is the file from {entry.url}, then pin it once with "
        f"`{pin_command(entry, path)}` (records its sha256 and size in {pins_path()}); later runs refuse it "
        f"if it changes."
    )


def verify_file(
    entry: WeightEntry,
    path: str | os.PathLike[str],
    use_cache: bool = False,
    pins: Mapping[str, WeightPin] | None = None,
) -> Path:
    """Check ``path`` against ``entry`` (size, then sha256 or its known prefix, or the local pin); return it.

    Raises :class:`ChecksumMismatchError` naming the file, the expected and the actual sha256 (and sizes), and
    :class:`UnpinnedWeightsError` (naming the pin command) for a file without a published or pinned digest.
    ``pins`` defaults to :func:`load_pins` (read only for entries without a complete published digest).
    """
    path = Path(path)
    expected = _expected(entry, pins)
    if expected.sha256 is None:
        raise _unpinned_error(entry, path)
    actual = _digest(path, use_cache)
    size = path.stat().st_size
    matches = actual == expected.sha256 if expected.complete else actual.startswith(expected.sha256)
    if not matches or (expected.size_bytes is not None and size != expected.size_bytes):
        if expected.pinned:
            raise ChecksumMismatchError(
                f"refusing weights '{entry.name}': {path} does not match its local pin in {pins_path()} — "
                f"pinned sha256 {expected.sha256} ({expected.size_bytes} bytes), found sha256 {actual} "
                f"({size} bytes). The file changed since it was pinned (corrupt, truncated or replaced): "
                f"restore the pinned file, or if the new one is right, "
                f"`{pin_command(entry, path)} --replace`."
            )
        raise ChecksumMismatchError(
            f"refusing weights '{entry.name}': {path} does not match the manifest — expected sha256 "
            f"{entry.sha256_display} ({entry.size_display}), found sha256 {actual} ({size} bytes). "
            f"The file is corrupt, truncated or a different file: delete it and get the right one "
            f"({fetch_command(entry)})."
        )
    return path


def fetch_command(entry: WeightEntry) -> str:
    """One line on how to obtain ``entry``: the fetch command or the pip requirement that ships it."""
    if entry.source == "package" and entry.pip:
        return f"it ships in the pip package: pip install {entry.pip}"
    if entry.url_is_file and entry.sha256 is not None:
        return (
            f"where a network exists run `python -m src.weights fetch {entry.name}` (downloads {entry.url}), "
            f"or copy the file there"
        )
    if entry.sha256 is None:
        return (
            f"obtain it from {entry.url}, then copy and pin it in one step with "
            f"`{pin_command(entry, '<downloaded file>')}` (no sha256 is published for it)"
        )
    return f"obtain it from {entry.url} and copy it there"


def _missing_error(entry: WeightEntry, looked: list[Path]) -> MissingWeightsError:
    target = weights_dir() / entry.file
    alternatives = ""
    if entry.source == "torch_hub":
        alternatives = f" (or {torch_hub_checkpoints_dir() / entry.file}, the torch hub cache)"
    elif entry.source == "package" and entry.package:
        alternatives = f" (or install '{entry.package}', which ships it as {entry.package_path})"
    return MissingWeightsError(
        f"weights '{entry.name}' not found: file {entry.file}, sha256 {entry.sha256_display}, "
        f"{entry.size_display}. Looked in: {', '.join(str(p) for p in looked)}. "
        f"Put it at {target}{alternatives}; {fetch_command(entry)}. "
        f"Set {ENV_WEIGHTS_DIR} to use another weights folder."
    )


def _locate(name: str, manifest: Mapping[str, WeightEntry] | None, use_cache: bool) -> Path:
    entry = _get(name, manifest)
    looked = candidate_paths(entry)
    for path in looked:
        if path.is_file():
            return verify_file(entry, path, use_cache=use_cache)
    raise _missing_error(entry, looked)


def resolve(name: str, manifest: Mapping[str, WeightEntry] | None = None) -> Path:
    """Path of the verified weight file ``name``; never downloads, never substitutes.

    Raises :class:`MissingWeightsError` (naming the file, its sha256, where to put it and the fetch command),
    :class:`ChecksumMismatchError` (naming the file and both checksums) or, for a file without a published
    sha256 that was never pinned, :class:`UnpinnedWeightsError` (naming the pin command). A file's digest is
    cached per process by (path, size, mtime), so resolving the same large file twice hashes it once.
    """
    return _locate(name, manifest, use_cache=True)


MANIFEST_PREFIX = "manifest:"


def resolve_spec(spec: str | Path) -> Path:
    """A weight file given in a config: ``manifest:<name>`` (resolved and checked like :func:`resolve`) or a
    path, taken as it is."""
    text = str(spec)
    if text.startswith(MANIFEST_PREFIX):
        return resolve(text.removeprefix(MANIFEST_PREFIX))
    return Path(spec)


def verify(name: str, manifest: Mapping[str, WeightEntry] | None = None) -> Path:
    """Like :func:`resolve`, but always re-reads and re-hashes the file (no per-process digest cache)."""
    return _locate(name, manifest, use_cache=False)


def _copy_into_place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        shutil.copyfile(source, part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def pin(
    name: str,
    file: str | os.PathLike[str] | None = None,
    manifest: Mapping[str, WeightEntry] | None = None,
    replace: bool = False,
) -> WeightPin:
    """Record the sha256 and size of the user's copy of ``name`` in :func:`pins_path`; return the pin.

    For entries without a complete published digest only (a complete one is refused: it is checked against the
    manifest). ``file`` defaults to the file :func:`resolve` would find; a ``file`` elsewhere is copied to
    ``weights_dir()/<file>`` first (an existing different file there is refused, not overwritten). The file
    must agree with what the manifest does know (a sha256 prefix, a size). An existing pin of another file is
    only replaced with ``replace=True``.
    """
    entry = _get(name, manifest)
    if entry.sha256_complete:
        raise WeightsError(
            f"weights '{name}' has a published sha256 ({entry.sha256}); it is checked against the manifest "
            f"and is not pinned locally (check it with `python -m src.weights verify {name}`)"
        )
    target = weights_dir() / entry.file
    candidates = candidate_paths(entry)
    if file is None:
        source = next((path for path in candidates if path.is_file()), None)
        if source is None:
            raise MissingWeightsError(
                f"cannot pin weights '{name}': no file {entry.file} in {', '.join(map(str, candidates))}. "
                f"Pass the file: `{pin_command(entry, '<path>')}` (it is copied to {target})."
            )
    else:
        source = Path(file).expanduser()
        if not source.is_file():
            raise MissingWeightsError(f"cannot pin weights '{name}': {source} is not a file")
    digest, size = sha256_file(source), source.stat().st_size
    if (entry.sha256 is not None and not digest.startswith(entry.sha256)) or (
        entry.size_bytes is not None and size != entry.size_bytes
    ):
        raise ChecksumMismatchError(
            f"refusing to pin {source} as weights '{name}': the manifest expects sha256 "
            f"{entry.sha256_display} ({entry.size_display}), the file has sha256 {digest} ({size} bytes)"
        )
    pins = load_pins()
    old = pins.get(name)
    if old is not None and old.sha256 != digest and not replace:
        raise WeightsError(
            f"weights '{name}' is already pinned to sha256 {old.sha256} ({old.size_bytes} bytes, from "
            f"{old.pinned_from}, {old.pinned_at}); {source} has sha256 {digest}. To pin the new file "
            f"instead: `{pin_command(entry, source)} --replace`."
        )
    resolved = {path.resolve() for path in candidates}
    if source.resolve() not in resolved:  # elsewhere: copy it to where resolve() looks first
        if target.is_file() and sha256_file(target) != digest:
            raise WeightsError(
                f"cannot pin {source} as weights '{name}': a different file already exists at {target}; "
                f"remove it first, or pin that one with `{pin_command(entry, target)}`"
            )
        if not target.is_file():
            _copy_into_place(source, target)
    used = next(path for path in candidates if path.is_file())  # the file resolve() will pick
    if _digest(used, use_cache=False) != digest:
        raise WeightsError(
            f"cannot pin {source} as weights '{name}': resolve() would use {used}, which is a different "
            f"file; remove it or pin it instead"
        )
    record = WeightPin(
        name=name,
        file=entry.file,
        sha256=digest,
        size_bytes=size,
        pinned_from=str(source.resolve()),
        pinned_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    pins[name] = record
    _write_pins(pins, pins_path())
    return record


def fetch(name: str, manifest: Mapping[str, WeightEntry] | None = None, timeout: float = 60.0) -> Path:
    """Make ``name`` available: return it if it already resolves, else download it into :func:`weights_dir`.

    The download (``urllib``, any URL scheme it supports, incl. ``file://``) goes to a ``.part`` file that is
    renamed only after size and sha256 match. Raises :class:`WeightsError` with a clear message when the entry
    cannot be downloaded (package-shipped files name the pip requirement; files without a published or pinned
    sha256 name the pin command) or the network is unreachable, and :class:`ChecksumMismatchError` when the
    download is not the expected file (it is then deleted).
    """
    entry = _get(name, manifest)
    try:
        return _locate(name, manifest, use_cache=True)
    except MissingWeightsError:
        pass
    except ChecksumMismatchError:
        if entry.source == "package" and not (weights_dir() / entry.file).is_file():
            raise  # a broken package file: reinstalling the package is the fix, not a download
    if not entry.url_is_file:
        raise WeightsError(
            f"weights '{entry.name}' cannot be downloaded automatically ({entry.url} is not a direct file "
            f"link); {fetch_command(entry)}"
        )
    expected = _expected(entry)
    if expected.sha256 is None:
        raise WeightsError(
            f"weights '{entry.name}' has no published sha256, so a download from {entry.url} could not be "
            f"verified; download it yourself, check it, then `{pin_command(entry, '<downloaded file>')}`"
        )
    target = weights_dir() / entry.file
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(entry.url, timeout=timeout) as response, open(part, "wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        raise WeightsError(
            f"could not download weights '{entry.name}' from {entry.url}: {exc}. If this machine has no "
            f"network access, download the file elsewhere and copy it to {target} "
            f"(sha256 {entry.sha256_display})."
        ) from exc
    actual = digest.hexdigest()
    size = part.stat().st_size
    matches = actual == expected.sha256 if expected.complete else actual.startswith(expected.sha256)
    if not matches or (expected.size_bytes is not None and size != expected.size_bytes):
        part.unlink(missing_ok=True)
        shown = expected.sha256 if expected.pinned else entry.sha256_display
        size_shown = f"{expected.size_bytes} bytes" if expected.size_bytes is not None else "size unknown"
        raise ChecksumMismatchError(
            f"refusing the download of weights '{entry.name}' from {entry.url}: expected sha256 "
            f"{shown} ({size_shown}), got sha256 {actual} ({size} bytes); "
            f"nothing was written to {target}"
        )
    os.replace(part, target)
    return target
