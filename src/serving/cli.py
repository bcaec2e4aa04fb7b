"""The serving command line: ``python -m src.cli protect|recover|detect IN [IN ...] OUT --method NAME``.

Inputs are files or folders (walked recursively) of images and videos. Every input either gives an output or
is listed as a failure with its reason (unreadable, not an image, no face, ...): nothing is skipped silently.
Passwords come only from an environment variable (``--password-env``, default ``PROFACE_PASSWORD``) or an
interactive prompt, never from the command line, and are never printed or written.

Exit codes: 0 every input done; 3 some inputs failed (listed, and written to ``failures.csv``); 2 a usage,
method or checkpoint error.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from src.inference.faces import FaceRegion
from src.inference.inputs import IMAGE_SUFFIXES, VIDEO_SUFFIXES, InputError, iter_media
from src.inference.methods import ServingError
from src.serving.sdk import Detector, Protector, available_methods, is_video, load
from src.utils.checkpoint_files import CheckpointError

__all__ = ["ACTIONS", "main"]

ACTIONS = ("protect", "recover", "detect")
PASSWORD_ENV = "PROFACE_PASSWORD"
FACES_SUFFIX = ".faces.json"
EXIT_OK, EXIT_USAGE, EXIT_FAILURES = 0, 2, 3


@dataclass
class Failure:
    """One input that gave no output, and why."""

    path: Path
    reason: str


def build_parser(action: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m src.cli {action}",
        description={
            "protect": "Protect every face of images and videos with a privacy method.",
            "recover": "Recover the original faces of protected images and videos (reversible methods).",
            "detect": "Score every face of images and videos with a forgery detector.",
        }[action],
        epilog=f"Passwords: from ${PASSWORD_ENV} (or --password-env VAR), else a prompt; never as an "
        "argument. python -m src.cli methods lists the methods.",
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="input files or folders, then OUT")
    parser.add_argument(
        "--method", help="a registered method (default: the one the checkpoint was trained as)"
    )
    parser.add_argument("--ckpt", type=Path, help="checkpoint of a training run (trained methods)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--faces",
        choices=("detect", "whole"),
        default="detect",
        help="detect faces, or treat each image as one aligned face",
    )
    parser.add_argument("--detector", default="mtcnn", choices=("mtcnn", "hog", "mmod"), help="face detector")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a method option")
    parser.add_argument(
        "--password-env",
        default=PASSWORD_ENV,
        metavar="VAR",
        help="environment variable holding the password",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    return parser


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``["k=v", ...]`` → ``{k: v}`` (values parsed as JSON where they are: numbers, lists, booleans)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ServingError(f"--option must be KEY=VALUE, got {item!r}")
        options[key] = _option_value(value)
    return options


def read_password(method: Protector, env_var: str) -> str | None:
    """The password of a keyed method: ``$env_var``, else a prompt on a terminal; None for unkeyed methods."""
    if not method.needs_password:
        return None
    password = os.environ.get(env_var)
    if password:
        return password
    if not sys.stdin.isatty():
        raise ServingError(
            f"method '{method.name}' needs a password: set ${env_var} (not on the command line)"
        )
    password = getpass.getpass(f"password for {method.name}: ")
    if not password:
        raise ServingError("an empty password is not accepted")
    return password


def _is_sidecar(path: Path) -> bool:
    return path.name.endswith(FACES_SUFFIX)


def plan_outputs(inputs: Sequence[Path], out: Path, action: str) -> list[tuple[Path, Path]]:
    """``(input file, output file)`` pairs: one input file → ``out`` as a file (unless ``out`` is a folder);
    folders and several inputs → mirrored under the folder ``out``."""
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        raise ServingError(f"no such file or folder: {', '.join(missing)}")
    files = [p for p in iter_media(inputs) if not _is_sidecar(p)]
    single = len(inputs) == 1 and inputs[0].is_file() and not out.is_dir() and out.suffix != ""
    if single:
        return [(files[0], out)]
    pairs = []
    for path in files:
        root = next((p for p in inputs if p.is_dir() and path.is_relative_to(p)), path.parent)
        relative = path.relative_to(root)
        suffix = (
            ".mp4"
            if is_video(path)
            else path.suffix.lower()
            if path.suffix.lower() in (".jpg", ".jpeg")
            else ".png"
        )
        pairs.append((path, out / relative.with_suffix(suffix)))
    return pairs


def _regions_from_sidecar(path: Path) -> list[list[FaceRegion]] | None:
    """The faces a previous ``protect`` wrote next to its output, to recover exactly those squares."""
    sidecar = path.with_name(path.name + FACES_SUFFIX)
    if not sidecar.is_file():
        return None
    try:
        faces = json.loads(sidecar.read_text())["faces"]
        regions = [
            FaceRegion(tuple(f["box"]), float(f["score"]), int(f["left"]), int(f["top"]), int(f["side"]))
            for f in faces
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{sidecar}: not a faces file written by protect ({exc})") from exc
    return [regions]


def _check_kind(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        raise InputError(
            f"{path}: not an image or video file name ({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})"
        )


@contextmanager
def frame_bar(source: Path, args: argparse.Namespace) -> Iterator[Callable[[int], None]]:
    """A second progress bar, over one video's frames (``progress(n)`` after frame ``n``)."""
    bar = tqdm(desc=source.name, unit="frame", leave=False, disable=args.no_progress)
    try:
        yield lambda done: bar.update(done - bar.n)
    finally:
        bar.close()


