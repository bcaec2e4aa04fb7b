"""How the portal answers a request it cannot serve: a status code and ``{"error": message}``."""

from __future__ import annotations

from collections.abc import Mapping

from src.inference.inputs import InputError
from src.inference.methods import NoFaceError, NotReversibleError, PasswordError, ServingError
from src.serving.catalog import MethodLoadError, UnknownMethodError

__all__ = ["PortalError", "status_for"]


class PortalError(Exception):
    """An answer other than success: HTTP ``status`` with ``{"error": message}`` (and extra headers)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def status_for(exc: ServingError) -> int:
    """The HTTP status of a serving error: 404 unknown method, 422 no face or bad input, else 400."""
    if isinstance(exc, UnknownMethodError):
        return 404
    if isinstance(exc, MethodLoadError):
        return 500
    if isinstance(exc, (NoFaceError, InputError)):
        return 422
    if isinstance(exc, (PasswordError, NotReversibleError)):
        return 400
    return 400
