"""CLI: ``python -m src.weights [--manifest PATH] list | verify [NAME] | fetch NAME | pin NAME``.

``list`` shows every manifest entry and where it was found (presence only, no hashing); ``verify`` re-hashes
the named entries (default: all) and exits 1 if any is missing, mismatched or unpinned; ``fetch`` downloads
entries that are not yet available (needs a network) and exits 1 on any failure; ``pin NAME [--file PATH]
[--replace]`` records the sha256 of your copy of a file that has no published digest (``sha256: null``) in
``<weights dir>/pins.yaml``, copying ``PATH`` into the weights dir first when it lies elsewhere.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from src.weights.core import (
    ChecksumMismatchError,
    MissingWeightsError,
    UnpinnedWeightsError,
    WeightPin,
    WeightsError,
    candidate_paths,
    fetch,
    load_manifest,
    load_pins,
    pin,
    pins_path,
    verify,
    weights_dir,
)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # unreachable


def _cmd_list(manifest: dict) -> int:
    print(f"weights dir: {weights_dir()}")
    try:
        pins: dict[str, WeightPin] = load_pins()
    except WeightsError as exc:
        print(f"warning: ignoring the pins file: {exc}")
        pins = {}
    rows = [("NAME", "SIZE", "SOURCE", "SHA256", "PAPERS", "FOUND")]
    for entry in manifest.values():
        found = next((str(p) for p in candidate_paths(entry) if p.is_file()), "missing")
        pinned = pins.get(entry.name) if not entry.sha256_complete else None
        if pinned is not None:
            sha = f"pinned:{pinned.sha256[:12]}"
        elif entry.sha256 is None:
            sha = "unpinned(none published)"
        else:
            sha = entry.sha256[:12] + ("" if entry.sha256_complete else "(prefix)")
        size_bytes = entry.size_bytes if entry.size_bytes is not None else getattr(pinned, "size_bytes", None)
        size = _size(size_bytes) if size_bytes is not None else "?"
        rows.append((entry.name, size, entry.source, sha, ",".join(entry.papers) or "-", found))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    return 0


def _cmd_verify(manifest: dict, names: Sequence[str]) -> int:
    failures = 0
    for name in names or list(manifest):
        try:
            path = verify(name, manifest)
        except MissingWeightsError as exc:
            failures += 1
            print(f"MISSING   {name}: {exc}")
        except ChecksumMismatchError as exc:
            failures += 1
            print(f"MISMATCH  {name}: {exc}")
        except UnpinnedWeightsError as exc:
            failures += 1
            print(f"UNPINNED  {name}: {exc}")
        except WeightsError as exc:
            failures += 1
            print(f"ERROR     {name}: {exc}")
        else:
            print(f"OK        {name}: {path}")
    total = len(names or manifest)
    print(f"{total - failures} of {total} verified")
    return 1 if failures else 0


def _cmd_fetch(manifest: dict, names: Sequence[str], timeout: float) -> int:
    failures = 0
    for name in names:
        try:
            path = fetch(name, manifest, timeout=timeout)
        except WeightsError as exc:
            failures += 1
            print(f"FAILED    {name}: {exc}")
        else:
            print(f"OK        {name}: {path}")
    return 1 if failures else 0


def _cmd_pin(manifest: dict, name: str, file: str | None, replace: bool) -> int:
    try:
        record = pin(name, file, manifest, replace=replace)
    except WeightsError as exc:
        print(f"FAILED    {name}: {exc}")
        return 1
    print(
        f"PINNED    {name}: sha256 {record.sha256} ({record.size_bytes} bytes), file "
        f"{weights_dir() / record.file}, recorded in {pins_path()}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m src.weights", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--manifest",
        default=None,
        help="one manifest YAML (default: src/weights/manifest.yaml plus every src/papers/*/weights.yaml)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list every entry and where it was found")
    p_verify = sub.add_parser("verify", help="re-hash entries (default: all); exit 1 on any problem")
    p_verify.add_argument("names", nargs="*")
    p_fetch = sub.add_parser("fetch", help="download entries into the weights dir (needs a network)")
    p_fetch.add_argument("names", nargs="+")
    p_fetch.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds")
    p_pin = sub.add_parser(
        "pin", help="record the sha256 of your copy of a file without a published digest (pins.yaml)"
    )
    p_pin.add_argument("name")
    p_pin.add_argument("--file", default=None, help="file to pin (copied into the weights dir if elsewhere)")
    p_pin.add_argument("--replace", action="store_true", help="replace an existing pin of another file")
    args = parser.parse_args(argv)
    try:
        manifest = load_manifest(args.manifest)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "list":
        return _cmd_list(manifest)
    if args.command == "verify":
        return _cmd_verify(manifest, args.names)
    if args.command == "pin":
        return _cmd_pin(manifest, args.name, args.file, args.replace)
    return _cmd_fetch(manifest, args.names, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
