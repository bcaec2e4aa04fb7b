"""The web portal's settings, and the checks that keep it from being exposed carelessly.

Tokens are never given on the command line (``ps`` shows it to every user of the machine): they come from
:attr:`PortalSettings.tokens` in code or from an environment variable (``--token-env``). A server listening
on anything but a loopback address refuses to start without one.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from src.inference.inputs import InputLimits
from src.serving.catalog import Catalog

__all__ = [
    "DEFAULT_TOKEN_ENV",
    "MIN_TOKEN_LENGTH",
    "ExposureError",
    "PortalSettings",
    "check_exposure",
    "is_loopback",
    "tokens_from_env",
]

DEFAULT_TOKEN_ENV = "PROFACE_PORTAL_TOKENS"
#: shorter tokens are refused: they could be guessed
MIN_TOKEN_LENGTH = 16


class ExposureError(RuntimeError):
    """Settings that would expose the portal without protection (no tokens on a public address, ...)."""


@dataclass(frozen=True)
class PortalSettings:
    """Everything :func:`src.serving.portal.app.create_app` needs; the defaults serve on loopback only."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: runs directory searched for trained checkpoints (None: only methods that need none)
    runs: Path | None = None
    #: explicit ``(method name, checkpoint)`` pairs
    checkpoints: tuple[tuple[str, Path], ...] = ()
    #: offer every method that needs no checkpoint (blur, pixelate, ...)
    untrained: bool = True
    #: inference threads running at once
    workers: int = 2
    #: admitted requests waiting for a worker; beyond ``workers + queue`` the answer is 503 at once
    queue: int = 4
    #: bearer tokens; when any is set every ``/api/*`` call needs one
    tokens: tuple[str, ...] = ()
    #: origins allowed to call the API from a browser (empty: no CORS headers at all)
    cors_origins: tuple[str, ...] = ()
    limits: InputLimits = field(default_factory=InputLimits)
    device: str = "cpu"
    face_detector: str = "mtcnn"
    min_face_score: float = 0.9
    #: where per-request scratch folders are made (None: the system's temporary folder)
    temp_dir: Path | None = None
    #: seconds a client is asked to wait after a 503
    retry_after_s: int = 5
    #: a prebuilt catalog (tests, embedding); None: built from ``runs`` / ``checkpoints`` / ``untrained``
    catalog: Catalog | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.queue < 0:
            raise ValueError(f"queue must be >= 0, got {self.queue}")
        for token in self.tokens:
            if len(token) < MIN_TOKEN_LENGTH or not token.isprintable() or " " in token:
                raise ExposureError(
                    f"an API token must be at least {MIN_TOKEN_LENGTH} printable characters without spaces"
                )

    def build_catalog(self) -> Catalog:
        """The configured catalog (the given one, or one built from the runs directory and checkpoints)."""
        if self.catalog is not None:
            return self.catalog
        return Catalog(
            self.runs,
            self.checkpoints,
            untrained=self.untrained,
            device=self.device,
            limits=self.limits,
            face_detector=self.face_detector,
            min_face_score=self.min_face_score,
        )


def tokens_from_env(variable: str = DEFAULT_TOKEN_ENV) -> tuple[str, ...]:
    """Tokens from environment variable ``variable`` (separated by commas or whitespace; empty if unset)."""
    return tuple(token for token in re.split(r"[\s,]+", os.environ.get(variable, "")) if token)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1``) or ``localhost``."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: PortalSettings) -> None:
    """Refuse to serve on a non-loopback address without API tokens."""
    if not is_loopback(settings.host) and not settings.tokens:
        raise ExposureError(
            f"refusing to listen on {settings.host} without API tokens: anyone who can reach it could "
            "use it. "
            f"Set tokens in an environment variable (e.g. {DEFAULT_TOKEN_ENV}=<token>, at least "
            f"{MIN_TOKEN_LENGTH} characters) and pass --token-env {DEFAULT_TOKEN_ENV}, or listen on 127.0.0.1"
        )