def run_protector(
    method: Protector,
    pairs: list[tuple[Path, Path]],
    recover: bool,
    password: str | None,
    args: argparse.Namespace,
) -> list[Failure]:
    failures: list[Failure] = []
    bar = tqdm(pairs, desc="recover" if recover else "protect", unit="file", disable=args.no_progress)
    for source, target in bar:
        try:
            _check_kind(source)
            if is_video(source):
                with frame_bar(source, args) as frames:
                    method.protect_video(
                        source, target, password, recover=recover, faces=args.faces, progress=frames
                    )
                continue
            regions = _regions_from_sidecar(source) if recover and args.faces == "detect" else None
            apply = method.recover if recover else method.protect
            result = apply([source], password, faces=args.faces, regions=regions)[0]
            result.save(target)
            if not recover:
                sidecar = target.with_name(target.name + FACES_SUFFIX)
                sidecar.write_text(json.dumps({"faces": [f.to_dict() for f in result.faces]}, indent=1))
        except (ServingError, OSError) as exc:
            failures.append(Failure(source, str(exc).removeprefix(f"{source}: ")))
            if args.debug:
                raise
    return failures


def run_detector(
    method: Detector, pairs: list[tuple[Path, Path]], out: Path, args: argparse.Namespace
) -> list[Failure]:
    failures: list[Failure] = []
    rows: list[dict[str, Any]] = []
    for source, _ in tqdm(pairs, desc="detect", unit="file", disable=args.no_progress):
        try:
            _check_kind(source)
            if is_video(source):
                with frame_bar(source, args) as frames:
                    found = method.detect(source, faces=args.faces, progress=frames)
            else:
                found = method.detect([source], faces=args.faces)
            detections = found.detections if not isinstance(found, list) else found
            if not isinstance(found, list):
                rows.append({"file": str(source), "frame": "", "face": "video", "score": found.score})
            for detection in detections:
                if not detection.faces:
                    rows.append({"file": str(source), "frame": detection.frame, "face": "", "score": None})
                for index, face in enumerate(detection.faces):
                    box = [round(v, 1) for v in face.region.box]
                    rows.append(
                        {
                            "file": str(source),
                            "frame": detection.frame,
                            "face": index,
                            "box": box,
                            "score": round(face.fake_probability, 6),
                        }
                    )
        except (ServingError, OSError) as exc:
            failures.append(Failure(source, str(exc).removeprefix(f"{source}: ")))
            if args.debug:
                raise
    target = out / "detections.csv" if out.suffix.lower() not in (".csv", ".json") else out
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".json":
        target.write_text(json.dumps(rows, indent=1))
    else:
        with target.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["file", "frame", "face", "box", "score"])
            writer.writeheader()
            writer.writerows(rows)
    print(f"scores of {len(rows)} faces/frames written to {target}")
    return failures


def report_failures(failures: list[Failure], out: Path) -> None:
    """Print every failure and write them to ``failures.csv`` beside the outputs."""
    folder = out if out.suffix == "" else out.parent
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "failures.csv"
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "reason"])
        writer.writerows([str(f.path), f.reason] for f in failures)
    print(f"{len(failures)} input(s) failed (also in {target}):", file=sys.stderr)
    for failure in failures:
        print(f"  {failure.path}: {failure.reason}", file=sys.stderr)


def list_methods() -> int:
    """Print the registered methods."""
    for name, entry in available_methods().items():
        needs = "needs --ckpt" if entry.needs_checkpoint else "no checkpoint"
        print(f"  {name:<20} {entry.kind:<8} {needs:<14} {entry.summary}")
    return EXIT_OK


def main(argv: Sequence[str]) -> int:
    """Run one serving action; returns the exit code."""
    if not argv or argv[0] in ("-h", "--help"):
        print(
            f"usage: python -m src.cli {{{','.join(ACTIONS)}}} IN [IN ...] OUT --method NAME [--ckpt FILE]\n"
            "       python -m src.cli methods"
        )
        return EXIT_OK
    action, rest = argv[0], list(argv[1:])
    if action == "methods":
        return list_methods()
    if any(arg == "--password" or arg.startswith("--password=") for arg in rest):
        print(
            f"error: passwords are never given on the command line: set ${PASSWORD_ENV} or answer the prompt",
            file=sys.stderr,
        )
        return EXIT_USAGE
    args = build_parser(action).parse_args(rest)
    if len(args.inputs) < 2:
        print("error: give at least one input and the output (IN [IN ...] OUT)", file=sys.stderr)
        return EXIT_USAGE
    *inputs, out = args.inputs
    try:
        method = load(
            args.method,
            ckpt=args.ckpt,
            device=args.device,
            detector=args.detector,
            **parse_options(args.option),
        )
        pairs = plan_outputs(inputs, out, action)
        if action == "detect":
            if not isinstance(method, Detector):
                raise ServingError(f"method '{method.name}' protects faces; detect needs a forgery detector")
            failures = run_detector(method, pairs, out, args)
        else:
            if not isinstance(method, Protector):
                raise ServingError(f"method '{method.name}' is a detector; {action} needs a privacy method")
            password = read_password(method, args.password_env)
            failures = run_protector(method, pairs, action == "recover", password, args)
    except (ServingError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    done = len(pairs) - len(failures)
    print(f"{action}: {done} of {len(pairs)} input(s) done -> {out}")
    if failures:
        report_failures(failures, out)
        return EXIT_FAILURES
    return EXIT_OK
