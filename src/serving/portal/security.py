"""The portal's guards: bearer tokens on ``/api/*``, no password in a URL, security headers on every answer,
and access-log lines with any secret-looking query value blanked."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Sequence

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.serving.portal.errors import PortalError

__all__ = ["SecurityHeaders", "check_request", "install_log_redaction", "redact_url"]

#: query parameters whose values never reach a log line
SECRET_PARAMETERS = ("password", "passwd", "pwd", "passphrase", "token", "access_token", "secret", "key")
_SECRET_QUERY = re.compile(r"(?i)([?&;](?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&;#\s\"]*")
#: pages get a strict content policy: their own scripts and styles only; results are data: / blob: URLs
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; script-src 'self'; "
    "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PAGES = ("/", "/detect")


def redact_url(text: str) -> str:
    """``text`` with the value of every secret-looking query parameter replaced by ``[redacted]``."""
    return _SECRET_QUERY.sub(r"\1[redacted]", text)


class _RedactSecrets(logging.Filter):
    """Blanks secret query values in the request lines uvicorn's access log writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_url(record.msg)
        return True


_REDACTOR = _RedactSecrets()


def install_log_redaction() -> None:
    """Attach the redacting filter to uvicorn's access logger (once)."""
    logger = logging.getLogger("uvicorn.access")
    if _REDACTOR not in logger.filters:
        logger.addFilter(_REDACTOR)


def check_request(
    request: Request, credentials: HTTPAuthorizationCredentials | None, tokens: Sequence[str]
) -> None:
    """Refuse a password in the query string (400), then a missing or wrong bearer token (401)."""
    if any(key.lower() in ("password", "passwd", "pwd", "passphrase") for key in request.query_params):
        raise PortalError(
            400,
            "a password must never be sent in the URL (it ends up in logs and browser history): send it as "
            "the form field 'password' of a POST body",
        )
    if not tokens:
        return
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise PortalError(
            401, "this server needs an API token: send 'Authorization: Bearer <token>'", challenge
        )
    given = credentials.credentials.encode()
    if not any(hmac.compare_digest(given, token.encode()) for token in tokens):
        raise PortalError(401, "the API token is not accepted", challenge)


class SecurityHeaders:
    """Adds ``nosniff``, ``no-referrer`` and ``no-store`` (API) headers, and the page content policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if path.startswith("/api/"):
                    headers["Cache-Control"] = "no-store"
                if path in PAGES or path.startswith("/static/"):
                    headers.setdefault("Content-Security-Policy", PAGE_POLICY)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)
