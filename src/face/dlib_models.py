"""Paths of the dlib model files shipped by the PyPI package ``face-recognition-models``.

``import face_recognition_models`` fails on current setuptools (its ``__init__`` imports the removed
``pkg_resources``), so the package directory is located with :func:`importlib.util.find_spec`, which for a
top-level package only finds it and does not execute its ``__init__``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "face_recognition_models"
INSTALL_HINT = "pip install face-recognition-models"

# Short name → file name inside ``face_recognition_models/models/``.
DLIB_MODEL_FILES: dict[str, str] = {
    "face_recognition_resnet": "dlib_face_recognition_resnet_model_v1.dat",
    "shape_predictor_5": "shape_predictor_5_face_landmarks.dat",
    "shape_predictor_68": "shape_predictor_68_face_landmarks.dat",
    "mmod_face_detector": "mmod_human_face_detector.dat",
}


def models_dir() -> Path:
    """The ``models/`` directory of the installed ``face_recognition_models`` (without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the Python package '{PACKAGE}' (dlib model files) is not installed; run `{INSTALL_HINT}`"
        )
    return Path(spec.origin).parent / "models"


def dlib_model_path(name: str) -> Path:
    """Path of a packaged dlib model file, by short name (see :data:`DLIB_MODEL_FILES`) or file name.

    Raises ``KeyError`` for an unknown name and ``FileNotFoundError`` (naming the expected path and the pip
    command) when the package or the file is missing.
    """
    file_names = set(DLIB_MODEL_FILES.values())
    if name in DLIB_MODEL_FILES:
        file_name = DLIB_MODEL_FILES[name]
    elif name in file_names:
        file_name = name
    else:
        raise KeyError(
            f"unknown dlib model '{name}'; known: {', '.join(sorted(DLIB_MODEL_FILES))} "
            f"(or the file names {', '.join(sorted(file_names))})"
        )
    path = models_dir() / file_name
    if not path.is_file():
        raise FileNotFoundError(
            f"dlib model file not found: {path} (expected in the '{PACKAGE}' package; run `{INSTALL_HINT}`)"
        )
    return path
