"""Face-recognizer zoo: one interface (:class:`FaceRecognizer`) over many published architectures.

Importing the package registers every family (``iresnet*``, ``ir50``/``ir_se50``/``ir101``/``ir152``,
``ir_se50_infoswap``, ``adaface_ir*``, ``ir50_casia``/``ir_se50_casia`` (wujiyang CBAMResNet),
``mobilefacenet``, ``mobilefacenet_casia`` (wujiyang layout, 128-d), ``facenet_vggface2``, ``sphereface20``,
``dlib_resnet``);
published weights load through :func:`load_recognizer_checkpoint` (key mappings, strict, sha256-pinned);
:func:`pretrained_recognizer` builds one with its weights, frozen (a ``_target_`` with ``name``, ``weights``).
Papers that build recognizers under their own names (and weights) do so in their own package.
"""

from src.networks.recognizers import (
    cbam_resnet,
    dlib_resnet,
    facenet,
    iresnet,
    irse,
    mobilefacenet,
    mobilefacenet_wujiyang,
    pretrained,
    sphereface,
)
from src.networks.recognizers.base import RECOGNIZERS, FaceRecognizer, build_recognizer, register_recognizer
from src.networks.recognizers.checkpoints import (
    ChecksumMismatchError,
    KeyMapping,
    LoadReport,
    load_recognizer_checkpoint,
    to_published_state_dict,
)
from src.networks.recognizers.pretrained import pretrained_recognizer
from src.networks.recognizers.stages import StagedRecognizer

__all__ = [
    "RECOGNIZERS",
    "ChecksumMismatchError",
    "FaceRecognizer",
    "KeyMapping",
    "LoadReport",
    "StagedRecognizer",
    "build_recognizer",
    "cbam_resnet",
    "dlib_resnet",
    "facenet",
    "iresnet",
    "irse",
    "load_recognizer_checkpoint",
    "mobilefacenet",
    "mobilefacenet_wujiyang",
    "pretrained",
    "pretrained_recognizer",
    "register_recognizer",
    "sphereface",
    "to_published_state_dict",
]
