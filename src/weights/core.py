"""The weights manifest: load it, find a weight file, check its sha256, fetch it where a network exists.

Every pretrained file the framework uses is listed in ``manifest.yaml`` (next to this module) with its sha256,
size, origin and licence. Code that needs a file calls :func:`resolve`, which never downloads and never
substitutes anything: it returns a verified path or raises an error that says what is missing, where it must
go and how to get it. Only the explicit :func:`fetch` (``python -m src.weights fetch NAME``) touches the
network.

Search order of :func:`resolve`: ``weights_dir()/<file>`` (``$PROFACE_WEIGHTS``, default
``<project>/weights``), then for ``source: torch_hub`` entries the torch hub cache
``$TORCH_HOME/hub/checkpoints/<file>``, then for ``source: package`` entries the file inside the installed
package (located with :func:`importlib.util.find_spec`, never imported). The first file that exists is
verified (size, then sha256); a mismatch is refused, not skipped, so a corrupt or foreign file is never
silently replaced by another one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "ChecksumMismatchError",
    "MissingWeightsError",
    "WeightEntry",
    "WeightsError",
    "candidate_paths",
    "fetch",
    "fetch_command",
    "load_manifest",
    "manifest_path",
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

_HEX = re.compile(r"^[0-9a-f]+$")
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "file": str,
    "sha256": str,
    "sha256_complete": bool,
    "size_bytes": int,
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
    """A weight file exists but its size or sha256 differs from the manifest: it is refused."""


@dataclass(frozen=True)
class WeightEntry:
    """One manifest entry (see the field list at the top of ``manifest.yaml``)."""

    name: str
    file: str
    sha256: str
    sha256_complete: bool
    size_bytes: int
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
        """The digest as written, marked ``…(prefix)`` when only the prefix is known."""
        return self.sha256 if self.sha256_complete else f"{self.sha256}…(prefix only)"


def manifest_path() -> Path:
    """Path of the manifest shipped with the framework."""
    return Path(__file__).with_name("manifest.yaml")


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
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise WeightsError(f"{label}: field '{key}' must be {kind.__name__}, got {value!r}")
    for key in ("name", "file", "url", "licence", "description"):
        if not raw[key].strip():
            raise WeightsError(f"{label}: field '{key}' is empty")
    if "/" in raw["file"] or "\\" in raw["file"] or raw["file"] in (".", ".."):
        raise WeightsError(f"{label}: 'file' must be a plain file name, got {raw['file']!r}")
    digest = raw["sha256"].lower()
    if not _HEX.match(digest):
        raise WeightsError(f"{label}: sha256 must be hexadecimal, got {raw['sha256']!r}")
    if raw["sha256_complete"] and len(digest) != 64:
        raise WeightsError(
            f"{label}: sha256_complete is true but the digest has {len(digest)} digits, not 64"
        )
    if not raw["sha256_complete"] and not 8 <= len(digest) < 64:
        raise WeightsError(f"{label}: a prefix-only sha256 must have 8 to 63 digits, got {len(digest)}")
    if raw["size_bytes"] <= 0:
        raise WeightsError(f"{label}: size_bytes must be positive, got {raw['size_bytes']}")
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


def load_manifest(path: str | os.PathLike[str] | None = None) -> dict[str, WeightEntry]:
    """Read and validate a manifest (default: the framework's ``manifest.yaml``) → ``{name: WeightEntry}``.

    Raises :class:`WeightsError` naming the manifest and entry for a missing/unknown/ill-typed field, a
    malformed digest, or a duplicated name or file name.
    """
    path = Path(path) if path is not None else manifest_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WeightsError(f"cannot read the weights manifest {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise WeightsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("weights"), list):
        raise WeightsError(f"{path}: expected a mapping with a 'weights' list")
    entries: dict[str, WeightEntry] = {}
    files: dict[str, str] = {}
    for raw in data["weights"]:
        entry = _entry_from_mapping(str(path), raw)
        if entry.name in entries:
            raise WeightsError(f"{path}: duplicate entry name {entry.name!r}")
        if entry.file in files:
            raise WeightsError(
                f"{path}: entries {files[entry.file]!r} and {entry.name!r} use the same file name "
                f"{entry.file!r}"
            )
        entries[entry.name] = entry
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


def verify_file(entry: WeightEntry, path: str | os.PathLike[str], use_cache: bool = False) -> Path:
    """Check ``path`` against ``entry`` (size, then sha256 or its known prefix); return it or raise.

    Raises :class:`ChecksumMismatchError` naming the file, the expected and the actual sha256 (and sizes).
    """
    path = Path(path)
    actual = _digest(path, use_cache)
    size = path.stat().st_size
    matches = actual == entry.sha256 if entry.sha256_complete else actual.startswith(entry.sha256)
    if size != entry.size_bytes or not matches:
        raise ChecksumMismatchError(
            f"refusing weights '{entry.name}': {path} does not match the manifest — expected sha256 "
            f"{entry.sha256_display} ({entry.size_bytes} bytes), found sha256 {actual} ({size} bytes). "
            f"The file is corrupt, truncated or a different file: delete it and get the right one "
            f"({fetch_command(entry)})."
        )
    return path


def fetch_command(entry: WeightEntry) -> str:
    """One line on how to obtain ``entry``: the fetch command or the pip requirement that ships it."""
    if entry.source == "package" and entry.pip:
        return f"it ships in the pip package: pip install {entry.pip}"
    if entry.url_is_file:
        return (
            f"where a network exists run `python -m src.weights fetch {entry.name}` (downloads {entry.url}), "
            f"or copy the file there"
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
        f"{entry.size_bytes} bytes. Looked in: {', '.join(str(p) for p in looked)}. "
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

    Raises :class:`MissingWeightsError` (naming the file, its sha256, where to put it and the fetch command)
    or :class:`ChecksumMismatchError` (naming the file and both checksums). A file's digest is cached per
    process by (path, size, mtime), so resolving the same large file twice hashes it once.
    """
    return _locate(name, manifest, use_cache=True)


def verify(name: str, manifest: Mapping[str, WeightEntry] | None = None) -> Path:
    """Like :func:`resolve`, but always re-reads and re-hashes the file (no per-process digest cache)."""
    return _locate(name, manifest, use_cache=False)


def fetch(name: str, manifest: Mapping[str, WeightEntry] | None = None, timeout: float = 60.0) -> Path:
    """Make ``name`` available: return it if it already resolves, else download it into :func:`weights_dir`.

    The download (``urllib``, any URL scheme it supports, incl. ``file://``) goes to a ``.part`` file that is
    renamed only after size and sha256 match. Raises :class:`WeightsError` with a clear message when the entry
    cannot be downloaded (package-shipped files name the pip requirement) or the network is unreachable, and
    :class:`ChecksumMismatchError` when the download is not the expected file (it is then deleted).
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
    matches = actual == entry.sha256 if entry.sha256_complete else actual.startswith(entry.sha256)
    if size != entry.size_bytes or not matches:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"refusing the download of weights '{entry.name}' from {entry.url}: expected sha256 "
            f"{entry.sha256_display} ({entry.size_bytes} bytes), got sha256 {actual} ({size} bytes); "
            f"nothing was written to {target}"
        )
    os.replace(part, target)
    return target
