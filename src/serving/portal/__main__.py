"""``python -m src.serving.portal``: serve the web portal with uvicorn (``make serve``).

    python -m src.serving.portal [--host 127.0.0.1] [--port 8000] [--runs DIR] [--method name=ckpt ...]
        [--workers N] [--queue N] [--token-env VAR] [--cors-origin URL ...] [--max-bytes N]
        [--max-pixels N] [--max-frames N] [--device cpu] [--no-untrained]

Listening on anything but a loopback address needs API tokens, read from the environment variable named by
``--token-env`` (never from the command line, which other users of the machine can read).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from src.inference.inputs import InputLimits
from src.inference.methods import ServingError
from src.serving.catalog import parse_method_spec
from src.serving.portal.settings import DEFAULT_TOKEN_ENV, ExposureError, PortalSettings, tokens_from_env

DEFAULTS = InputLimits()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m src.serving.portal",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--runs", type=Path, default=None, help="runs directory searched for trained checkpoints"
    )
    parser.add_argument(
        "--method", action="append", default=[], metavar="NAME=CKPT", help="serve a checkpoint (repeatable)"
    )
    parser.add_argument("--no-untrained", action="store_true", help="do not offer blur, pixelate, ...")
    parser.add_argument("--workers", type=int, default=2, help="inference threads (default 2)")
    parser.add_argument(
        "--queue", type=int, default=4, help="requests that may wait for a worker (default 4)"
    )
    parser.add_argument(
        "--token-env",
        default=None,
        metavar="VAR",
        help=f"environment variable holding the API tokens, comma-separated (e.g. {DEFAULT_TOKEN_ENV})",
    )
    parser.add_argument(
        "--cors-origin", action="append", default=[], metavar="URL", help="allow a browser origin"
    )
    parser.add_argument("--max-bytes", type=int, default=DEFAULTS.max_bytes, help="largest upload in bytes")
    parser.add_argument("--max-pixels", type=int, default=DEFAULTS.max_pixels, help="largest image or frame")
    parser.add_argument("--max-frames", type=int, default=DEFAULTS.max_frames, help="longest video in frames")
    parser.add_argument("--device", default="cpu", help="torch device of the methods (cpu, cuda, cuda:1)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> PortalSettings:
    """The portal settings the command line asks for (tokens from ``--token-env``'s variable)."""
    tokens = ()
    if args.token_env:
        tokens = tokens_from_env(args.token_env)
        if not tokens:
            raise ExposureError(f"--token-env {args.token_env}: the variable is unset or empty")
    return PortalSettings(
        host=args.host,
        port=args.port,
        runs=args.runs,
        checkpoints=tuple(parse_method_spec(spec) for spec in args.method),
        untrained=not args.no_untrained,
        workers=args.workers,
        queue=args.queue,
        tokens=tokens,
        cors_origins=tuple(args.cors_origin),
        limits=InputLimits(max_bytes=args.max_bytes, max_pixels=args.max_pixels, max_frames=args.max_frames),
        device=args.device,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Build the settings and the app, then run uvicorn until interrupted."""
    import uvicorn

    from src.serving.portal.app import create_app
    from src.serving.portal.security import install_log_redaction
    from src.serving.portal.settings import check_exposure

    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from_args(args)
        check_exposure(settings)
        app = create_app(settings)
    except (ExposureError, ServingError, ValueError) as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return 2
    entries = list(app.state.portal.catalog)
    print(
        f"portal: {len(entries)} methods ({sum(e.checkpoint is not None for e in entries)} trained), "
        f"{settings.workers} workers + {settings.queue} queued, tokens {'on' if settings.tokens else 'off'}; "
        f"open http://{settings.host}:{settings.port}",
        file=sys.stderr,
    )
    # connections beyond this get uvicorn's own 503 before any request is parsed (the pool bounds the work)
    connections = max(32, 4 * (settings.workers + settings.queue))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        limit_concurrency=connections,
        server_header=False,
    )
    install_log_redaction()  # after uvicorn has configured its loggers
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
