"""Secret keys of PRO-Face S: random ±1 bit maps (training) and password-derived maps (evaluation).

A key is a ``[B, 1, H, W]`` float map of ±1 (the network applies the Haar DWT to it, giving 4×H/2×W/2).

Password keys follow the original ``test_tcsvt.py::generate_key`` (pycryptodome)::

    PBKDF2(password, salt=1, dkLen=H*W/8, count=10, hmac_hash_module=SHA512) → bytes
    → numpy.unpackbits (most significant bit first) → reshape (H, W), row-major → 2b − 1

pycryptodome turns ``password`` and ``salt`` into bytes with ``Crypto.Util.py3compat.tobytes``: ``str`` →
Latin-1 encoding, ``bytes`` unchanged, and an **int** ``n`` → ``bytes([n])`` (one byte). So the integer salt
``1`` is the single byte ``b"\\x01"`` (not ``b"1"``), and the original evaluation password — the integer
``0`` (``password = 0`` in ``test_tcsvt.py``) — is the byte ``b"\\x00"``, not the
character ``"0"`` (``b"\\x30"``). :func:`password_bytes` applies the same rules, and the derivation here
uses the standard library's ``hashlib.pbkdf2_hmac("sha512", ...)`` (same PKCS#5 v2 PBKDF2).
"""

from __future__ import annotations

import hashlib
import random
import string

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "PBKDF2_ITERATIONS",
    "PBKDF2_SALT",
    "key_from_password",
    "password_bytes",
    "random_key_maps",
    "random_password",
]

#: The original salt (an int, encoded by pycryptodome as ``bytes([1])``) and iteration count.
PBKDF2_SALT: int = 1
PBKDF2_ITERATIONS: int = 10


def password_bytes(value: str | bytes | bytearray | int) -> bytes:
    """Bytes of a password or salt exactly as pycryptodome's ``tobytes`` makes them.

    ``str`` → Latin-1 (characters above U+00FF raise ``ValueError``), ``bytes``/``bytearray`` → unchanged,
    ``int`` in ``0..255`` → that single byte (``1`` → ``b"\\x01"``). Other types raise ``TypeError``.
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise ValueError(f"password {value!r} has characters outside Latin-1 (as pycryptodome)") from exc
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 255:
            raise ValueError(f"an integer password/salt is one byte (0..255) as in pycryptodome, got {value}")
        return bytes([value])
    raise TypeError(f"password/salt must be str, bytes or an int 0..255, got {type(value).__name__}")


def key_from_password(
    password: str | bytes | int,
    height: int,
    width: int,
    salt: str | bytes | int = PBKDF2_SALT,
    iterations: int = PBKDF2_ITERATIONS,
) -> Tensor:
    """The ±1 key map ``[1, 1, height, width]`` (float32) derived from ``password`` by PBKDF2-HMAC-SHA512.

    ``height * width`` must be a multiple of 8 (one derived bit per pixel). Deterministic; see the module
    docstring for the byte encoding of ``password`` and ``salt``.
    """
    if height < 1 or width < 1 or (height * width) % 8:
        raise ValueError(
            f"key_from_password: height*width must be a positive multiple of 8, got {height}x{width}"
        )
    derived = hashlib.pbkdf2_hmac(
        "sha512", password_bytes(password), password_bytes(salt), int(iterations), dklen=height * width // 8
    )
    bits = np.unpackbits(np.frombuffer(derived, dtype=np.uint8))  # MSB first, as numpy.unpackbits
    signs = bits.astype(np.float32).reshape(height, width) * 2.0 - 1.0
    return torch.from_numpy(signs)[None, None]


def random_key_maps(
    batch_size: int,
    height: int,
    width: int,
    generator: torch.Generator,
    device: torch.device | str | None = None,
) -> Tensor:
    """``batch_size`` i.i.d. uniform ±1 key maps ``[B, 1, H, W]`` (float32), drawn with ``generator``.

    Drawn on the generator's device, then moved to ``device`` — the same seed gives the same keys anywhere.
    """
    bits = torch.randint(0, 2, (batch_size, 1, height, width), generator=generator, device=generator.device)
    return (bits.to(torch.float32) * 2.0 - 1.0).to(device if device is not None else generator.device)


def random_password(rng: random.Random, length: int = 16) -> str:
    """``length`` random characters of ``string.printable`` (how the original draws a wrong password)."""
    return "".join(rng.choice(string.printable) for _ in range(length))
