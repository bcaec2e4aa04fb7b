"""CLI: ``python -m src.weights [--manifest PATH] list | verify [NAME ...] | fetch NAME [NAME ...]``.

``list`` shows every manifest entry and where it was found (presence only, no hashing); ``verify`` re-hashes
the named entries (default: all) and exits 1 if any is missing or mismatched; ``fetch`` downloads entries that
are not yet available (needs a network) and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from src.weights.core import (
    ChecksumMismatchError,
    MissingWeightsError,
    WeightsError,
    candidate_paths,
    fetch,
    load_manifest,
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
    rows = [("NAME", "SIZE", "SOURCE", "SHA256", "PAPERS", "FOUND")]
    for entry in manifest.values():
        found = next((str(p) for p in candidate_paths(entry) if p.is_file()), "missing")
        sha = entry.sha256[:12] + ("" if entry.sha256_complete else "(prefix)")
        rows.append(
            (entry.name, _size(entry.size_bytes), entry.source, sha, ",".join(entry.papers) or "-", found)
        )
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m src.weights", description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", default=None, help="manifest YAML (default: src/weights/manifest.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list every entry and where it was found")
    p_verify = sub.add_parser("verify", help="re-hash entries (default: all); exit 1 on any problem")
    p_verify.add_argument("names", nargs="*")
    p_fetch = sub.add_parser("fetch", help="download entries into the weights dir (needs a network)")
    p_fetch.add_argument("names", nargs="+")
    p_fetch.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds")
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
    return _cmd_fetch(manifest, args.names, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
