"""Face-recognizer zoo: one interface (:class:`FaceRecognizer`) over many published architectures.

Importing the package registers every family (``iresnet*``, ``ir50``/``ir_se50``/``ir101``/``ir152``,
``adaface_ir*``, ``mobilefacenet``, ``facenet_vggface2``, ``sphereface20``, ``dlib_resnet``); published
weights load through :func:`load_recognizer_checkpoint` (key mappings, strict, sha256-pinned).
"""

from src.networks.recognizers import dlib_resnet, facenet, iresnet, irse, mobilefacenet, sphereface
from src.networks.recognizers.base import RECOGNIZERS, FaceRecognizer, build_recognizer, register_recognizer
from src.networks.recognizers.checkpoints import (
    ChecksumMismatchError,
    KeyMapping,
    LoadReport,
    load_recognizer_checkpoint,
    to_published_state_dict,
)
from src.networks.recognizers.stages import StagedRecognizer

__all__ = [
    "RECOGNIZERS",
    "ChecksumMismatchError",
    "FaceRecognizer",
    "KeyMapping",
    "LoadReport",
    "StagedRecognizer",
    "build_recognizer",
    "dlib_resnet",
    "facenet",
    "iresnet",
    "irse",
    "load_recognizer_checkpoint",
    "mobilefacenet",
    "register_recognizer",
    "sphereface",
    "to_published_state_dict",
]
