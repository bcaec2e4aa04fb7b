"""Layout errors and the one-shot report of listed files that are missing from a (partial) copy.

A dataset's own lists (CelebA's partition file, VGGFace2's ``*_list.txt``, FFHQ's JSON, the CelebA-HQ
mapping, LFW's ``pairs.txt``) say which images a copy should hold. When some are absent the DataModule
collects them all and reports them **once** (:class:`MissingFiles`): the count, the first few paths and the
file where the full list was written (the run directory's ``missing_files_<dataset>.txt`` inside a run,
else a file under the system's temporary folder). By default that is an error; with
``datamodule.allow_partial=true`` the DataModule goes on with the images that are present and the same
summary goes into the run's data record (``describe()["missing_files"]``). See docs/datasets.md,
"Partial copies".
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
EXAMPLES = 3
RECORDED_EXAMPLES = 20
PARTIAL_HINT = (
    "set datamodule.allow_partial=true to use the images that are present (the missing ones are then "
    'recorded in the run\'s data record; docs/datasets.md, "Partial copies")'
)


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder that does not have the expected layout."""


@dataclass
class _Listing:
    listed_in: Path
    folder: Path
    names: list[str]
    details: dict[str, str]
    verb: str


@dataclass
class MissingFiles:
    """Listed-but-absent images of one DataModule, collected during set-up and reported once."""

    dataset: str
    listings: list[_Listing] = field(default_factory=list)
    list_file: Path | None = None

    def note(
        self,
        listed_in: Path,
        folder: Path,
        names: list[str],
        details: dict[str, str] | None = None,
        verb: str = "listed in",
    ) -> None:
        """Record ``names`` (relative to ``folder``) that ``listed_in`` lists but the copy lacks."""
        if names:
            self.listings.append(_Listing(listed_in, folder, list(names), dict(details or {}), verb))

    def __bool__(self) -> bool:
        return bool(self.listings)

    @property
    def count(self) -> int:
        """Missing images in all listings."""
        return sum(len(listing.names) for listing in self.listings)

    def paths(self) -> set[Path]:
        """Absolute paths of every missing image."""
        return {listing.folder / name for listing in self.listings for name in listing.names}

    def digest(self, folder: Path | None = None) -> str:
        """Short SHA-1 of the sorted missing names (of ``folder`` only when given): tags derived files."""
        names = sorted(
            f"{listing.folder}/{name}"
            for listing in self.listings
            if folder is None or listing.folder == folder
            for name in listing.names
        )
        return hashlib.sha1("\n".join(names).encode()).hexdigest()[:10] if names else ""

    def write_list(self) -> Path:
        """Write every missing path (one per line) to the run directory or the temporary folder."""
        from src.utils.run_record import ENV_RUN_DIR

        lines = [str(listing.folder / name) for listing in self.listings for name in listing.names]
        run_dir = os.environ.get(ENV_RUN_DIR)
        if run_dir:
            path = Path(run_dir) / f"missing_files_{self.dataset}.txt"
        else:
            path = (
                Path(tempfile.gettempdir())
                / "proface-lab"
                / f"missing_files_{self.dataset}_{self.digest()}.txt"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines))
        tmp.replace(path)
        self.list_file = path
        return path

    def summary(self) -> str:
        """One message for all listings: counts, first paths and the file holding the full list."""
        parts = []
        for listing in self.listings:
            examples = ", ".join(
                str(listing.folder / name)
                + (f" ({listing.details[name]})" if name in listing.details else "")
                for name in listing.names[:EXAMPLES]
            )
            parts.append(
                f"{len(listing.names)} image(s) {listing.verb} {listing.listed_in} are missing from "
                f"{listing.folder}, e.g. {examples}"
            )
        where = f"; the full list of {self.count} is in {self.list_file}" if self.list_file else ""
        return "; ".join(parts) + where

    def error(self) -> DatasetLayoutError:
        """The error raised when partial copies are not allowed."""
        return DatasetLayoutError(f"{self.summary()}. To proceed anyway, {PARTIAL_HINT}")

    def record(self) -> dict[str, Any]:
        """What the run record says (``describe()["missing_files"]``)."""
        return {
            "count": self.count,
            "list_file": None if self.list_file is None else str(self.list_file),
            "listed_in": {str(listing.listed_in): len(listing.names) for listing in self.listings},
            "examples": [str(listing.folder / name) for listing in self.listings for name in listing.names][
                :RECORDED_EXAMPLES
            ],
        }
