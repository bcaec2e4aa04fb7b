"""No key or secret file in the repository: the original platform's demo shipped its TLS private key."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEY_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".ppk")
KEY_NAMES = ("id_rsa", "id_ed25519", "id_ecdsa", ".env", ".netrc", ".pypirc", "credentials.json")
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")


def tracked_files() -> list[Path]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc})")
    return [ROOT / name for name in listing.decode().split("\0") if name]


def test_no_key_or_secret_file_is_tracked() -> None:
    files = tracked_files()
    named = [str(p.relative_to(ROOT)) for p in files if p.suffix in KEY_SUFFIXES or p.name in KEY_NAMES]
    assert not named, f"key or secret files in the repository: {named}"
    holding = [
        str(p.relative_to(ROOT))
        for p in files
        if p.is_file() and p.stat().st_size < 5_000_000 and PRIVATE_KEY.search(p.read_bytes())
    ]
    assert not holding, f"files holding a private key: {holding}"
